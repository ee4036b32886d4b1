"""Properties of the Hypothesis strategies: valid bodies pass the contract check, invalid ones
break exactly one rule, and every limit they use is the one in the OpenAPI document."""

from __future__ import annotations

import base64
import copy
import re
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import find, given, settings
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from kling_testkit import strategies as ks
from kling_testkit.codes import ErrorCode
from kling_testkit.credentials import MOCK_API_KEY
from kling_testkit.spec import (
    ContractViolation,
    check_request,
    defaults,
    families,
    field,
    image_size,
    openapi,
    schema,
)
from kling_testkit.spec.document import DESIGN_2026, SPEC_URI, designs, exclusions, resolve
from kling_testkit.spec.validation import field_path
from kling_testkit.strategies_2026 import Violation, violations
from kling_testkit.strategies_2026 import invalid_requests as invalid_2026

KEY = {"Authorization": f"Bearer {MOCK_API_KEY}"}
SETTINGS = settings(max_examples=60, deadline=None)
T2V = families()["text2video"].request_schema
PROMPT = field(T2V, "prompt")
IMAGE = families()["image_generation"].request_schema
IMAGE_DEFAULTS = defaults(IMAGE)
VALID = {
    "text2video": ks.text2video_requests,
    "image2video": ks.image2video_requests,
    "image_generation": ks.image_generation_requests,
}
INVALID = {
    "text2video": ks.invalid_text2video_requests,
    "image2video": ks.invalid_image2video_requests,
    "image_generation": ks.invalid_image_generation_requests,
}
# How a JSON Schema keyword is named in InvalidRequest.rule.
RULE_OF = {"minimum": "range", "maximum": "range", "additionalProperties": "unknown_field"}


def schema_errors(family: str, body: dict[str, Any], form_only: bool = False) -> list[Any]:
    """Every JSON Schema error of ``body`` against the family's request schema (``form_only``:
    without its top-level ``allOf``, where a 2026 schema states its contents rules)."""
    name = families()[family].request_schema
    document = openapi()
    if form_only:
        document = copy.deepcopy(document)
        document["components"]["schemas"][name].pop("allOf", None)
    resource = Resource.from_contents(document, default_specification=DRAFT202012)
    ref = {"$ref": f"{SPEC_URI}#/components/schemas/{name}"}
    validator = Draft202012Validator(ref, registry=Registry().with_resource(SPEC_URI, resource))
    return list(validator.iter_errors(body))


def models(family: str) -> list[str]:
    return list(field(families()[family].request_schema, "model_name")["enum"])


@pytest.mark.parametrize("family", sorted(VALID))
@SETTINGS
@given(data=st.data())
def test_valid_bodies_pass_the_contract(family: str, data: st.DataObject) -> None:
    body = data.draw(VALID[family]())
    check_request(family, body)
    assert not schema_errors(family, body)


@pytest.mark.parametrize("family", sorted(VALID))
@SETTINGS
@given(data=st.data())
def test_models_restrict_model_name(family: str, data: st.DataObject) -> None:
    chosen = data.draw(st.lists(st.sampled_from(models(family)), min_size=1, unique=True))
    body = data.draw(VALID[family](models=chosen))
    assert body["model_name"] in chosen
    check_request(family, body)


@SETTINGS
@given(body=ks.image_generation_requests(models=[IMAGE_DEFAULTS["model_name"]]))
def test_default_image_model_gets_only_its_aspect_ratios(body: dict[str, Any]) -> None:
    check_request("image_generation", body)
    if "aspect_ratio" in body:
        assert body["aspect_ratio"] in field(IMAGE, "aspect_ratio")["enum"]


@SETTINGS
@given(data=st.data())
def test_prompts_respect_sizes_and_pattern(data: st.DataObject) -> None:
    high = data.draw(st.integers(1, PROMPT["maxLength"]))
    low = data.draw(st.integers(1, min(high, 40)))
    prompt = data.draw(ks.prompts(min_size=low, max_size=high))
    assert low <= len(prompt) <= high
    assert re.search(PROMPT["pattern"], prompt)
    assert prompt.strip()
    check_request("text2video", {"prompt": prompt})


@SETTINGS
@given(
    a=ks.prompts(alphabet=" \tab"),
    b=ks.prompts(alphabet=st.characters(codec="ascii"), max_size=30),
)
def test_prompts_alphabet(a: str, b: str) -> None:
    assert set(a) <= set(" \tab") and a.strip()
    assert len(b) <= 30 and b.strip() and re.search(PROMPT["pattern"], b)


@SETTINGS
@given(negative=ks.negative_prompts(), short=ks.negative_prompts(max_size=5))
def test_negative_prompts(negative: str, short: str) -> None:
    assert len(short) <= 5
    assert len(negative) <= field(T2V, "negative_prompt")["maxLength"]
    check_request("text2video", {"prompt": "p", "negative_prompt": negative})


@SETTINGS
@given(control=ks.camera_controls())
def test_camera_controls(control: dict[str, Any]) -> None:
    check_request("text2video", {"prompt": "p", "camera_control": control})
    axes = schema("CameraConfig")["properties"]
    if "config" in control:
        moving = [a for a, v in control["config"].items() if v != 0]
        assert len(moving) == 1
        node = resolve(axes[moving[0]])
        assert node["minimum"] <= control["config"][moving[0]] <= node["maximum"]


