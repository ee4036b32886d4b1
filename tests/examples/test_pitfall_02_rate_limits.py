"""Pitfall 2: ignoring 429s. Past the concurrency limit the mock says how long to wait."""

from __future__ import annotations

import pytest

from kling_testkit.client import KlingClient
from kling_testkit.control import MockControl
from kling_testkit.errors import RateLimitError
from kling_testkit.retry import NO_RETRIES


def submit_all(client: KlingClient, prompts: list[str]) -> list[str]:
    """App code under test: submits a batch in a loop."""
    return [client.text2video(p)["task_id"] for p in prompts]


@pytest.mark.kling_config(concurrency={"video": 2})
def test_a_batch_that_ignores_429_loses_tasks(kling_mock: MockControl, kling_base_url: str) -> None:
    from kling_testkit.credentials import Credentials

    impatient = KlingClient(kling_base_url, Credentials.mock_default(), retry=NO_RETRIES)
    with pytest.raises(RateLimitError) as caught:
        submit_all(impatient, ["one", "two", "three"])
    assert caught.value.code == 1303 and caught.value.retry_after
    assert len(kling_mock.tasks()) == 2


@pytest.mark.kling_config(concurrency={"video": 2})
def test_honouring_retry_after_gets_every_task_through(
    kling_mock: MockControl, kling_client: KlingClient
) -> None:
    """kling_client sleeps on the mock's clock, so waiting out Retry-After takes no time."""
    ids = submit_all(kling_client, ["one", "two", "three"])
    assert len(set(ids)) == 3
    first_end = min(t["timeline"]["ends_at"] for t in kling_mock.tasks())
    third = next(t for t in kling_mock.tasks() if t["task"]["task_id"] == ids[2])
    assert third["timeline"]["submitted_at"] >= first_end  # it waited for a free slot
