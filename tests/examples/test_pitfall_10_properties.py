"""Pitfall 10: shipping untested. Let Hypothesis try every shape of request against the mock."""

from __future__ import annotations

from hypothesis import given, settings

from kling_testkit.errors import InvalidRequestError
from kling_testkit.pytest_plugin import KlingTarget
from kling_testkit.strategies import (
    InvalidRequest,
    invalid_text2video_requests,
    text2video_requests,
)

# Each example needs fresh state (an external_task_id may only be used once per account), so
# the examples take the session-scoped target and ask it for fresh state themselves.
EXAMPLES = settings(max_examples=40, deadline=None)


@EXAMPLES
@given(body=text2video_requests())
def test_every_valid_request_is_accepted(
    kling_mock_server: KlingTarget, body: dict[str, object]
) -> None:
    with kling_mock_server.fresh() as mock:
        created = kling_mock_server.client(mock).create_task("text2video", body)
        assert created["task_status"] == "submitted"
        assert len(mock.tasks()) == 1  # this example's task only


@EXAMPLES
@given(broken=invalid_text2video_requests())
def test_every_broken_request_is_refused_naming_the_field(
    kling_mock_server: KlingTarget, broken: InvalidRequest
) -> None:
    with kling_mock_server.fresh() as mock:
        client = kling_mock_server.client(mock)
    try:
        client.create_task("text2video", broken.body)
    except InvalidRequestError as error:
        assert broken.field.split(".")[0].split("[")[0] in error.message
    else:
        raise AssertionError(f"the mock accepted {broken.body!r}")
