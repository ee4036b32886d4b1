#!/usr/bin/env bash
# Regenerate the tiny MP4 fixtures served by mock_server/media.py.
#
# DEV-ONLY TOOL: needs ffmpeg built with libx264 (e.g. `apt-get install -y ffmpeg`).
# ffmpeg is never needed at run time or by the test suite; the generated files
# under mock_server/assets/ are committed to the repository.
#
# Usage: bash scripts/make_media_assets.sh
set -euo pipefail

out_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/mock_server/assets"
mkdir -p "$out_dir"

# name:size pairs (even dimensions, long side 160 or square 120)
formats=("16x9:160x90" "9x16:90x160" "1x1:120x120")
durations=(5 10)

for fmt in "${formats[@]}"; do
  name="${fmt%%:*}"
  size="${fmt##*:}"
  for secs in "${durations[@]}"; do
    ffmpeg -nostdin -hide_banner -loglevel error -y \
      -f lavfi -i "testsrc2=size=${size}:rate=1:duration=${secs}" \
      -c:v libx264 -preset veryslow -crf 40 -pix_fmt yuv420p \
      -map_metadata -1 -fflags +bitexact -flags:v +bitexact \
      -movflags +faststart -an \
      "${out_dir}/video_${name}_${secs}s.mp4"
  done
done

ls -l "$out_dir"/video_*.mp4
