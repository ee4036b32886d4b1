"""Mixed: a realistic mix of families, models and modes, with Faker prompts.

Most traffic is text to video in standard mode, some in professional mode and 10 s, some image
to video (a real PNG, Base64), and image generation of one to four images. Models are drawn from
the contract's enums and every body is checked against the contract before it is sent (a draw the
contract refuses, such as ``21:9`` on ``kling-v1``, is drawn again), so the mix never sends an
invalid request.

Measures: job completion and polls per job per family and mode (``text2video pro job`` ...),
which shows how the mock's durations (pro x1.5, 10 s x1.8, more images +25% each) reach users.

    kling-testkit load --scenario mixed --users 30 --spawn-rate 5 --duration 2m
"""

from __future__ import annotations

import base64
import random
from functools import cache
from typing import Any

from faker import Faker
from locust import run_single_user, task

from kling_testkit.faker_provider import KlingProvider
from kling_testkit.image_bytes import png_bytes
from kling_testkit.spec import ContractViolation, check_request, families, field
from load_tests.base import KlingUser
from load_tests.counters import report_mock_counters
from load_tests.target import debug_host

report_mock_counters()

DRAWS = 20  # attempts at a body the contract accepts


@cache
def choices(family: str, name: str) -> tuple[Any, ...]:
    """The values the contract allows for a field of a family's create body."""
    return tuple(field(families()[family].request_schema, name)["enum"])


@cache
def still() -> str:
    """A 1280x720 PNG, Base64: the input of image to video."""
    return base64.b64encode(png_bytes(1280, 720)).decode("ascii")


def valid(family: str, draw: Any) -> dict[str, Any]:
    """A body from ``draw()`` that the contract accepts."""
    for _ in range(DRAWS):
        body: dict[str, Any] = draw()
        try:
            check_request(family, dict(body))
        except ContractViolation:
            continue
        return body
    raise RuntimeError(f"no valid {family} body in {DRAWS} draws")


class MixedUser(KlingUser):
    """An app's traffic: mostly short videos, some long or pro ones, some images."""

    def on_start(self) -> None:
        super().on_start()
        self.fake = Faker()
        self.fake.add_provider(KlingProvider)

    def video(self, family: str, mode: str, duration: str) -> dict[str, Any]:
        body = {
            "prompt": self.fake.video_prompt(),
            "model_name": random.choice(choices(family, "model_name")),
            "mode": mode,
            "duration": duration,
            "aspect_ratio": random.choice(choices(family, "aspect_ratio")),
        }
        if random.random() < 0.3:
            body["negative_prompt"] = self.fake.negative_prompt()
        if family == "image2video":
            body["image"] = still()
        return body

    @task(6)
    def short_video(self) -> None:
        body = valid("text2video", lambda: self.video("text2video", "std", "5"))
        self.run_job("text2video", body, "text2video std")

    @task(2)
    def long_pro_video(self) -> None:
        body = valid("text2video", lambda: self.video("text2video", "pro", "10"))
        self.run_job("text2video", body, "text2video pro")

    @task(2)
    def image_to_video(self) -> None:
        body = valid("image2video", lambda: self.video("image2video", "std", "5"))
        self.run_job("image2video", body, "image2video std")

    @task(3)
    def images(self) -> None:
        def draw() -> dict[str, Any]:
            return {
                "prompt": self.fake.image_prompt(),
                "model_name": random.choice(choices("image_generation", "model_name")),
                "aspect_ratio": random.choice(choices("image_generation", "aspect_ratio")),
                "n": random.randint(1, 4),
            }

        self.run_job("image_generation", valid("image_generation", draw), "images")


if __name__ == "__main__":
    MixedUser.host = debug_host()
    run_single_user(MixedUser)
