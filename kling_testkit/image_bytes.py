"""Small valid PNG and JPEG files of any size, made without an imaging library (test inputs).

Both are one flat colour, so they stay a few kilobytes at any size and any decoder opens them:
the PNG is 8-bit greyscale, the JPEG a baseline greyscale frame whose every 8x8 block is the
mid-grey DC level (Huffman tables of one code each).
"""

from __future__ import annotations

import struct
import zlib

__all__ = ["jpeg_bytes", "png_bytes"]


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def png_bytes(width: int, height: int, grey: int = 128) -> bytes:
    """An 8-bit greyscale PNG of ``width`` x ``height`` pixels, all of level ``grey``."""
    if width < 1 or height < 1 or not 0 <= grey <= 255:
        raise ValueError(f"bad PNG size or level: {width}x{height}, grey {grey}")
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    row = b"\x00" + bytes([grey]) * width  # filter type 0, then the pixels
    pixels = zlib.compress(row * height, 1)  # flat rows compress well at any level
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", pixels)
        + _png_chunk(b"IEND", b"")
    )


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def jpeg_bytes(width: int, height: int) -> bytes:
    """A baseline greyscale JPEG (JFIF) of ``width`` x ``height`` pixels, all mid-grey."""
    if not (1 <= width <= 0xFFFF and 1 <= height <= 0xFFFF):
        raise ValueError(f"bad JPEG size: {width}x{height}")
    jfif = b"JFIF\x00\x01\x01\x00" + struct.pack(">HHBB", 1, 1, 0, 0)
    quant = b"\x00" + b"\x01" * 64  # table 0, 8-bit, all ones
    frame = struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00"  # 1 component, 1x1
    one_code = b"\x01" + b"\x00" * 15 + b"\x00"  # a single code of length 1, for symbol 0
    dc_table, ac_table = b"\x00" + one_code, b"\x10" + one_code
    scan = b"\x01\x01\x00\x00\x3f\x00"  # component 1, tables 0/0, spectral 0..63
    # Each block is its DC difference (category 0: code "0") and end-of-block (code "0").
    blocks = -(-width // 8) * -(-height // 8)
    bits = 2 * blocks
    data = bytearray(bits // 8)
    if bits % 8:
        data.append((1 << (8 - bits % 8)) - 1)  # pad the last byte with one-bits
    return (
        b"\xff\xd8"
        + _segment(0xE0, jfif)
        + _segment(0xDB, quant)
        + _segment(0xC0, frame)
        + _segment(0xC4, dc_table)
        + _segment(0xC4, ac_table)
        + _segment(0xDA, scan)
        + bytes(data)
        + b"\xff\xd9"
    )
