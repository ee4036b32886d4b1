"""kling_testkit.image_bytes: flat PNG and JPEG files of any size, made without a library."""

from __future__ import annotations

import struct
import zlib

import pytest

from kling_testkit.image_bytes import jpeg_bytes, png_bytes
from kling_testkit.spec import image_size


def segments(data: bytes) -> list[tuple[int, bytes]]:
    """JPEG marker segments up to the scan: (marker, payload)."""
    assert data[:2] == b"\xff\xd8" and data[-2:] == b"\xff\xd9"
    found, pos = [], 2
    while True:
        marker = data[pos + 1]
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        found.append((marker, data[pos + 4 : pos + 2 + length]))
        pos += 2 + length
        if marker == 0xDA:
            return [*found, (0, data[pos:-2])]  # the entropy-coded data


@pytest.mark.parametrize(("width", "height"), [(1, 1), (300, 750), (1001, 333)])
def test_png_has_the_size_valid_crcs_and_one_flat_row_per_line(width: int, height: int) -> None:
    data = png_bytes(width, height, grey=7)
    assert image_size(data) == ("png", width, height)
    pos, kinds = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, payload = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + payload) & 0xFFFFFFFF == crc
        kinds.append(kind)
        if kind == b"IDAT":
            assert zlib.decompress(payload) == (b"\x00" + b"\x07" * width) * height
        pos += 12 + length
    assert kinds == [b"IHDR", b"IDAT", b"IEND"]


@pytest.mark.parametrize(("width", "height"), [(8, 8), (9, 17), (300, 750), (1001, 333)])
def test_jpeg_is_a_baseline_frame_of_the_size_with_one_code_per_block(
    width: int, height: int
) -> None:
    data = jpeg_bytes(width, height)
    assert image_size(data) == ("jpeg", width, height)
    found = segments(data)
    assert [marker for marker, _ in found] == [0xE0, 0xDB, 0xC0, 0xC4, 0xC4, 0xDA, 0]
    assert found[0][1].startswith(b"JFIF\x00")
    blocks = -(-width // 8) * -(-height // 8)
    scan = found[-1][1]
    assert len(scan) == -(-2 * blocks // 8)  # two bits a block
    assert b"\xff" not in scan  # so no byte stuffing is needed
    assert all(byte == 0 for byte in scan[: (2 * blocks) // 8])


@pytest.mark.parametrize(
    "make",
    [lambda: png_bytes(0, 5), lambda: png_bytes(5, 5, grey=256), lambda: jpeg_bytes(70_000, 5)],
    ids=["png-zero-width", "png-grey", "jpeg-too-wide"],
)
def test_impossible_images_are_refused(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]
