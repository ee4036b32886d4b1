"""Pitfall 1: reading a result that is not ready. A create answers with a task, not a video."""

from __future__ import annotations

import pytest
import requests

from kling_testkit.auth import bearer, sign_token
from kling_testkit.client import KlingClient
from kling_testkit.credentials import Credentials


def naive_generate(base_url: str, credentials: Credentials, prompt: str) -> str:
    """The app code under test: expects the video in the create answer."""
    answer = requests.post(
        f"{base_url}/v1/videos/text2video",
        json={"prompt": prompt},
        headers=bearer(sign_token(credentials)),
        timeout=10,
    ).json()
    return str(answer["data"]["task_result"]["videos"][0]["url"])


def patient_generate(client: KlingClient, prompt: str) -> str:
    """The right way: submit, then wait for the task to succeed."""
    task = client.text2video(prompt)
    return str(client.wait("text2video", task)["task_result"]["videos"][0]["url"])


def test_reading_the_result_at_once_fails(
    kling_base_url: str, kling_credentials: Credentials
) -> None:
    with pytest.raises(KeyError, match="task_result"):
        naive_generate(kling_base_url, kling_credentials, "a paper boat on a river")


def test_waiting_for_the_task_gets_the_video(kling_client: KlingClient) -> None:
    url = patient_generate(kling_client, "a paper boat on a river")
    assert url.startswith("http://127.0.0.1:")
