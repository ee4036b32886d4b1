"""Cross-field rules that JSON Schema says badly, and the full request check built on them.

Every limit used here is read from the OpenAPI document; nothing is written twice.
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from kling_testkit.spec.document import defaults, families, schema
from kling_testkit.spec.validation import ContractViolation, json_type, validate

_MASK_FIELDS = ("static_mask", "dynamic_masks")


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


def check_url(name: str, value: str) -> None:
    """Require an absolute http(s) URL with a host; the mock never fetches it."""
    try:
        parts = urlsplit(value)
        host = parts.hostname
    except ValueError:  # an unclosed or invalid IPv6 literal, such as http://[x
        host = None
    if host is None or parts.scheme not in ("http", "https") or any(c.isspace() for c in value):
        raise ContractViolation(f"{name} must be an absolute http(s) URL; got {value[:80]!r}", name)


def check_image(name: str, value: str) -> None:
    """Check an image given as an http(s) URL (form only) or as raw Base64 of a JPEG or PNG."""
    limits = schema("ImageInput")["x-kling-image"]
    if value.startswith(("http://", "https://")):
        check_url(name, value)
        return
    if value.startswith("data:"):
        raise ContractViolation(
            f"{name}: File is not in a valid base64 format"
            " (send raw Base64 without a data: prefix)",
            name,
        )
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ContractViolation(
            f"{name} must be an http(s) URL or raw Base64; File is not in a valid base64 format",
            name,
        ) from None
    if len(raw) > limits["max_bytes"]:
        raise ContractViolation(
            f"{name} must be at most {limits['max_bytes']} bytes; got {len(raw)}", name
        )
    found = image_size(raw)
    if found is None or found[0] not in limits["formats"]:
        raise ContractViolation(
            f"{name} must be one of {', '.join(limits['formats'])} images", name
        )
    _, width, height = found
    if min(width, height) < limits["min_side_px"]:
        raise ContractViolation(
            f"{name} sides must be at least {limits['min_side_px']} px; got {width}x{height}", name
        )
    if max(width, height) > limits["max_aspect"] * min(width, height):
        raise ContractViolation(
            f"{name} aspect ratio must be between 1:{limits['max_aspect']} and "
            f"{limits['max_aspect']}:1; got {width}x{height}",
            name,
        )


def _image_fields(schema_name: str) -> list[str]:
    props: dict[str, Any] = schema(schema_name)["properties"]
    return [k for k, v in props.items() if v.get("$ref", "").endswith("/ImageInput")]


def _check_camera(body: Mapping[str, Any]) -> None:
    control = body.get("camera_control")
    if not control or control["type"] != "simple":
        return
    moving = [axis for axis, amount in control.get("config", {}).items() if amount != 0]
    if len(moving) != 1:
        raise ContractViolation(
            "camera_control.config must set exactly one non-zero axis when type is 'simple'; "
            f"got {len(moving)}",
            "camera_control.config",
        )


def _check_image2video(body: Mapping[str, Any]) -> None:
    groups = [
        g
        for g, present in (
            ("image_tail", "image_tail" in body),
            ("static_mask/dynamic_masks", any(f in body for f in _MASK_FIELDS)),
            ("camera_control", "camera_control" in body),
        )
        if present
    ]
    if len(groups) > 1:
        raise ContractViolation(f"{' and '.join(groups)} cannot be used together", groups[1])
    for i, item in enumerate(body.get("dynamic_masks", [])):
        check_image(f"dynamic_masks[{i}].mask", item["mask"])
    if body.get("voice_list") and body.get("sound") != "on":
        raise ContractViolation("voice_list requires sound 'on'", "voice_list")


def _check_image_generation(body: Mapping[str, Any], model: str) -> None:
    if "image" in body and "negative_prompt" in body:
        raise ContractViolation(
            "negative_prompt is not allowed with image (image-to-image)", "negative_prompt"
        )
    if "image_reference" in body and "image" not in body:
        raise ContractViolation("image_reference requires image", "image_reference")
    if body.get("aspect_ratio") == "21:9" and model == "kling-v1":
        raise ContractViolation("aspect_ratio '21:9' is not supported by kling-v1", "aspect_ratio")


def check_request(family: str, body: object) -> dict[str, Any]:
    """Validate a create body for ``family`` and return its effective parameters.

    Raises :class:`ContractViolation` naming the first field that is wrong. The result has every
    documented default filled in and the legacy ``model`` alias folded into ``model_name``.
    """
    schema_name = families()[family].request_schema
    if not isinstance(body, dict):
        raise ContractViolation(f"request body must be a JSON object; got {json_type(body)}")
    validate(schema_name, body)
    if "model" in body and "model_name" in body and body["model"] != body["model_name"]:
        raise ContractViolation("model and model_name disagree; send model_name only", "model")
    model = str(body.get("model_name", body.get("model", defaults(schema_name)["model_name"])))
    prompt = body.get("prompt")
    if isinstance(prompt, str) and prompt and not prompt.strip():
        raise ContractViolation("prompt must contain more than white space", "prompt")
    if "callback_url" in body:
        check_url("callback_url", body["callback_url"])
    for name in _image_fields(schema_name):
        if name in body:
            check_image(name, body[name])
    _check_camera(body)
    if family == "image2video":
        _check_image2video(body)
    elif family == "image_generation":
        _check_image_generation(body, model)
    params = {**defaults(schema_name), **body, "model_name": model}
    params.pop("model", None)
    return params