@SETTINGS
@given(ids=st.lists(ks.external_task_ids(), min_size=2, max_size=5))
def test_external_task_ids(ids: list[str]) -> None:
    for value in ids:
        assert len(value) <= field(T2V, "external_task_id")["maxLength"]
        check_request("text2video", {"prompt": "p", "external_task_id": value})


@pytest.mark.parametrize("family", sorted(INVALID))
@SETTINGS
@given(data=st.data())
def test_invalid_bodies_break_exactly_one_rule(family: str, data: st.DataObject) -> None:
    invalid = data.draw(INVALID[family]())
    with pytest.raises(ContractViolation) as caught:
        check_request(family, invalid.body)
    assert caught.value.field == invalid.field
    model_error = invalid.rule == "enum" and invalid.field == "model_name"
    expected = ErrorCode.RESOURCE_NOT_FOUND if model_error else ErrorCode.INVALID_VALUE
    assert caught.value.code == expected
    (error,) = schema_errors(family, invalid.body)
    assert RULE_OF.get(str(error.validator), str(error.validator)) == invalid.rule


@pytest.mark.parametrize("family", sorted(INVALID))
def test_every_rule_is_generated(family: str) -> None:
    seen: set[str] = set()

    @settings(max_examples=200, deadline=None, derandomize=True, database=None)
    @given(invalid=INVALID[family]())
    def collect(invalid: ks.InvalidRequest) -> None:
        seen.add(invalid.rule)

    collect()
    rules = {"maxLength", "enum", "type", "range", "unknown_field", "required", "pattern"}
    assert seen == rules


def test_prompt_max_length_is_the_documents() -> None:
    limit = field("Text2VideoRequest", "prompt")["maxLength"]
    longest = find(ks.prompts(min_size=limit), lambda _: True, settings=settings(database=None))
    assert len(longest) == limit
    with pytest.raises(InvalidArgument, match=str(limit)):
        ks.prompts(max_size=limit + 1)


@pytest.mark.parametrize(
    "make",
    [
        lambda: ks.prompts(max_size=PROMPT["maxLength"] + 1),
        lambda: ks.prompts(min_size=5, max_size=4),
        lambda: ks.prompts(min_size=0),
        lambda: ks.prompts(alphabet="ab\x00"),
        lambda: ks.prompts(alphabet=" \t"),
        lambda: ks.negative_prompts(max_size=field(T2V, "negative_prompt")["maxLength"] + 1),
        lambda: ks.text2video_requests(models=["kling-nope"]),
        lambda: ks.text2video_requests(models=[]),
        lambda: ks.image2video_requests(models=models("image2video")[0]),
        lambda: ks.image_generation_requests(
            models=sorted(set(models("image2video")) - set(models("image_generation")))
        ),
    ],
)
def test_arguments_are_checked_eagerly(make: Any) -> None:
    with pytest.raises(InvalidArgument):
        make()


@SETTINGS
@given(image=ks.base64_images(), png_only=ks.base64_images(formats=["png"]))
def test_base64_images_are_real_images_within_the_documented_limits(
    image: str, png_only: str
) -> None:
    limits = schema("ImageInput")["x-kling-image"]
    for value in (image, png_only):
        raw = base64.b64decode(value, validate=True)
        found = image_size(raw)
        assert found is not None and found[0] in limits["formats"]
        _, width, height = found
        assert min(width, height) >= limits["min_side_px"]
        assert max(width, height) <= limits["max_aspect"] * min(width, height)
        assert len(raw) <= limits["max_bytes"]
        check_request("image2video", {"image": value})
    assert image_size(base64.b64decode(png_only))[0] == "png"  # type: ignore[index]


def test_base64_images_meet_the_edges_of_the_limits() -> None:
    limits = schema("ImageInput")["x-kling-image"]

    def sides(value: str) -> tuple[int, int]:
        found = image_size(base64.b64decode(value))
        assert found is not None
        return found[1], found[2]

    quick = settings(database=None, max_examples=500)
    smallest = find(
        ks.base64_images(), lambda v: min(sides(v)) == limits["min_side_px"], settings=quick
    )
    assert min(sides(smallest)) == limits["min_side_px"]
    widest = find(
        ks.base64_images(),
        lambda v: max(sides(v)) / min(sides(v)) > limits["max_aspect"] - 0.05,
        settings=quick,
    )
    assert max(sides(widest)) <= limits["max_aspect"] * min(sides(widest))


@pytest.mark.parametrize("formats", [[], ["gif"], "png"], ids=["empty", "gif", "a-string"])
def test_base64_images_refuses_formats_outside_the_contract(formats: Any) -> None:
    with pytest.raises(InvalidArgument):
        ks.base64_images(formats=formats)


@SETTINGS
@given(body=ks.image2video_requests())
def test_generated_image_fields_are_urls_or_inline_images(body: dict[str, Any]) -> None:
    for name in ("image", "image_tail", "static_mask"):
        if name in body:
            value = body[name]
            assert value.startswith("https://") or image_size(base64.b64decode(value))


