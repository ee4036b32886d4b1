"""Real media bytes for the mock server's generated results.

* :func:`png_image` draws a small deterministic PNG at a given aspect ratio.
* :func:`mp4_video` returns a tiny H.264 MP4 shipped in ``mock_server/assets``
  (regenerate those with ``scripts/make_media_assets.sh``, a dev-only tool) for any aspect
  ratio and duration the contract allows a video task; a shape with no asset of its own gets
  the nearest one shipped.
* :func:`wav_audio` and :func:`mp3_audio` build silent audio of any length: a PCM WAV and
  MPEG-1 Layer III frames (32 kbit/s, 32 kHz, mono) that decoders play as silence.
* :func:`png_size`, :func:`mp4_duration_seconds`, :func:`mp4_dimensions` and
  :func:`mp3_duration_seconds` read the basic properties back, for tests and sanity checks.

Standard library and the contract only; nothing here needs ffmpeg at run time.
"""

from __future__ import annotations

import hashlib
import math
import re
import struct
import zlib
from collections.abc import Iterator
from functools import cache, lru_cache
from importlib import resources

from kling_testkit.spec.document import enum_values

__all__ = [
    "mp3_audio",
    "mp3_duration_seconds",
    "mp4_dimensions",
    "mp4_duration_seconds",
    "mp4_video",
    "png_image",
    "png_size",
    "shipped_videos",
    "video_shapes",
    "wav_audio",
]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_LONG_SIDE = 256

_ASSET_NAME = re.compile(r"video_([0-9]+)x([0-9]+)_([0-9]+)s\.mp4")


# --------------------------------------------------------------------- PNG


def _parse_ratio(aspect_ratio: str) -> tuple[int, int]:
    """Parse ``"W:H"`` (two positive ASCII integers) into ``(W, H)``."""
    left, sep, right = aspect_ratio.partition(":")
    if not sep or not all(p.isascii() and p.isdigit() for p in (left, right)):
        raise ValueError(
            f"malformed aspect ratio {aspect_ratio!r}: expected 'W:H' with positive integers"
        )
    width, height = int(left), int(right)
    if width <= 0 or height <= 0:
        raise ValueError(f"malformed aspect ratio {aspect_ratio!r}: both sides must be positive")
    return width, height


