"""Pitfall 5: unvalidated prompts. Validate before sending; the mock enforces limits and policy."""

from __future__ import annotations

import pytest

from kling_testkit.client import KlingClient
from kling_testkit.control import MockControl
from kling_testkit.errors import InvalidRequestError, PolicyError
from kling_testkit.prompts import PromptError, validate_prompt

BLOCKED = ["gore"]


def generate(client: KlingClient, user_text: str) -> str:
    """App code under test: validates, then submits the cleaned prompt."""
    prompt = validate_prompt(user_text, min_length=10, blocked_terms=BLOCKED)
    return str(client.text2video(prompt)["task_id"])


def test_an_unvalidated_over_long_prompt_is_refused_by_the_api(kling_client: KlingClient) -> None:
    with pytest.raises(InvalidRequestError, match="prompt must be at most 2500"):
        kling_client.text2video("a" * 3000)


@pytest.mark.kling_config(blocked_terms=BLOCKED)
def test_the_api_refuses_blocked_terms_in_any_form(kling_client: KlingClient) -> None:
    with pytest.raises(PolicyError) as caught:
        kling_client.text2video("a \uff27\uff2f\uff32\uff25 scene")  # fullwidth letters
    assert caught.value.code == 1301


@pytest.mark.kling_config(blocked_terms=BLOCKED)
def test_validation_catches_them_before_any_request(
    kling_mock: MockControl, kling_client: KlingClient
) -> None:
    for text in ["short", "a GORE scene at night", "x" * 3000]:
        with pytest.raises(PromptError):
            generate(kling_client, text)
    assert kling_mock.requests() == []
    assert generate(kling_client, "  a calm   lake at dawn  ")
    assert kling_mock.tasks()[0]["params"]["prompt"] == "a calm lake at dawn"
