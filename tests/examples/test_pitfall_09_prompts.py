"""Pitfall 9: vague prompts. Feed the app realistic, structured prompts from the Faker provider."""

from __future__ import annotations

import pytest
from faker import Faker

from kling_testkit.client import KlingClient
from kling_testkit.faker_provider import KlingProvider
from kling_testkit.prompts import PromptError, validate_prompt


def house_style(prompt: str) -> str:
    """App code under test: wants a subject and at least three descriptive clauses."""
    prompt = validate_prompt(prompt, min_length=20)
    if prompt.count(",") < 2:
        raise PromptError("vague", "describe subject, setting, light and camera")
    return prompt


@pytest.fixture
def fake() -> Faker:
    faker = Faker()
    faker.add_provider(KlingProvider)
    faker.seed_instance(9)
    return faker


def test_vague_prompts_are_turned_back() -> None:
    for vague in ["a video", "cool dragon fight, explosions"]:
        with pytest.raises(PromptError):
            house_style(vague)


def test_realistic_prompts_pass_the_house_style_and_the_api(
    fake: Faker, kling_client: KlingClient
) -> None:
    for _ in range(20):
        prompt = house_style(fake.video_prompt())
        assert kling_client.text2video(prompt)["task_status"] == "submitted"
