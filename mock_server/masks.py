"""Masks of the objects marked in a multi-elements selection: where they are, and how the API
writes them (COCO compressed RLE and a greyscale PNG).

The mock segments nothing: an object is the union of discs around its points, which is what a
client needs to check that it reads the masks right (a mark where it clicked, nothing where it
did not). Standard library only.
"""

from __future__ import annotations

import math
import struct
import zlib
from collections.abc import Iterable, Sequence

RADIUS = 0.08
"""A point's disc: this fraction of the frame's shorter side."""

Point = Sequence[float]  # (x, y), fractions of the width and the height


def _discs(points: Iterable[Point], width: int, height: int) -> list[tuple[float, float, float]]:
    r = RADIUS * min(width, height)
    return [(float(x) * width, float(y) * height, r) for x, y in points]


Disc = tuple[float, float, float]  # (along a line, across it, radius), in pixels


def _spans(line: float, discs: list[Disc], size: int) -> list[tuple[int, int]]:
    """The pixel ranges ``[start, end)`` of one line of pixels that the discs cover, merged.

    ``line`` is the line's centre across it (``column + 0.5`` or ``row + 0.5``); each disc is
    ``(along, across, radius)``. Pixel ``i`` is covered when its centre ``i + 0.5`` is in a disc.
    """
    found: list[tuple[int, int]] = []
    for along, across, r in discs:
        off = line - across
        if abs(off) > r:
            continue
        half = math.sqrt(r * r - off * off)
        start = max(0, math.ceil(along - half - 0.5))
        end = min(size, math.floor(along + half - 0.5) + 1)
        if start < end:
            found.append((start, end))
    found.sort()
    merged: list[tuple[int, int]] = []
    for start, end in found:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def column_runs(points: Iterable[Point], width: int, height: int) -> list[int]:
    """The mask's run lengths down its columns, left to right (column-major, as COCO RLE
    counts them), starting with a run of 0s (which may be 0 long)."""
    discs = [(cy, cx, r) for cx, cy, r in _discs(points, width, height)]  # along a column: y
    runs: list[int] = []
    value, length = 0, 0
    for column in range(width):
        at = 0
        for start, end in _spans(column + 0.5, discs, height):
            for bit, stop in ((0, start), (1, end)):
                if stop > at:
                    if bit == value:
                        length += stop - at
                    else:
                        runs.append(length)
                        value, length = bit, stop - at
                    at = stop
        if height > at:
            if value == 0:
                length += height - at
            else:
                runs.append(length)
                value, length = 0, height - at
    runs.append(length)
    return runs


def rle_counts(runs: Sequence[int]) -> str:
    """COCO's compressed RLE string of ``runs``: each count (after the first two, less the
    count two before it) in 5-bit groups, low first, as characters from ``'0'``; bit 0x20 says
    another group follows, bit 0x10 of the last is the sign."""
    out: list[str] = []
    for index, count in enumerate(runs):
        x = count - runs[index - 2] if index > 2 else count
        more = True
        while more:
            c = x & 0x1F
            x >>= 5  # arithmetic: a negative difference ends at -1
            more = x != -1 if c & 0x10 else x != 0
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def rle_decode(counts: str) -> list[int]:
    """The run lengths of a COCO compressed RLE string (the inverse of :func:`rle_counts`)."""
    runs: list[int] = []
    at = 0
    while at < len(counts):
        x, shift, more = 0, 0, True
        while more:
            c = ord(counts[at]) - 48
            x |= (c & 0x1F) << shift
            more = bool(c & 0x20)
            at += 1
            shift += 5
            if not more and c & 0x10:
                x |= -1 << shift
        if len(runs) > 2:
            x += runs[-2]
        runs.append(x)
    return runs


def _chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_mask(points: Iterable[Point], width: int, height: int) -> bytes:
    """An 8-bit greyscale PNG of the mask: 255 inside, 0 outside."""
    discs = _discs(points, width, height)  # along a row: x
    raw = bytearray()
    for row in range(height):
        line = bytearray(width)
        for start, end in _spans(row + 0.5, discs, width):
            line[start:end] = b"\xff" * (end - start)
        raw += b"\x00" + line
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(bytes(raw), 6))
        + _chunk(b"IEND", b"")
    )
