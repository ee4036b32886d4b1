"""The Faker provider: realistic output that the contract accepts, reproducible with a seed."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from faker import Faker

from kling_testkit.faker_provider import KlingProvider
from kling_testkit.spec import check_request, families, field

T2V = families()["text2video"].request_schema
IMAGE = families()["image_generation"].request_schema
DRAWS = 200


def make_faker(seed: int) -> Any:
    fake = Faker()
    fake.add_provider(KlingProvider)
    fake.seed_instance(seed)
    return fake


@pytest.fixture
def fake() -> Any:
    return make_faker(2024)


def draws(method: Callable[[], Any], n: int = DRAWS) -> list[Any]:
    return [method() for _ in range(n)]


def test_text2video_requests_pass_the_contract(fake: Any) -> None:
    for body in draws(fake.text2video_request):
        check_request("text2video", body)
        assert body["prompt"].strip()


def test_prompts_are_within_the_documented_limits(fake: Any) -> None:
    prompt = field(T2V, "prompt")
    for text in draws(fake.video_prompt) + draws(fake.image_prompt):
        assert 0 < len(text) <= prompt["maxLength"]
        assert re.search(prompt["pattern"], text)
        assert text.strip() == text
    for text in draws(fake.image_prompt, 50):
        check_request("image_generation", {"prompt": text})
    negative = field(T2V, "negative_prompt")
    for text in draws(fake.negative_prompt):
        assert len(text) <= negative["maxLength"]
        check_request("text2video", {"prompt": "p", "negative_prompt": text})


def test_video_prompt_reads_like_a_shot(fake: Any) -> None:
    text = fake.video_prompt()
    assert text[0].isupper()
    assert text.endswith(" mood")
    assert text.count(", ") >= 3


def test_camera_controls_are_valid(fake: Any) -> None:
    kinds = set()
    for control in draws(fake.camera_control):
        check_request("text2video", {"prompt": "p", "camera_control": control})
        kinds.add("config" in control)
    assert kinds == {True, False}


def test_external_task_ids_are_unique_and_valid(fake: Any) -> None:
    ids = draws(fake.external_task_id)
    assert len(set(ids)) == DRAWS
    limit = field(T2V, "external_task_id")["maxLength"]
    for value in ids:
        assert value.startswith("order-") and len(value) <= limit
        check_request("text2video", {"prompt": "p", "external_task_id": value})


@pytest.mark.parametrize(
    "method",
    [
        "video_prompt",
        "image_prompt",
        "negative_prompt",
        "external_task_id",
        "camera_control",
        "text2video_request",
    ],
)
def test_a_seed_reproduces_the_output(method: str) -> None:
    first, second, other = make_faker(7), make_faker(7), make_faker(8)
    runs = [draws(getattr(f, method), 20) for f in (first, second, other)]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


@pytest.mark.parametrize("method", ["external_task_id", "text2video_request"])
def test_seed_instance_on_the_same_faker_repeats_the_output(method: str) -> None:
    fake = make_faker(11)
    first = draws(getattr(fake, method), 20)
    fake.seed_instance(11)
    assert draws(getattr(fake, method), 20) == first
