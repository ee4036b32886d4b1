"""Each documented request limit is refused with 400/1201 (404/1203 for an unknown model).

The cases are generated from the document, one per limit. A target that keeps the contract
refuses every one and nothing is created; one that does not would create (and charge) a task,
so on a target that is not a mock each case holds one unit of the budget until it is refused.
"""

from __future__ import annotations

from typing import Any

import pytest

from contract_tests.conftest import Target, expect_error
from kling_testkit.codes import ErrorCode
from kling_testkit.spec import families, field, operation_path, schema

FAMILIES = ("text2video", "image_generation")  # inputs that need no image to fetch


def base_body(family: str) -> dict[str, Any]:
    return {"prompt": "a contract check, never meant to run"}


def _cases() -> list[Any]:
    cases = []
    for family in FAMILIES:
        request = families()[family].request_schema
        for name in schema(request)["properties"]:
            spec = field(request, name)
            bad: dict[str, Any] = {}
            if "enum" in spec:
                bad["enum"] = "not-a-documented-value"
            if spec.get("type") == "string" and "maxLength" in spec:
                bad["maxLength"] = "x" * (int(spec["maxLength"]) + 1)
            if spec.get("type") in ("integer", "number") and "maximum" in spec:
                bad["maximum"] = spec["maximum"] + 1
            if spec.get("type") in ("integer", "number") and "minimum" in spec:
                bad["minimum"] = spec["minimum"] - 1
            if spec.get("type") in ("integer", "number", "string"):
                bad["type"] = {"an": "object"}
            for rule, value in bad.items():
                model = name in ("model", "model_name")  # a wrong model is its own code
                code = ErrorCode.RESOURCE_NOT_FOUND if model else ErrorCode.INVALID_VALUE
                cases.append(pytest.param(family, name, value, code, id=f"{family}.{name}.{rule}"))
        cases.append(
            pytest.param(
                family, "no_such_field", 1, ErrorCode.INVALID_VALUE, id=f"{family}.unknown"
            )
        )
    return cases


@pytest.mark.paid(0)
@pytest.mark.parametrize(("family", "name", "value", "code"), _cases())
def test_a_documented_limit_is_refused(
    target: Target, family: str, name: str, value: Any, code: ErrorCode
) -> None:
    body = {**base_body(family), name: value}
    if name == "prompt" and not isinstance(value, str):
        body = {**base_body(family), "prompt": value}
    held = None
    if not target.is_mock:  # in case the target accepts it: one unit, given back when refused
        held = target.spender.reserve(family, base_body(family))
    answer = target.api.post(families()[family].path, body)
    expect_error(answer, code.http_status, code)
    if held is not None:
        target.spender.refund(held)


EDIT = {"session_id": "0", "edit_mode": "removal", "prompt": "a contract check", "duration": "5"}


@pytest.mark.paid(0)
@pytest.mark.parametrize(
    ("operation", "body"),
    [
        ("init_selection", {"video_id": "100000000000000000"}),  # no video of the account's
        ("add_selection", {"frame_index": 0, "points": [{"x": 0.5, "y": 0.5}]}),  # no session
        ("identify_face", {"video_id": "100000000000000000"}),
    ],
    ids=["init-unknown-video", "add-without-session", "identify-unknown-video"],
)
def test_a_session_call_without_its_video_or_session_is_refused(
    target: Target, operation: str, body: dict[str, Any]
) -> None:
    """Multi-elements selection calls and identify-face are synchronous and open no task;
    whether the real API meters them is not documented (identify-face answers a
    ``final_unit_deduction``), so on a target that is not a mock each holds the price of an
    edit until it is refused."""
    held = None if target.is_mock else target.spender.reserve("multi_elements", EDIT)
    answer = target.api.post(operation_path(operation), body)
    expect_error(answer, 400, ErrorCode.INVALID_VALUE)
    if held is not None:
        target.spender.refund(held)
