"""Pitfall 10: shipping untested. Let Hypothesis try every shape of request against the mock."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from kling_testkit.client import KlingClient
from kling_testkit.control import MockControl
from kling_testkit.errors import InvalidRequestError
from kling_testkit.strategies import (
    InvalidRequest,
    invalid_text2video_requests,
    text2video_requests,
)

# Function-scoped fixtures are shared by the examples of one test, so each example resets the
# mock itself (an external_task_id may only be used once per account).
EXAMPLES = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@EXAMPLES
@given(body=text2video_requests())
def test_every_valid_request_is_accepted(
    kling_mock: MockControl, kling_client: KlingClient, body: dict[str, object]
) -> None:
    kling_mock.reset()
    created = kling_client.create_task("text2video", body)
    assert created["task_status"] == "submitted"


@EXAMPLES
@given(broken=invalid_text2video_requests())
def test_every_broken_request_is_refused_naming_the_field(
    kling_client: KlingClient, broken: InvalidRequest
) -> None:
    try:
        kling_client.create_task("text2video", broken.body)
    except InvalidRequestError as error:
        assert broken.field.split(".")[0].split("[")[0] in error.message
    else:
        raise AssertionError(f"the mock accepted {broken.body!r}")
