"""Each piece of the API contract is written once, in the OpenAPI document, and read from there.

These tests change a copy of the document (the ``change_contract`` fixture) and show that the
code follows, or scan the code for a second spelling of what the document says.
"""

from __future__ import annotations

import ast
import random
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from kling_testkit import client, stateful
from kling_testkit.spec import FAILED, PROCESSING, SUBMITTED, SUCCEED, TERMINAL, schema
from kling_testkit.spec.statuses import RANK, RANK_2026, TERMINAL_2026
from mock_server import render, tasks
from mock_server.config import MockConfig, default_durations, default_multipliers
from mock_server.errors import ConfigError
from tests.conftest import ChangeContract

ROOT = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------ families


def add_family(doc: dict[str, Any]) -> None:
    """One more family, made of text-to-video's request and description under a new name."""
    create = dict(doc["paths"]["/v1/videos/text2video"]["post"])
    create["operationId"] = "create_text2audio"
    create["x-kling-family"] = {
        **create["x-kling-family"],
        "name": "text2audio",
    }
    doc["paths"]["/v1/audio/text2audio"] = {"post": create}


def test_config_takes_its_families_from_the_contract(change_contract: ChangeContract) -> None:
    with pytest.raises(ConfigError, match="unknown family 'text2audio'"):
        MockConfig.from_dict({"failure_rate": {"text2audio": 0.5}})
    change_contract(add_family)
    config = MockConfig.from_dict({"failure_rate": {"text2audio": 0.5}})
    assert config.failure_rate == {"text2audio": 0.5}


# ------------------------------------------------------------------ timing multipliers


def timings(params: dict[str, Any], multipliers: dict[str, float]) -> float:
    _, run_s = tasks.draw_timings(
        random.Random(0), "text2video", params, default_durations(), multipliers, 0
    )
    return run_s


def test_default_multipliers_name_options_of_the_contract() -> None:
    base = default_durations()["text2video"]["run_s"]
    multipliers = default_multipliers()
    assert timings({"mode": "std", "duration": "5"}, multipliers) == base
    assert timings({"mode": "pro", "duration": "5"}, multipliers) == base * 1.5
    assert timings({"mode": "pro", "duration": "10"}, multipliers) == pytest.approx(base * 2.7)


def test_a_multiplier_may_name_any_option_the_contract_adds(
    change_contract: ChangeContract,
) -> None:
    with pytest.raises(ConfigError, match="mode_ultra"):
        MockConfig.from_dict({"duration_multipliers": {"mode_ultra": 3.0}})
    change_contract(lambda doc: doc["components"]["schemas"]["Mode"]["enum"].append("ultra"))
    config = MockConfig.from_dict({"duration_multipliers": {"mode_ultra": 3.0}})
    base = default_durations()["text2video"]["run_s"]
    assert timings({"mode": "ultra"}, config.duration_multipliers) == base * 3.0
    assert timings({"mode": "pro"}, config.duration_multipliers) == base * 1.5


def test_a_multiplier_naming_no_option_is_refused() -> None:
    with pytest.raises(ConfigError, match="mode_turbo"):
        MockConfig.from_dict({"duration_multipliers": {"mode_turbo": 2.0}})


# ------------------------------------------------------------------ statuses


def test_status_constants_are_the_documents_enum_in_lifecycle_order() -> None:
    assert schema("TaskStatus")["enum"] == [SUBMITTED, PROCESSING, SUCCEED, FAILED]
    spelled = ("submitted", "processing", "succeed", "failed")
    assert spelled == (SUBMITTED, PROCESSING, SUCCEED, FAILED)
    assert {SUCCEED, FAILED} == TERMINAL
    assert RANK[SUBMITTED] < RANK[PROCESSING] < RANK[SUCCEED] == RANK[FAILED]


def test_every_user_of_a_status_takes_the_contracts_constants() -> None:
    assert client.TERMINAL_STATUSES is TERMINAL
    assert client.TERMINAL_STATUSES_2026 is TERMINAL_2026
    assert stateful.ORDER == {**RANK, **RANK_2026}  # both designs' spellings, read off the contract
    assert (tasks.SUBMITTED, tasks.SUCCEED, tasks.FAILED, tasks.TERMINAL) == (
        SUBMITTED,
        SUCCEED,
        FAILED,
        TERMINAL,
    )
    assert render.SUBMITTED is SUBMITTED
    created = schema("TaskCreated")["properties"]["task_status"]
    assert created == {"const": SUBMITTED}


# Their "failed" is something else: a callback delivery state, a pytest outcome.
_NOT_SCANNED = {
    "kling_testkit/spec/statuses.py",
    "mock_server/callbacks.py",
    "kling_testkit/cli.py",
}


def test_no_module_spells_a_task_status_of_its_own() -> None:
    statuses = set(schema("TaskStatus")["enum"])
    found = []
    for package in ("mock_server", "kling_testkit", "contract_tests", "load_tests"):
        for path in sorted((ROOT / package).rglob("*.py")):
            name = path.relative_to(ROOT).as_posix()
            if name in _NOT_SCANNED:
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.Constant) and node.value in statuses:
                    found.append(f"{name}:{node.lineno}: {node.value!r}")
    assert not found, "status spelled outside the contract:\n" + "\n".join(found)


def test_the_mock_stands_on_the_contract_alone() -> None:
    code = (
        "import sys\n"
        "from mock_server import create_app\n"
        "client = create_app({'clock': 'manual'}).test_client()\n"
        "assert client.get('/openapi.json').status_code == 200\n"
        "heavy = ('pytest', 'hypothesis', 'faker', 'schemathesis', 'locust')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.stdout.strip() == "[]", result.stderr[-2000:]
