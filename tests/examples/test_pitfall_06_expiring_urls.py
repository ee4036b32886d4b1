"""Pitfall 6: keeping result URLs. They expire; copy the file as soon as the task succeeds."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from kling_testkit.client import KlingClient
from kling_testkit.control import MockControl
from kling_testkit.errors import ResultExpired

DAY = 86400


@pytest.mark.kling_audit(allow=["result_url_expired", "result_url_never_fetched"])  # on purpose
def test_a_stored_url_is_dead_after_the_retention(
    kling_mock: MockControl, kling_client: KlingClient
) -> None:
    task = kling_client.wait("text2video", kling_client.text2video("a quiet harbour"))
    stored_url = task["task_result"]["videos"][0]["url"]  # what the app put in its database
    kling_mock.clock.advance(30 * DAY + 1)
    assert requests.get(stored_url, timeout=10).status_code == 403
    with pytest.raises(ResultExpired):
        kling_client.download(stored_url, "never-written.mp4")
    assert kling_mock.audit()["totals"] == {  # and the mock says so
        "result_url_expired": 2,  # the two tries with the stored URL
        "result_url_never_fetched": 1,  # the video itself, lost
    }


@pytest.mark.kling_config(result_ttl_s=60)
def test_copying_at_once_keeps_the_video(
    kling_mock: MockControl, kling_client: KlingClient, tmp_path: Path
) -> None:
    task = kling_client.wait("text2video", kling_client.text2video("a quiet harbour"))
    size = kling_client.download(task["task_result"]["videos"][0], tmp_path / "harbour.mp4")
    kling_mock.clock.advance(61)
    assert (tmp_path / "harbour.mp4").stat().st_size == size > 0