def test_exclusive_fields_are_never_drawn_together() -> None:
    excluded = exclusions(families()["image2video"].request_schema)
    seen: set[frozenset[str]] = set()

    @settings(max_examples=200, deadline=None, derandomize=True, database=None)
    @given(body=ks.image2video_requests())
    def collect(body: dict[str, Any]) -> None:
        for name in body:
            assert not excluded.get(name, frozenset()) & set(body), body
        seen.add(frozenset(body) & {"image_tail", "static_mask", "dynamic_masks", "camera_control"})

    collect()
    assert {frozenset({"image_tail"}), frozenset({"camera_control"})} <= seen


# -- the 2026 design: contents[], settings{}, options{} -----------------------------------------

NEW = sorted(designs(DESIGN_2026))
SCHEMA_RULES = {"maxLength", "enum", "type", "unknown_field", "required", "pattern"}


def contents_rules(family: str) -> set[str]:
    """The rules of ``x-kling-family.contents`` a body of ``family`` can break alone."""
    meta = families()[family].contents
    counts = meta["counts"]
    found = {"counts"}
    if sum(high for _, high in counts.values()) >= 2:
        found.add("unique")
    if any(counts[need][0] == 0 for needed in meta["needs"].values() for need in needed):
        found.add("needs")
    for rule in meta["rules"]:
        found |= {key for key in ("requires", "excludes", "max_total", "settings") if key in rule}
    return found


@pytest.mark.parametrize("family", NEW)
@SETTINGS
@given(data=st.data())
def test_2026_bodies_keep_every_contents_rule(family: str, data: st.DataObject) -> None:
    body = data.draw(ks.requests(family))
    params = check_request(family, body)
    assert not schema_errors(family, body)
    assert violations(family, body) == []
    assert params["model_name"] == families()[family].model
    counts = families()[family].contents["counts"]
    for kind, (least, most) in counts.items():
        assert least <= sum(item["type"] == kind for item in body["contents"]) <= most


@pytest.mark.parametrize("family", NEW)
def test_2026_bodies_are_created_by_the_mock(client: FlaskClient, family: str) -> None:
    quick = settings(max_examples=8, deadline=None, derandomize=True, database=None)

    @quick
    @given(body=ks.requests(family))
    def post(body: dict[str, Any]) -> None:
        body.get("options", {}).pop("callback_url", None)  # no callbacks to example.com
        body.get("options", {}).pop("external_task_id", None)  # the mock keeps them unique
        response = client.post(families()[family].path, json=body, headers=KEY)
        assert response.status_code == 200, (body, response.json)

    post()


@pytest.mark.parametrize("family", NEW)
@SETTINGS
@given(data=st.data())
def test_2026_invalid_bodies_break_exactly_one_rule(family: str, data: st.DataObject) -> None:
    invalid = data.draw(ks.invalid_requests(family))
    with pytest.raises(ContractViolation) as caught:
        check_request(family, invalid.body)
    assert caught.value.field == invalid.field
    assert caught.value.code == ErrorCode.INVALID_VALUE
    errors = schema_errors(family, invalid.body, form_only=True)
    if invalid.rule in SCHEMA_RULES | {"range"}:
        # One broken value (a prompt's type is said twice: by ContentItem and the family).
        assert {(RULE_OF.get(str(e.validator), str(e.validator))) for e in errors} == {invalid.rule}
        # jsonschema puts a missing or unknown key at its object, the others at the value.
        for error in errors:
            assert invalid.field.startswith(field_path(error.absolute_path)), error
    else:
        assert not errors
        assert violations(family, invalid.body) == [Violation(invalid.rule, invalid.field)]
        if invalid.rule != "unique":  # JSON Schema cannot say "no two items share an id"
            assert schema_errors(family, invalid.body)  # it states the other contents rules


@pytest.mark.parametrize("family", NEW)
def test_2026_every_rule_is_generated(family: str) -> None:
    settings_node = field(families()[family].request_schema, "settings")["properties"]
    ranged = any("minimum" in resolve(n) for n in settings_node.values())
    rules = SCHEMA_RULES | contents_rules(family) | ({"range"} if ranged else set())
    quick = settings(max_examples=3, deadline=None, derandomize=True, database=None)

    def refused(rule: str) -> None:
        @quick
        @given(invalid=invalid_2026(family, [rule]))
        def check(invalid: ks.InvalidRequest) -> None:
            assert invalid.rule == rule
            with pytest.raises(ContractViolation) as caught:
                check_request(family, invalid.body)
            assert caught.value.field == invalid.field

        check()

    for rule in sorted(rules):
        refused(rule)

    @settings(max_examples=50, deadline=None, derandomize=True, database=None)
    @given(invalid=ks.invalid_requests(family))
    def only_these(invalid: ks.InvalidRequest) -> None:
        assert invalid.rule in rules

    only_these()


def test_2026_families_refuse_models() -> None:
    with pytest.raises(InvalidArgument, match="path"):
        ks.requests(NEW[0], models=["kling-v1"])
