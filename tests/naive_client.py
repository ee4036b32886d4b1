"""A client that breaks the rules the audit checks (the README's sample report is its run)."""

import time

import jwt
import pytest
import requests

from kling_testkit.control import MockControl
from kling_testkit.credentials import Credentials

T2V = "/v1/videos/text2video"


def headers() -> dict[str, str]:  # a new day-long token for every request
    creds = Credentials.mock_default()
    now = int(time.time())
    claims = {"iss": creds.access_key, "iat": now, "exp": now + 86400, "nbf": now - 5}
    return {"Authorization": f"Bearer {jwt.encode(claims, creds.secret_key)}"}


@pytest.mark.kling_audit
@pytest.mark.kling_config(concurrency={"video": 1})
def test_naive_client(kling_mock: MockControl, kling_base_url: str) -> None:
    first = requests.post(kling_base_url + T2V, json={"prompt": "a cat"}, headers=headers())
    task_id = first.json()["data"]["task_id"]
    for _ in range(2):  # a second video at once, and again at once after the 429
        requests.post(kling_base_url + T2V, json={"prompt": "a dog"}, headers=headers())
        time.sleep(0.1)
    for _ in range(5):  # a poll loop that waits on the wall clock, not the task's
        requests.get(f"{kling_base_url}{T2V}/{task_id}", headers=headers())
        time.sleep(1)
    kling_mock.clock.advance(31 * 86400)  # the app comes back for the video a month later