def _image_size(aspect_ratio: str) -> tuple[int, int]:
    """Pixel size: long side ``PNG_LONG_SIDE``, short side scaled and rounded."""
    w, h = _parse_ratio(aspect_ratio)
    if w >= h:
        return PNG_LONG_SIDE, max(1, round(PNG_LONG_SIDE * h / w))
    return max(1, round(PNG_LONG_SIDE * w / h)), PNG_LONG_SIDE


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def _raw_pixels(width: int, height: int, seed: int) -> bytes:
    """Scanlines (filter byte 0 + RGB): seed-coloured gradient bands and 32 px tiles.

    Rows repeat within each 16 px band, so the image compresses to a few KB.
    """
    key = hashlib.sha256(f"kling-testkit-png:{seed}".encode()).digest()
    r0, g0, b0, b1 = key[0], key[1], key[2], key[3] ^ 0x80
    reds = bytes((r0 + x * 255 // max(1, width - 1)) & 0xFF for x in range(width))
    out = bytearray()
    row = bytearray(3 * width)
    row[0::3] = reds
    for y in range(height):
        band = y // 16
        row[1::3] = bytes(((g0 + band * 23) & 0xFF,)) * width
        row[2::3] = bytes(b0 if (x // 32 + y // 32) % 2 else b1 for x in range(width))
        out += b"\x00"
        out += row
    return bytes(out)


@lru_cache(maxsize=64)
def png_image(aspect_ratio: str, seed: int = 0) -> bytes:
    """Return a valid 8-bit RGB PNG whose width:height matches ``aspect_ratio``.

    The long side is 256 px; ``seed`` changes the colours deterministically.
    Raises ValueError for a malformed ratio.
    """
    width, height = _image_size(aspect_ratio)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(_raw_pixels(width, height, seed), 9)
    return (
        PNG_SIGNATURE
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


def png_size(data: bytes) -> tuple[int, int]:
    """Return ``(width, height)`` from a PNG's IHDR chunk."""
    if len(data) < 33 or not data.startswith(PNG_SIGNATURE) or data[12:16] != b"IHDR":
        raise ValueError("not a PNG: missing signature or IHDR chunk")
    width, height = struct.unpack_from(">II", data, 16)
    return int(width), int(height)


# --------------------------------------------------------------------- MP4


@cache
def shipped_videos() -> dict[tuple[str, str], str]:
    """The MP4 assets shipped with the mock: ``(aspect ratio, duration)`` -> file name."""
    found: dict[tuple[str, str], str] = {}
    for entry in (resources.files(__package__ or "mock_server") / "assets").iterdir():
        match = _ASSET_NAME.fullmatch(entry.name)
        if match:
            width, height, seconds = match.groups()
            found[(f"{width}:{height}", seconds)] = entry.name
    return found


def video_shapes() -> tuple[list[str], list[str]]:
    """The aspect ratios and durations a video task can have: the enums of the contract."""
    return enum_values("video", "aspect_ratio"), enum_values("video", "duration")


@lru_cache(maxsize=16)
def _load_asset(name: str) -> bytes:
    return (resources.files(__package__ or "mock_server") / "assets" / name).read_bytes()


def _seconds(duration: str) -> float:
    try:
        seconds = float(duration)
    except ValueError:
        raise ValueError(f"video duration {duration!r} is not a number of seconds") from None
    if not math.isfinite(seconds):
        raise ValueError(f"video duration {duration!r} is not a number of seconds")
    return seconds


def _nearest(aspect_ratio: str, duration: str) -> str:
    """The shipped asset closest in shape (log of the aspect ratio), then in duration."""
    width, height = _parse_ratio(aspect_ratio)
    seconds = _seconds(duration)

    def distance(shape: tuple[str, str]) -> tuple[float, float, tuple[str, str]]:
        w, h = _parse_ratio(shape[0])
        # The shape itself breaks ties (4:3 is as far from 16:9 as from 1:1), so it is stable.
        return abs(math.log((w * height) / (h * width))), abs(float(shape[1]) - seconds), shape

    videos = shipped_videos()
    return videos[min(videos, key=distance)]


def mp4_video(aspect_ratio: str, duration: str) -> bytes:
    """Return a tiny valid H.264 MP4 for a video task of ``duration`` seconds at ``aspect_ratio``.

    Supported: every aspect ratio the contract allows a video task (see :func:`video_shapes`)
    and any positive length (an extended video is its source plus 5 s). The shipped asset of
    that shape is exact; a shape with none gets the nearest one shipped (closest aspect ratio,
    then closest duration). Anything else raises ValueError.
    """
    ratios, _ = video_shapes()
    if aspect_ratio not in ratios:
        raise ValueError(
            f"unsupported video aspect ratio {aspect_ratio!r}; expected one of {ratios}"
        )
    try:
        positive = _seconds(duration) > 0
    except ValueError:
        positive = False
    if not positive:
        raise ValueError(f"unsupported video duration {duration!r}; expected positive seconds")
    exact = shipped_videos().get((aspect_ratio, duration))
    return _load_asset(exact or _nearest(aspect_ratio, duration))


def _boxes(data: bytes, start: int, end: int) -> Iterator[tuple[bytes, int, int]]:
    """Yield ``(type, payload_start, box_end)`` for the boxes in ``data[start:end]``."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                raise ValueError("not an MP4: truncated 64-bit box header")
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            header = 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise ValueError(f"not an MP4: bad size for box {kind!r} at offset {pos}")
        yield kind, pos + header, pos + size
        pos += size


def _child(data: bytes, start: int, end: int, kind: bytes) -> tuple[int, int] | None:
    for found, payload, box_end in _boxes(data, start, end):
        if found == kind:
            return payload, box_end
    return None


def _moov(data: bytes) -> tuple[int, int]:
    if len(data) < 8 or data[4:8] != b"ftyp":
        raise ValueError("not an MP4: data does not start with an 'ftyp' box")
    moov = _child(data, 0, len(data), b"moov")
    if moov is None:
        raise ValueError("not an MP4: no 'moov' box")
    return moov


def mp4_duration_seconds(data: bytes) -> float:
    """Return the movie duration (``moov/mvhd`` duration / timescale) in seconds."""
    mvhd = _child(data, *_moov(data), b"mvhd")
    if mvhd is None:
        raise ValueError("not an MP4: no 'mvhd' box in 'moov'")
    pos, end = mvhd
    version = data[pos] if pos < end else -1
    if version == 0 and pos + 20 <= end:
        timescale, duration = struct.unpack_from(">II", data, pos + 12)
    elif version == 1 and pos + 32 <= end:
        timescale, duration = struct.unpack_from(">IQ", data, pos + 20)
    else:
        raise ValueError("not an MP4: truncated or unknown 'mvhd' version")
    if timescale == 0:
        raise ValueError("not an MP4: 'mvhd' timescale is zero")
    return float(duration) / float(timescale)


def mp4_dimensions(data: bytes) -> tuple[int, int]:
    """Return ``(width, height)`` from the first video track's ``tkhd``."""
    for kind, start, end in _boxes(data, *_moov(data)):
        if kind != b"trak":
            continue
        mdia = _child(data, start, end, b"mdia")
        hdlr = _child(data, *mdia, b"hdlr") if mdia else None
        if hdlr is None or data[hdlr[0] + 8 : min(hdlr[0] + 12, hdlr[1])] != b"vide":
            continue
        tkhd = _child(data, start, end, b"tkhd")
        if tkhd is None:
            break
        offset = 76 if tkhd[0] < tkhd[1] and data[tkhd[0]] == 0 else 88
        if tkhd[0] + offset + 8 > tkhd[1]:
            raise ValueError("not an MP4: truncated 'tkhd' box")
        width, height = struct.unpack_from(">II", data, tkhd[0] + offset)
        return round(width / 65536), round(height / 65536)
    raise ValueError("not an MP4: no video track with a 'tkhd' box")


# --------------------------------------------------------------------- audio

WAV_RATE = 8000  # samples per second: 8-bit mono, so 8 KB a second
MAX_AUDIO_SECONDS = 600.0  # far above any documented length; bounds the bytes built
MP3_HEADER = b"\xff\xfb\x18\xc0"  # MPEG-1 Layer III, no CRC, 32 kbit/s, 32 kHz, mono
MP3_FRAME_BYTES = 144 * 32000 // 32000  # 144 x bitrate / sample rate
MP3_FRAME_SECONDS = 1152 / 32000  # samples per frame / sample rate: 36 ms


def _audio_seconds(duration: str) -> float:
    seconds = _seconds(duration)
    if not 0 < seconds <= MAX_AUDIO_SECONDS:
        raise ValueError(f"audio duration {duration!r} must be above 0 and at most 600 s")
    return seconds


@lru_cache(maxsize=32)
def wav_audio(duration: str) -> bytes:
    """A silent 8 kHz 8-bit mono PCM WAV of ``duration`` seconds (to the sample)."""
    samples = round(_audio_seconds(duration) * WAV_RATE)
    fmt = struct.pack("<HHIIHH", 1, 1, WAV_RATE, WAV_RATE, 1, 8)
    data = b"\x80" * samples  # unsigned 8-bit: 128 is silence
    chunks = b"WAVE" + _riff(b"fmt ", fmt) + _riff(b"data", data)
    return b"RIFF" + struct.pack("<I", len(chunks)) + chunks


def _riff(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("<I", len(payload)) + payload + b"\x00" * (len(payload) % 2)


@lru_cache(maxsize=32)
def mp3_audio(duration: str) -> bytes:
    """Silent MPEG-1 Layer III frames lasting ``duration`` seconds (to the nearest 36 ms frame).

    Each frame is a header, zeroed side information (no Huffman data: silence) and zero padding;
    constant bit rate, so a player reads the length off the size.
    """
    frames = max(1, round(_audio_seconds(duration) / MP3_FRAME_SECONDS))
    frame = MP3_HEADER + b"\x00" * (MP3_FRAME_BYTES - len(MP3_HEADER))
    return frame * frames


def mp3_duration_seconds(data: bytes) -> float:
    """Seconds of a constant-bit-rate stream of the frames :func:`mp3_audio` writes."""
    if len(data) % MP3_FRAME_BYTES or not data.startswith(MP3_HEADER):
        raise ValueError("not an MP3 of this mock's frames")
    return len(data) // MP3_FRAME_BYTES * MP3_FRAME_SECONDS
