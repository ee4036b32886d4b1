"""Tests for mock_server.media: generated PNGs and the shipped MP4 fixtures."""

from __future__ import annotations

import io
import struct
import wave
import zlib

import pytest
from mutagen.mp3 import MP3  # type: ignore[import-untyped]

from mock_server.media import (
    mp3_audio,
    mp3_duration_seconds,
    mp4_dimensions,
    mp4_duration_seconds,
    mp4_video,
    png_image,
    png_size,
    shipped_videos,
    video_shapes,
    wav_audio,
)
from tests.conftest import ChangeContract

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunks(data: bytes) -> list[tuple[bytes, bytes, int]]:
    """Split a PNG into (type, payload, stored_crc) tuples."""
    chunks = []
    pos = len(PNG_SIGNATURE)
    while pos < len(data):
        (length,) = struct.unpack_from(">I", data, pos)
        kind = data[pos + 4 : pos + 8]
        payload = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack_from(">I", data, pos + 8 + length)
        chunks.append((kind, payload, crc))
        pos += 12 + length
    return chunks


# --------------------------------------------------------------------- PNG


def test_png_starts_with_png_signature() -> None:
    assert png_image("16:9").startswith(PNG_SIGNATURE)


@pytest.mark.parametrize(
    ("ratio", "size"),
    [
        ("16:9", (256, 144)),
        ("9:16", (144, 256)),
        ("1:1", (256, 256)),
        ("21:9", (256, 110)),
        ("4:3", (256, 192)),
        ("2:3", (171, 256)),
    ],
)
def test_png_ihdr_size_matches_aspect_ratio(ratio: str, size: tuple[int, int]) -> None:
    data = png_image(ratio)
    assert png_size(data) == size
    kind, payload, _ = _chunks(data)[0]
    assert kind == b"IHDR"
    assert struct.unpack(">II", payload[:8]) == size


def test_png_ihdr_declares_8_bit_rgb() -> None:
    _, payload, _ = _chunks(png_image("1:1"))[0]
    bit_depth, colour_type, compression, filter_method, interlace = payload[8:13]
    assert (bit_depth, colour_type) == (8, 2)
    assert (compression, filter_method, interlace) == (0, 0, 0)


@pytest.mark.parametrize("ratio", ["16:9", "9:16", "1:1", "21:9"])
def test_png_every_chunk_crc_is_valid(ratio: str) -> None:
    chunks = _chunks(png_image(ratio, seed=3))
    assert [kind for kind, _, _ in chunks] == [b"IHDR", b"IDAT", b"IEND"]
    for kind, payload, crc in chunks:
        assert zlib.crc32(kind + payload) & 0xFFFFFFFF == crc


@pytest.mark.parametrize("ratio", ["16:9", "9:16", "1:1", "21:9"])
def test_png_idat_decompresses_to_one_filtered_rgb_row_per_line(ratio: str) -> None:
    data = png_image(ratio, seed=11)
    width, height = png_size(data)
    idat = b"".join(payload for kind, payload, _ in _chunks(data) if kind == b"IDAT")
    raw = zlib.decompress(idat)
    assert len(raw) == height * (1 + 3 * width)
    stride = 1 + 3 * width
    assert all(raw[row * stride] == 0 for row in range(height))


def test_png_different_seeds_give_different_bytes() -> None:
    assert png_image("16:9", seed=1) != png_image("16:9", seed=2)
    assert png_image("16:9", seed=0) != png_image("16:9", seed=-1)


def test_png_same_seed_gives_identical_bytes() -> None:
    first = png_image("9:16", seed=42)
    png_image.cache_clear()
    assert png_image("9:16", seed=42) == first


@pytest.mark.parametrize(
    "ratio", ["", "16", "16:", ":9", "16:0", "0:9", "-16:9", "16:9:1", "a:b", "1.5:1", " 16:9"]
)
def test_png_malformed_ratio_raises_value_error(ratio: str) -> None:
    with pytest.raises(ValueError, match="aspect ratio"):
        png_image(ratio)


def test_png_size_rejects_non_png() -> None:
    with pytest.raises(ValueError):
        png_size(b"GIF89a" + b"\x00" * 40)


# --------------------------------------------------------------------- MP4


ALL_VIDEOS = sorted(shipped_videos())
EXPECTED_DIMENSIONS = {"16:9": (160, 90), "9:16": (90, 160), "1:1": (120, 120)}


@pytest.mark.parametrize(("ratio", "duration"), ALL_VIDEOS)
def test_mp4_asset_starts_with_ftyp_box(ratio: str, duration: str) -> None:
    data = mp4_video(ratio, duration)
    assert data[4:8] == b"ftyp"


