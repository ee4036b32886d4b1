"""kling_testkit.schemathesis_support teaches Schemathesis the contract's inline-image format.

Each test runs in a subprocess: importing Schemathesis patches Hypothesis process-wide.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("schemathesis") is None,
    reason="Schemathesis (a dev dependency) needs Python 3.11 or later",
)

GENERATE = """
import sys

from kling_testkit import schemathesis_support
from kling_testkit.spec import check_request, schema

assert "schemathesis" not in sys.modules, "imported before register()"
{register}
import schemathesis
from hypothesis import HealthCheck, given, settings

document = {{
    "openapi": "3.1.0",
    "info": {{"title": "t", "version": "1"}},
    "paths": {{"/images": {{"post": {{
        "requestBody": {{"required": True, "content": {{"application/json": {{
            "schema": {{"type": "object", "required": ["image"], "properties": {{
                "image": {{"$ref": "#/components/schemas/ImageBase64"}}}}}}}}}}}},
        "responses": {{"200": {{"description": "ok"}}}}}}}}}},
    "components": {{"schemas": {{"ImageBase64": {{**schema("ImageBase64"), "type": "string"}}}}}},
}}
operation = schemathesis.openapi.from_dict(document)["/images"]["POST"]
refused = []

@settings(max_examples=25, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(case=operation.as_strategy())
def draw(case):
    try:
        check_request("image2video", {{"image": case.body["image"]}})
    except Exception as exc:
        refused.append(str(exc))

draw()
print("refused", len(refused), refused[:1])
"""


def run(register: str) -> str:
    code = textwrap.dedent(GENERATE.format(register=register))
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_registered_format_generates_only_images_the_mock_accepts() -> None:
    assert run("schemathesis_support.register()").startswith("refused 0 ")


def test_without_registration_schemathesis_draws_strings_the_mock_refuses() -> None:
    out = run("")
    assert out.startswith("refused ") and not out.startswith("refused 0 "), out


def test_the_cli_hooks_module_registers_on_import() -> None:
    code = (
        "import kling_testkit.schemathesis_hooks\n"
        "from schemathesis.specs.openapi.formats import STRING_FORMATS\n"
        "from kling_testkit.schemathesis_support import FORMATS\n"
        "assert set(FORMATS) <= set(STRING_FORMATS), sorted(STRING_FORMATS)\n"
        "print('registered', *FORMATS)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "registered kling-image-base64", result.stderr[-2000:]
