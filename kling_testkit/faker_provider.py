"""A Faker provider of realistic Kling prompts, ids and request bodies, valid per the contract.

Limits, enums and ranges are read from the OpenAPI document through :mod:`kling_testkit.spec`;
which camera types need a config is asked of :func:`~kling_testkit.spec.check_request`. Output is
reproducible for a seeded Faker (``Faker.seed_instance``)::

    fake = Faker()
    fake.add_provider(KlingProvider)
    fake.seed_instance(7)
    fake.video_prompt()
"""

from __future__ import annotations

import math
import string
from functools import cache
from typing import Any

from faker.providers import BaseProvider

from kling_testkit.spec import ContractViolation, check_request, families, field, schema
from kling_testkit.spec.document import resolve

__all__ = ["KlingProvider"]

T2V = "text2video"

_SUBJECTS = (
    "A red fox",
    "An elderly fisherman",
    "A young dancer in a yellow dress",
    "A vintage red convertible",
    "A curious orange cat",
    "A pair of hikers with bright backpacks",
    "A lone rider on a grey horse",
    "A delivery cyclist in a red jacket",
    "A golden retriever puppy",
    "A lone astronaut",
    "A street musician with a violin",
    "A flock of white cranes",
)
_ACTIONS = (
    "moves slowly through",
    "wanders through",
    "races across",
    "pauses in the middle of",
    "makes its way across",
    "turns around in",
    "appears out of",
)
_SETTINGS = (
    "fresh snow at dawn",
    "a misty pine forest",
    "a neon-lit city street after rain",
    "a quiet harbor at sunset",
    "a field of tall sunflowers",
    "an empty desert highway",
    "a crowded night market",
    "a sandy beach at low tide",
    "the ruins of an old stone castle",
    "a rooftop garden above the city",
)
_LIGHTS = (
    "soft golden light",
    "cool blue moonlight",
    "harsh midday sun",
    "warm lantern glow",
    "diffuse overcast light",
    "flickering neon reflections",
    "backlit by the setting sun",
)
_CAMERAS = (
    "slow dolly-in",
    "smooth tracking shot",
    "handheld close-up",
    "sweeping aerial shot",
    "static wide shot",
    "low-angle pan",
    "gentle crane up",
)
_MOODS = ("calm", "dreamy", "tense", "joyful", "melancholic", "epic", "nostalgic", "playful")
_STYLES = (
    "A photorealistic photo of",
    "A watercolor painting of",
    "A 35mm film still of",
    "Cinematic concept art of",
    "A studio portrait of",
    "An isometric 3D render of",
    "A charcoal sketch of",
)
_DETAILS = ("highly detailed", "shallow depth of field", "rich colors", "sharp focus", "soft grain")
_FLAWS = (
    "blurry",
    "low resolution",
    "watermark",
    "text overlay",
    "distorted hands",
    "extra limbs",
    "overexposed",
    "jpeg artifacts",
    "flickering",
    "deformed faces",
    "oversaturated colors",
)


def _limit(name: str) -> int:
    """The ``maxLength`` of a text-to-video request field."""
    limit: int = field(families()[T2V].request_schema, name)["maxLength"]
    return limit


@cache
def _camera_types() -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Camera types valid without a config, and those that need one (asked of the rules)."""
    types: list[str] = resolve(schema("CameraControl")["properties"]["type"])["enum"]
    free = []
    for kind in types:
        try:
            check_request(T2V, {"prompt": "p", "camera_control": {"type": kind}})
            free.append(kind)
        except ContractViolation:
            pass
    return tuple(free), tuple(t for t in types if t not in free)


class KlingProvider(BaseProvider):
    """Faker provider: ``video_prompt``, ``image_prompt``, ``negative_prompt``,
    ``external_task_id``, ``camera_control`` and ``text2video_request``."""

    def _coin(self) -> bool:
        return bool(self.random_int(0, 1))

    def video_prompt(self) -> str:
        """Return a video prompt: subject, action, setting, light, camera move and mood."""
        text = (
            f"{self.random_element(_SUBJECTS)} {self.random_element(_ACTIONS)} "
            f"{self.random_element(_SETTINGS)}, {self.random_element(_LIGHTS)}, "
            f"{self.random_element(_CAMERAS)}, {self.random_element(_MOODS)} mood"
        )
        return text[: _limit("prompt")]

    def image_prompt(self) -> str:
        """Return an image prompt: style, subject, setting, light and a detail cue."""
        subject = self.random_element(_SUBJECTS)
        text = (
            f"{self.random_element(_STYLES)} {subject[0].lower()}{subject[1:]} in "
            f"{self.random_element(_SETTINGS)}, {self.random_element(_LIGHTS)}, "
            f"{self.random_element(_DETAILS)}"
        )
        return text[: _limit("prompt")]

    def negative_prompt(self) -> str:
        """Return a negative prompt: two to five distinct flaws to avoid, comma separated."""
        flaws = self.random_sample(_FLAWS, length=self.random_int(2, 5))
        return ", ".join(flaws)[: _limit("negative_prompt")]

    def external_task_id(self) -> str:
        """Return an ``external_task_id`` like ``order-482139070115-kqzdwa``.

        Drawn from the generator's seeded random stream only, so ``seed_instance(n)`` repeats
        the sequence; 10^12 x 26^6 values make a repeat within a run vanishingly rare (use
        ``fake.unique.external_task_id()`` for a guarantee).
        """
        candidate = self.bothify("order-############-??????", letters=string.ascii_lowercase)
        return candidate[: _limit("external_task_id")]

    def camera_control(self) -> dict[str, Any]:
        """Return a valid ``camera_control``: a type needing a config gets exactly one moving
        axis (a non-zero whole number within the axis range); other types come without one."""
        free, configured = _camera_types()
        if free and (not configured or self._coin()):
            return {"type": self.random_element(free)}
        axes = schema("CameraConfig")["properties"]
        axis = self.random_element(sorted(axes))
        node = resolve(axes[axis])
        low, high = math.ceil(node["minimum"]), math.floor(node["maximum"])
        amount = self.random_element([v for v in range(low, high + 1) if v != 0])
        return {"type": self.random_element(configured), "config": {axis: amount}}

    def text2video_request(self) -> dict[str, Any]:
        """Return a valid text-to-video body: a prompt and a random set of optional fields."""
        request = families()[T2V].request_schema
        body: dict[str, Any] = {"prompt": self.video_prompt()}
        for name in ("model_name", "mode", "duration", "aspect_ratio"):
            if self._coin():
                body[name] = self.random_element(field(request, name)["enum"])
        if self._coin():
            body["negative_prompt"] = self.negative_prompt()
        if self._coin():
            cfg = field(request, "cfg_scale")
            low, high = cfg["minimum"], cfg["maximum"]
            body["cfg_scale"] = min(
                max(round(self.generator.random.uniform(low, high), 2), low), high
            )
        if self._coin():
            body["camera_control"] = self.camera_control()
        if self._coin():
            body["external_task_id"] = self.external_task_id()
        return body
