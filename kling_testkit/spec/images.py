"""Images given inline: raw Base64 of a JPEG or PNG within the document's ``x-kling-image`` limits.

A JSON Schema cannot look inside Base64, so the document names the rule with the string format
``kling-image-base64`` (schema ``ImageBase64``) and this module is its one implementation: the
mock's validator checks the format with :func:`check_base64_image`.
"""

from __future__ import annotations

import base64
import binascii
import struct
from typing import Any

from kling_testkit.spec.document import schema

BASE64_FORMAT = "kling-image-base64"
"""The string format of an inline image in the document (schema ``ImageBase64``)."""


def limits() -> dict[str, Any]:
    """The documented limits on a decoded image (``ImageInput``'s ``x-kling-image``)."""
    found: dict[str, Any] = schema("ImageInput")["x-kling-image"]
    return found


def image_size(data: bytes) -> tuple[str, int, int] | None:
    """Return ``(format, width, height)`` of a PNG or JPEG, or None for anything else."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24 and data[12:16] == b"IHDR":
        width, height = struct.unpack(">II", data[16:24])
        return "png", width, height
    if not data.startswith(b"\xff\xd8"):
        return None
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        (length,) = struct.unpack(">H", data[pos + 2 : pos + 4])
        # SOF0..SOF15 carry the frame size; C4 (DHT), C8 (JPG) and CC (DAC) are not frames.
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            if pos + 9 > len(data):
                return None
            height, width = struct.unpack(">HH", data[pos + 5 : pos + 9])
            return "jpeg", width, height
        pos += 2 + length
    return None


def check_base64_image(value: object) -> bool:
    """Check one ``kling-image-base64`` value; raise ValueError saying what is wrong.

    Anything but a string passes (the schema's ``type`` speaks for those), as JSON Schema wants
    of a format.
    """
    if not isinstance(value, str):
        return True
    bounds = limits()
    if value.startswith("data:"):
        raise ValueError(
            "File is not in a valid base64 format (send raw Base64 without a data: prefix)"
        )
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(
            "must be an http(s) URL or raw Base64; File is not in a valid base64 format"
        ) from None
    if len(raw) > bounds["max_bytes"]:
        raise ValueError(f"must be at most {bounds['max_bytes']} bytes; got {len(raw)}")
    found = image_size(raw)
    if found is None or found[0] not in bounds["formats"]:
        raise ValueError(f"must be one of {', '.join(bounds['formats'])} images")
    _, width, height = found
    if min(width, height) < bounds["min_side_px"]:
        raise ValueError(f"sides must be at least {bounds['min_side_px']} px; got {width}x{height}")
    if max(width, height) > bounds["max_aspect"] * min(width, height):
        raise ValueError(
            f"aspect ratio must be between 1:{bounds['max_aspect']} and "
            f"{bounds['max_aspect']}:1; got {width}x{height}"
        )
    return True
