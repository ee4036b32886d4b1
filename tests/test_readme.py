"""The README stays true: its commands, fixtures, examples and scenarios exist."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from kling_testkit import pytest_plugin
from mock_server.scenarios import SCENARIOS

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_first_screen_gives_the_two_commands() -> None:
    first = "\n".join(README.splitlines()[:10])
    assert "make demo" in first and "make test" in first


def test_every_pitfall_example_is_listed_and_exists() -> None:
    files = sorted(p.name for p in (ROOT / "tests" / "examples").glob("test_pitfall_*.py"))
    assert len(files) == 10
    assert files == sorted(set(re.findall(r"`(test_pitfall_\d\d_\w+\.py)`", README)))


def test_first_example_is_taken_from_its_test_file() -> None:
    block = re.search(r"```python\n(.*?)```", README, re.S)
    assert block is not None
    source = (ROOT / "tests" / "examples" / "test_pitfall_01_async_jobs.py").read_text()
    for name in re.findall(r"^def (\w+)", block.group(1), re.M):
        assert f"def {name}(" in source


def test_every_fixture_is_in_the_table() -> None:
    fixtures = {n for n in dir(pytest_plugin) if n.startswith("kling_")}
    assert fixtures == {
        "kling_mock_config",
        "kling_mock_server",
        "kling_mock",
        "kling_base_url",
        "kling_credentials",
        "kling_client",
    }
    for name in fixtures:
        assert f"| `{name}` |" in README


def test_every_scenario_is_documented() -> None:
    for name in SCENARIOS:
        assert f"| `{name}` |" in README


def test_every_load_scenario_shape_and_runner_flag_is_documented() -> None:
    from kling_testkit.cli import _parser
    from kling_testkit.load.options import SCENARIOS, SHAPES

    section = README[README.index("## Load testing") : README.index("## Development")]
    for name in SCENARIOS:
        assert f"| `{name}` |" in section, name
        assert (ROOT / "load_tests" / f"{name}.py").is_file()
    for name in SHAPES:
        assert f"`--shape {name}`" in section, name
        assert (ROOT / "load_tests" / "shapes" / f"{name}.py").is_file()
    load = next(
        action.choices["load"]
        for action in _parser()._actions
        if isinstance(action, argparse._SubParsersAction)
    )
    for action in load._actions:
        for flag in action.option_strings:
            assert flag in ("-h", "--help") or f"`{flag}" in section, flag


def test_the_audit_sample_is_the_naive_clients_run(pytester: pytest.Pytester) -> None:
    source = (ROOT / "tests" / "naive_client.py").read_text(encoding="utf-8")
    assert source[source.index("import time") :] in README  # the code shown is the code run
    pytester.makepyfile(test_naive=source)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    sample = README[README.index("the client broke rules the mock checks:") :]
    sample = sample[: sample.index("```")]
    shown = [line for line in sample.splitlines() if re.match(r"  \w+: ", line)]
    assert [line.split(":")[0] for line in shown] == [
        "  retry_after_ignored",
        "  poll_storm",
        "  token_misuse",
        "  result_url_never_fetched",
    ]
    for line in shown:  # each finding and its count (tokens depend on the wall clock's seconds)
        expected = line if "token_misuse" not in line else "  token_misuse: "
        assert any(out.startswith(expected) for out in result.outlines), line
    for line in sample.splitlines():
        if line.strip().startswith("fix: "):
            result.stdout.fnmatch_lines([f"*{line.strip()}"])