@pytest.mark.parametrize(("ratio", "duration"), ALL_VIDEOS)
def test_mp4_asset_duration_matches_requested_seconds(ratio: str, duration: str) -> None:
    seconds = mp4_duration_seconds(mp4_video(ratio, duration))
    assert seconds == pytest.approx(float(duration), abs=0.05)


@pytest.mark.parametrize(("ratio", "duration"), ALL_VIDEOS)
def test_mp4_asset_dimensions_match_aspect_ratio(ratio: str, duration: str) -> None:
    width, height = mp4_dimensions(mp4_video(ratio, duration))
    assert (width, height) == EXPECTED_DIMENSIONS[ratio]
    w, h = (int(part) for part in ratio.split(":"))
    assert width * h == height * w


@pytest.mark.parametrize(("ratio", "duration"), ALL_VIDEOS)
def test_mp4_asset_is_smaller_than_20_kb(ratio: str, duration: str) -> None:
    assert len(mp4_video(ratio, duration)) < 20 * 1024


def test_the_shipped_assets_cover_the_ratios_and_the_common_durations() -> None:
    ratios, durations = video_shapes()
    assert ratios == ["16:9", "9:16", "1:1"]
    assert {"5", "10"} <= set(durations)  # omni video adds 3 to 10 s: served by the nearest
    assert sorted((r, d) for r in ratios for d in ("5", "10")) == ALL_VIDEOS


@pytest.mark.parametrize("seconds", ["3", "3.5", "10"])
def test_audio_files_last_the_seconds_asked_for(seconds: str) -> None:
    with wave.open(io.BytesIO(wav_audio(seconds))) as wav:
        assert wav.getnframes() / wav.getframerate() == float(seconds)
    assert MP3(io.BytesIO(mp3_audio(seconds))).info.length == pytest.approx(
        float(seconds), abs=0.02
    )
    assert mp3_duration_seconds(mp3_audio(seconds)) == pytest.approx(float(seconds), abs=0.02)


@pytest.mark.parametrize("seconds", ["0", "-1", "601", "nan", "x"])
def test_audio_of_no_length_or_an_absurd_one_is_refused(seconds: str) -> None:
    for build in (wav_audio, mp3_audio):
        with pytest.raises(ValueError):
            build(seconds)


def test_mp4_video_serves_a_shape_added_to_the_contract(change_contract: ChangeContract) -> None:
    with pytest.raises(ValueError, match="unsupported video"):
        mp4_video("9:21", "3")

    def add(doc: dict[str, object]) -> None:
        schemas = doc["components"]["schemas"]  # type: ignore[index]
        schemas["VideoAspectRatio"]["enum"].append("9:21")
        schemas["VideoDuration"]["enum"].append("3")

    change_contract(add)
    data = mp4_video("9:21", "3")
    assert data == mp4_video("9:16", "5")  # the nearest shipped shape, then duration
    assert mp4_duration_seconds(data) == 5.0


def test_mp4_video_is_cached_and_stable() -> None:
    assert mp4_video("16:9", "5") is mp4_video("16:9", "5")


@pytest.mark.parametrize(
    ("ratio", "duration"),
    [("4:3", "5"), ("21:9", "10"), ("16:9", "0"), ("1:1", "-5"), ("9:16", ""), ("bad", "x")],
)
def test_mp4_unknown_combination_raises_value_error(ratio: str, duration: str) -> None:
    with pytest.raises(ValueError, match="unsupported video"):
        mp4_video(ratio, duration)


def test_mp4_duration_of_garbage_raises_value_error() -> None:
    with pytest.raises(ValueError):
        mp4_duration_seconds(b"garbage")


def test_mp4_duration_without_moov_raises_value_error() -> None:
    ftyp_only = struct.pack(">I4s4sI", 16, b"ftyp", b"isom", 0x200)
    with pytest.raises(ValueError, match="moov"):
        mp4_duration_seconds(ftyp_only)


def test_mp4_dimensions_of_garbage_raises_value_error() -> None:
    with pytest.raises(ValueError):
        mp4_dimensions(b"\x00\x00\x00\x08free")


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(payload), kind) + payload


def test_mp4_duration_reads_mvhd_version_1() -> None:
    # version 1: creation(8) modification(8) timescale(4) duration(8)
    mvhd = _box(b"mvhd", b"\x01\x00\x00\x00" + struct.pack(">QQIQ", 0, 0, 1000, 12_500))
    data = _box(b"ftyp", b"isom\x00\x00\x02\x00") + _box(b"moov", mvhd)
    assert mp4_duration_seconds(data) == pytest.approx(12.5)


def test_mp4_duration_reads_mvhd_version_0() -> None:
    mvhd = _box(b"mvhd", b"\x00\x00\x00\x00" + struct.pack(">IIII", 0, 0, 600, 1800))
    data = _box(b"ftyp", b"isom\x00\x00\x02\x00") + _box(b"moov", mvhd)
    assert mp4_duration_seconds(data) == pytest.approx(3.0)
