"""Unit tests of the contract package: the OpenAPI document and the checks built on it."""

from __future__ import annotations

import base64
import json
import re
import struct
import zlib
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kling_testkit.codes import ErrorCode
from kling_testkit.spec import (
    ContractViolation,
    check_request,
    defaults,
    families,
    field,
    image_size,
    openapi,
    parameter,
    parse_query,
    schema,
)
from kling_testkit.spec.document import exclusions
from kling_testkit.spec.rules import check_url

URL = "https://example.com/cat.png"


def png(width: int, height: int) -> bytes:
    """A minimal valid 8-bit greyscale PNG of the given size (black pixels)."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"\x00" * ((width + 1) * height))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def jpeg(width: int, height: int) -> bytes:
    """SOI, a JFIF APP0 segment, an SOF0 frame header of the given size, EOI."""
    app0 = (
        b"\xff\xe0"
        + struct.pack(">H", 16)
        + b"JFIF\x00\x01\x01\x00"
        + struct.pack(">HHBB", 1, 1, 0, 0)
    )
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xd9"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def refusal(family: str, body: dict[str, Any]) -> ContractViolation:
    with pytest.raises(ContractViolation) as caught:
        check_request(family, body)
    return caught.value


# ------------------------------------------------------------------ document


def test_families_lists_every_served_family_with_paths_results_and_packs() -> None:
    found = {f.name: (f.path, f.results, f.pack) for f in families().values()}
    assert found == {
        "text2video": ("/v1/videos/text2video", ("videos",), "video"),
        "image2video": ("/v1/videos/image2video", ("videos",), "video"),
        "image_generation": ("/v1/images/generations", ("images",), "image"),
        "multi_image2video": ("/v1/videos/multi-image2video", ("videos",), "video"),
        "video_extend": ("/v1/videos/video-extend", ("videos",), "video"),
        "lip_sync": ("/v1/videos/lip-sync", ("videos",), "video"),
        "effects": ("/v1/videos/effects", ("videos",), "video"),
        "omni_video": ("/v1/videos/omni-video", ("videos",), "video"),
        "virtual_try_on": ("/v1/images/kolors-virtual-try-on", ("images",), "try_on"),
        "text_to_audio": ("/v1/audio/text-to-audio", ("audios",), "audio"),
        "video_to_audio": ("/v1/audio/video-to-audio", ("videos", "audios"), "audio"),
        "motion_control": ("/v1/videos/motion-control", ("videos",), "video"),
        "multi_elements": ("/v1/videos/multi-elements", ("videos",), "video"),
        "advanced_lip_sync": ("/v1/videos/advanced-lip-sync", ("videos",), "video"),
        # the 2026 design: the model in the path, videos drawn on the video packs
        "image-to-video/kling-2.5-turbo": ("/image-to-video/kling-2.5-turbo", ("videos",), "video"),
        "image-to-video/kling-2.6": ("/image-to-video/kling-2.6", ("videos",), "video"),
        "image-to-video/kling-3.0": ("/image-to-video/kling-3.0", ("videos",), "video"),
        "image-to-video/kling-3.0-turbo": ("/image-to-video/kling-3.0-turbo", ("videos",), "video"),
        "motion-control/kling-2.6": ("/motion-control/kling-2.6", ("videos",), "video"),
        "motion-control/kling-3.0": ("/motion-control/kling-3.0", ("videos",), "video"),
        "omni-video/kling-3.0-omni": ("/omni-video/kling-3.0-omni", ("videos",), "video"),
        "omni-video/kling-o1": ("/omni-video/kling-o1", ("videos",), "video"),
        "text-to-video/kling-2.5-turbo": ("/text-to-video/kling-2.5-turbo", ("videos",), "video"),
        "text-to-video/kling-2.6": ("/text-to-video/kling-2.6", ("videos",), "video"),
        "text-to-video/kling-3.0": ("/text-to-video/kling-3.0", ("videos",), "video"),
        "text-to-video/kling-3.0-turbo": ("/text-to-video/kling-3.0-turbo", ("videos",), "video"),
    }


def test_text2video_defaults_are_the_documented_ones() -> None:
    found = defaults("Text2VideoRequest")
    expected = {
        "model_name": "kling-v1",
        "mode": "std",
        "duration": "5",
        "aspect_ratio": "16:9",
        "cfg_scale": 0.5,
    }
    assert {k: found.get(k) for k in expected} == expected


# ------------------------------------------------------------------ effective params


def test_check_request_fills_documented_defaults() -> None:
    params = check_request("text2video", {"prompt": "a cat"})
    assert params == {
        "prompt": "a cat",
        "model_name": "kling-v1",
        "mode": "std",
        "duration": "5",
        "aspect_ratio": "16:9",
        "cfg_scale": 0.5,
        "sound": "off",
        "multi_shot": False,
    }


def test_legacy_model_is_folded_into_model_name() -> None:
    params = check_request("text2video", {"prompt": "a cat", "model": "kling-v1-6"})
    assert params["model_name"] == "kling-v1-6"
    assert "model" not in params


@pytest.mark.parametrize("model", ["kling-v1", "kling-v3"], ids=["disagreeing", "agreeing"])
@pytest.mark.parametrize("family", ["text2video", "image2video", "image_generation"])
def test_model_and_model_name_together_are_refused(family: str, model: str) -> None:
    body = {"prompt": "a cat", "image": URL, "model": model, "model_name": "kling-v3"}
    if family == "text2video":
        del body["image"]
    error = refusal(family, body)
    assert error.field == "model"
    assert (
        error.message == "model is the legacy alias of model_name: send model_name only, not both"
    )


# ------------------------------------------------------------------ violations


@pytest.mark.parametrize(
    ("body", "where", "says"),
    [
        pytest.param({}, "prompt", "prompt is required", id="missing-prompt"),
        pytest.param(
            {"prompt": "x", "colour": "red"}, "colour", "unknown field 'colour'", id="unknown"
        ),
        pytest.param({"prompt": "x", "duration": 5}, "duration", "string", id="wrong-type"),
        pytest.param({"prompt": "x", "mode": "standard"}, "mode", "'std', 'pro'", id="enum"),
        pytest.param({"prompt": "a\x00b"}, "prompt", "control characters", id="nul"),
        pytest.param({"prompt": "a\ud800b"}, "prompt", "unpaired surrogates", id="surrogate"),
        pytest.param({"prompt": " \t\n "}, "prompt", "white space", id="whitespace-only"),
        pytest.param({"prompt": "x", "cfg_scale": 1.5}, "cfg_scale", "between 0 and 1", id="cfg"),
        pytest.param(
            {"prompt": "x", "callback_url": "ftp://x"}, "callback_url", "http(s)", id="ftp"
        ),
    ],
)
def test_violation_names_the_field_and_the_expectation(
    body: dict[str, Any], where: str, says: str
) -> None:
    error = refusal("text2video", body)
    assert error.field == where
    assert error.message.startswith(where) or f"'{where}'" in error.message
    assert says in error.message
    assert error.code is ErrorCode.INVALID_VALUE


def test_prompt_over_the_documented_limit_is_refused() -> None:
    limit = field("Text2VideoRequest", "prompt")["maxLength"]
    assert check_request("text2video", {"prompt": "p" * limit})["prompt"] == "p" * limit
    error = refusal("text2video", {"prompt": "p" * (limit + 1)})
    assert error.field == "prompt"
    assert f"at most {limit} characters" in error.message


def test_emoji_and_cjk_prompt_is_accepted() -> None:
    prompt = "🐱 在雨中奔跑的猫 🌧️ 猫が走る"
    assert check_request("text2video", {"prompt": prompt})["prompt"] == prompt


def test_unknown_model_is_resource_not_found() -> None:
    error = refusal("text2video", {"prompt": "x", "model_name": "kling-v99"})
    assert error.code is ErrorCode.RESOURCE_NOT_FOUND
    assert error.code == 1203
    assert error.field == "model_name"
    assert "kling-v99" in error.message


@pytest.mark.parametrize(
    "config",
    [None, {"pan": 3, "zoom": 2}, {"pan": 0, "tilt": 0}],
    ids=["no-config", "two-axes", "all-zero"],
)
def test_simple_camera_needs_exactly_one_moving_axis(config: dict[str, int] | None) -> None:
    control: dict[str, Any] = {"type": "simple"}
    if config is not None:
        control["config"] = config
    error = refusal("text2video", {"prompt": "x", "camera_control": control})
    assert error.field == "camera_control.config"
    assert "exactly one non-zero axis" in error.message


def test_simple_camera_with_one_moving_axis_is_accepted() -> None:
    control = {"type": "simple", "config": {"pan": 5, "zoom": 0}}
    assert check_request("text2video", {"prompt": "x", "camera_control": control})


def test_nested_out_of_range_axis_is_named_by_its_path() -> None:
    control = {"type": "simple", "config": {"pan": 11}}
    error = refusal("text2video", {"prompt": "x", "camera_control": control})
    assert error.field == "camera_control.config.pan"
    assert error.message.startswith("camera_control.config.pan must be between -10 and 10")


# ------------------------------------------------------------------ image2video


def test_image2video_without_any_image_is_refused() -> None:
    error = refusal("image2video", {"prompt": "x"})
    assert "image or image_tail is required" in error.message


def test_image2video_with_image_tail_alone_is_accepted() -> None:
    assert check_request("image2video", {"image_tail": URL})["image_tail"] == URL


def test_image_tail_with_camera_control_is_refused() -> None:
    body = {"image_tail": URL, "camera_control": {"type": "down_back"}}
    error = refusal("image2video", body)
    assert "cannot be used together" in error.message
    assert error.field == "camera_control"


def test_voice_list_without_sound_on_is_refused() -> None:
    body = {"image": URL, "voice_list": [{"voice_id": "v1"}], "sound": "off"}
    error = refusal("image2video", body)
    assert error.field == "voice_list"
    assert "sound 'on'" in error.message


# ------------------------------------------------------------------ image fields


@pytest.mark.parametrize(
    "value",
    [b64(png(300, 300)), b64(jpeg(400, 300)), URL],
    ids=["png-300x300", "jpeg-400x300", "https-url"],
)
def test_valid_image_is_accepted(value: str) -> None:
    assert check_request("image2video", {"image": value})["image"] == value


@pytest.mark.parametrize(
    ("value", "says"),
    [
        pytest.param(b64(png(299, 400)), "at least 300 px", id="min-side"),
        pytest.param(b64(png(300, 800)), "aspect ratio", id="aspect"),
        pytest.param("data:image/png;base64," + b64(png(300, 300)), "valid base64", id="data-uri"),
        pytest.param("not base64 at all!", "valid base64", id="garbage"),
        pytest.param(b64(b"GIF89a, not a jpeg or png"), "jpeg, png", id="not-an-image"),
        pytest.param("https://", "http(s) URL", id="url-without-host"),
    ],
)
def test_invalid_image_is_refused(value: str, says: str) -> None:
    error = refusal("image2video", {"image": value})
    assert error.field == "image"
    assert says in error.message


def test_data_uri_message_says_file_is_not_valid_base64() -> None:
    error = refusal("image2video", {"image": "data:image/png;base64," + b64(png(300, 300))})
    assert "File is not in a valid base64 format" in error.message


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (png(321, 654), ("png", 321, 654)),
        (jpeg(400, 300), ("jpeg", 400, 300)),
        (b"GIF89a" + b"\x00" * 20, None),
        (b"", None),
    ],
    ids=["png", "jpeg", "gif", "empty"],
)
def test_image_size_reads_format_and_dimensions(
    data: bytes, expected: tuple[str, int, int] | None
) -> None:
    assert image_size(data) == expected


# ------------------------------------------------------------------ image_generation


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"image": URL, "negative_prompt": "blur"}, "negative_prompt"),
        ({"image_reference": "subject"}, "image_reference"),
        ({"aspect_ratio": "21:9", "model_name": "kling-v1"}, "aspect_ratio"),
        ({"n": 10}, "n"),
    ],
    ids=["negative-with-image", "reference-without-image", "21x9-on-v1", "n-10"],
)
def test_image_generation_rule_is_enforced(body: dict[str, Any], where: str) -> None:
    error = refusal("image_generation", {"prompt": "a cat", **body})
    assert error.field == where
    assert where in error.message


@pytest.mark.parametrize(
    "body",
    [{"aspect_ratio": "21:9", "model_name": "kling-v2-1"}, {"n": 9}],
    ids=["21x9-on-v2-1", "n-9"],
)
def test_image_generation_allowed_options_are_accepted(body: dict[str, Any]) -> None:
    params = check_request("image_generation", {"prompt": "a cat", **body})
    assert params.items() >= body.items()


# ------------------------------------------------------------------ query parameters


def _paging() -> dict[str, dict[str, Any]]:
    return {"pageNum": parameter("pageNum"), "pageSize": parameter("pageSize")}


def test_paging_defaults_come_from_the_document() -> None:
    assert parse_query(_paging(), {}) == {"pageNum": 1, "pageSize": 30}


@pytest.mark.parametrize("name", ["pageNum", "pageSize"])
@pytest.mark.parametrize(
    "bad", ["below", "above", "-1", "abc", "\u0661", "99999999999999999999", "1_0"]
)
def test_out_of_range_or_non_integer_page_parameter_is_refused(name: str, bad: str) -> None:
    limits = parameter(name)["schema"]
    raw = {"below": str(limits["minimum"] - 1), "above": str(limits["maximum"] + 1)}.get(bad, bad)
    with pytest.raises(ContractViolation) as caught:
        parse_query(_paging(), {name: raw})
    assert caught.value.field == name
    assert name in caught.value.message


def test_page_parameters_at_their_limits_are_accepted() -> None:
    num, size = parameter("pageNum")["schema"], parameter("pageSize")["schema"]
    query = {"pageNum": str(num["maximum"]), "pageSize": str(size["minimum"])}
    assert parse_query(_paging(), query) == {"pageNum": num["maximum"], "pageSize": size["minimum"]}


# ------------------------------------------------------------------ error codes


def test_every_error_code_has_an_http_status() -> None:
    for code in ErrorCode:
        assert 200 <= code.http_status <= 599, code


@pytest.mark.parametrize(
    ("code", "status"),
    [(1001, 401), (1102, 429), (1201, 400), (1202, 404), (1203, 404), (1303, 429), (5000, 500)],
)
def test_documented_code_travels_with_its_http_status(code: int, status: int) -> None:
    assert ErrorCode(code).http_status == status


def test_the_documents_error_code_table_is_the_one_in_codes() -> None:
    table = openapi()["x-kling-error-codes"]["codes"]
    documented = {(row["code"], row["name"], row["http_status"]) for row in table}
    assert documented == {(int(code), code.name, code.http_status) for code in ErrorCode}
    assert all(row["meaning"] for row in table)
    assert [row["code"] for row in table] == sorted(int(code) for code in ErrorCode)


def test_every_error_response_points_at_a_section_that_exists() -> None:
    doc = openapi()
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            described = operation["responses"]["default"]["description"]
            for name in re.findall(r"x-kling-[a-z-]+", described):
                assert name in doc, f"{method.upper()} {path} points at missing {name}"


# ------------------------------------------------------------------ rules stated in the schema


URL_PATTERN = re.compile(schema("HttpUrl")["pattern"])
PROMPT_PATTERN = re.compile(schema("Prompt")["pattern"])
TEXT_PATTERN = re.compile(schema("NegativePrompt")["pattern"])
CONTROLS = {chr(c) for c in [*range(0x09), 0x0B, 0x0C, *range(0x0E, 0x20), 0x7F]}


@settings(max_examples=300, deadline=None)
@given(url=st.from_regex(URL_PATTERN, fullmatch=True))
def test_every_url_the_pattern_admits_is_an_absolute_http_url_with_a_host(url: str) -> None:
    parts = urlsplit(url)
    assert parts.scheme.lower() in ("http", "https") and parts.hostname
    assert parts.port is None or 0 <= parts.port <= 65535
    check_url("callback_url", url)


@pytest.mark.parametrize(
    ("url", "admitted"),
    [
        ("https://example.com/hooks/1?x=y#z", True),
        ("HTTP://EXAMPLE.COM", True),
        ("http://user:pw@127.0.0.1:8080/cb", True),
        ("http://[::1]:9000/cb", True),
        ("http://[2001:db8::8a2e:370:7334]/", True),
        ("http://[x", False),
        ("http://[::1/hook", False),
        ("http://[not-ipv6]/", False),
        ("http://[127.0.0.1]/", False),
        ("http://host:65536/", False),
        ("http://a b/", False),
        ("http://example.com/a b", False),
        ("http://example.com/\x00", False),
        ("http://ex\u00e4mple.com/", False),  # non-ASCII host: send its xn-- form
        ("https://", False),
        ("http://@/x", False),
        ("ftp://example.com/", False),
        ("//example.com/", False),
    ],
)
def test_url_pattern_admits_exactly_what_the_mock_can_use(url: str, admitted: bool) -> None:
    assert (URL_PATTERN.search(url) is not None) is admitted
    assert (not refused_field("text2video", {"prompt": "x", "callback_url": url})) is admitted


def refused_field(family: str, body: dict[str, Any]) -> str | None:
    try:
        check_request(family, body)
    except ContractViolation as exc:
        return exc.field
    return None


TEXTS = st.text(
    st.sampled_from(sorted(CONTROLS | {" ", "\t", "\n", "\r", "\u3000", "\u00a0", "\x85"}))
    | st.characters(codec="utf-8", exclude_categories=["Cs"]),
    max_size=20,
)


@settings(max_examples=400, deadline=None)
@given(text=TEXTS)
def test_prompt_pattern_is_no_control_character_and_more_than_white_space(text: str) -> None:
    wanted = not (set(text) & CONTROLS) and bool(text.strip())
    assert (PROMPT_PATTERN.search(text) is not None) is wanted
    assert (TEXT_PATTERN.search(text) is not None) is (not set(text) & CONTROLS)
    assert (refused_field("text2video", {"prompt": text}) is None) is wanted


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"prompt": "a\ud800b"}, "prompt"),
        ({"prompt": "x", "callback_url": "https://example.com/\udc00"}, "callback_url"),
        (
            {"prompt": "x", "watermark_info": {"enabled": True, "\ud83d": 1}},
            "watermark_info.\ud83d",
        ),
    ],
    ids=["prompt", "callback-url", "key"],
)
def test_an_unpaired_surrogate_anywhere_is_refused_naming_where(
    body: dict[str, Any], where: str
) -> None:
    error = refusal("text2video", body)
    assert error.field == where
    assert "unpaired surrogates" in error.message


def test_a_paired_surrogate_is_just_a_character() -> None:
    prompt = json.loads('"a \\ud83d\\ude00 b"')  # as a client's JSON encoder sends an emoji
    assert check_request("text2video", {"prompt": prompt})["prompt"] == "a \U0001f600 b"


def test_the_image_to_video_exclusions_are_stated_once_in_the_document() -> None:
    found = exclusions("Image2VideoRequest")
    assert found["image_tail"] == {
        "static_mask",
        "dynamic_masks",
        "camera_control",
    }
    assert found["camera_control"] == {"image_tail", "static_mask", "dynamic_masks"}
    assert found["static_mask"] == found["dynamic_masks"] == {"image_tail", "camera_control"}
    assert found["model"] == {"model_name"}


MASK = {"mask": URL, "trajectories": [{"x": 1, "y": 1}, {"x": 2, "y": 2}]}


@pytest.mark.parametrize(
    ("extra", "where", "other"),
    [
        ({"image_tail": URL, "static_mask": URL}, "static_mask", "image_tail"),
        ({"image_tail": URL, "dynamic_masks": [MASK]}, "dynamic_masks", "image_tail"),
        (
            {"static_mask": URL, "camera_control": {"type": "down_back"}},
            "camera_control",
            "static_mask",
        ),
    ],
    ids=["tail-static", "tail-dynamic", "static-camera"],
)
def test_exclusive_image_to_video_inputs_are_refused_naming_both(
    extra: dict[str, Any], where: str, other: str
) -> None:
    error = refusal("image2video", {"image": URL, **extra})
    assert error.field == where
    assert error.message == f"{where} cannot be used together with {other}"


def test_a_mask_given_inline_is_checked_as_an_image() -> None:
    body = {"image": URL, "dynamic_masks": [{**MASK, "mask": b64(png(100, 100))}]}
    error = refusal("image2video", body)
    assert error.field == "dynamic_masks[0].mask"
    assert "at least 300 px" in error.message
    assert check_request("image2video", {"image": URL, "dynamic_masks": [MASK]})


def test_simple_camera_with_a_config_that_is_no_object_breaks_one_rule() -> None:
    error = refusal(
        "text2video", {"prompt": "x", "camera_control": {"type": "simple", "config": 3}}
    )
    assert error.field == "camera_control.config"
    assert "must be of type object" in error.message


@pytest.mark.parametrize("url", ["http://[x", "http://[::1", "https://[::1/cb", "http://"])
def test_check_url_refuses_a_broken_host_instead_of_raising_value_error(url: str) -> None:
    with pytest.raises(ContractViolation) as caught:
        check_url("callback_url", url)
    assert caught.value.field == "callback_url"
    assert "absolute http(s) URL" in caught.value.message


def test_every_option_the_contract_allows_has_a_price() -> None:
    pricing = openapi()["x-kling-pricing"]
    for family in families().values():
        rule = family.price["rule"]
        if rule not in ("image", "video"):
            # priced without a model, or per output second (the 2026 families' per_second
            # rule): tests/test_families.py prices every family of both designs
            continue
        models = field(family.request_schema, "model_name")["enum"]
        if rule == "image":
            assert set(models) <= set(pricing["image"]), family.name
            continue
        modes = field(family.request_schema, "mode")["enum"]
        durations = field(family.request_schema, "duration")["enum"]
        for model in models:
            for mode in modes:
                fixed = pricing["video"].get(model, {}).get(mode, {})
                per_second = pricing["video_per_second"].get(model, {}).get(mode)
                assert set(durations) <= set(fixed) or per_second, (model, mode)


def test_the_validator_reads_component_refs_as_resources_and_leaves_data_alone() -> None:
    from kling_testkit.spec.validation import _own_refs, _schema_uri

    node = {
        "properties": {"a": {"$ref": "#/components/schemas/Prompt", "description": "x"}},
        "items": [{"$ref": "#/components/parameters/pageNum"}],
        "const": {"$ref": "#/components/schemas/Prompt"},
        "enum": [{"$ref": "#/components/schemas/Prompt"}],
        "default": {"$ref": "#/components/schemas/Prompt"},
    }
    rewritten = _own_refs(node)
    assert rewritten["properties"]["a"] == {"$ref": _schema_uri("Prompt"), "description": "x"}
    assert rewritten["items"] == node["items"]  # only component schemas have resources
    for literal in ("const", "enum", "default"):
        assert rewritten[literal] == node[literal]
    assert node["properties"]["a"]["$ref"] == "#/components/schemas/Prompt"  # a copy
