"""The pytest plugin, as a downstream project meets it: pytest run on generated test files."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

from kling_testkit.server import InProcessMock

pytest_plugins = ["pytester"]

EVERY_FIXTURE = """
def test_every_fixture(kling_mock_server, kling_mock, kling_base_url, kling_credentials,
                       kling_client):
    assert kling_base_url.startswith("http://127.0.0.1:")
    assert kling_credentials.access_key == "kling-mock-access-key"
    task = kling_client.text2video("a red fox in snow")
    done = kling_client.wait("text2video", task)  # moves the mock's clock, no sleeping
    assert done["task_status"] == "succeed"
    assert [t["task"]["task_id"] for t in kling_mock.tasks()] == [task["task_id"]]
    assert kling_mock.clock.info()["mode"] == "manual"
"""


def run(pytester: pytest.Pytester, source: str, *args: str) -> pytest.RunResult:
    """Run pytest in a fresh process on one generated file, with no conftest of its own."""
    pytester.makepyfile(test_downstream=source)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


def test_every_fixture_works_without_a_conftest(pytester: pytest.Pytester) -> None:
    run(pytester, EVERY_FIXTURE).assert_outcomes(passed=1)


def test_each_test_gets_fresh_state(pytester: pytest.Pytester) -> None:
    source = """
    import pytest

    @pytest.mark.parametrize("n", range(3))
    def test_one_task_each(kling_mock, kling_client, n):
        kling_client.text2video(f"shot {n}")
        kling_mock.add_fault(action={"type": "error", "code": 5000}, match={"path": "/nowhere"})
        kling_mock.clock.advance(10)
        assert len(kling_mock.tasks()) == 1
        assert len(kling_mock.faults()) == 1
        assert kling_mock.clock.now() - kling_mock.tasks()[0]["timeline"]["submitted_at"] == 10
    """
    run(pytester, source).assert_outcomes(passed=3)


def test_marker_sets_mock_config_for_one_test(pytester: pytest.Pytester) -> None:
    source = """
    import pytest
    from kling_testkit.errors import TaskFailed

    @pytest.mark.kling_config(failure_rate={"text2video": 1.0})
    def test_configured(kling_client):
        task = kling_client.text2video("a kite")
        with pytest.raises(TaskFailed):
            kling_client.wait("text2video", task)

    def test_back_to_defaults(kling_mock, kling_client):
        assert kling_mock.config()["failure_rate"] == {}
        task = kling_client.text2video("a kite")
        assert kling_client.wait("text2video", task)["task_status"] == "succeed"
    """
    run(pytester, source).assert_outcomes(passed=2)


def test_marker_with_a_bad_setting_fails_clearly(pytester: pytest.Pytester) -> None:
    source = """
    import pytest

    @pytest.mark.kling_config(failure_rate={"nonsense": 1.0})
    def test_bad(kling_mock):
        pass
    """
    result = run(pytester, source)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*unknown family 'nonsense'*"])


def test_server_side_errors_surface_in_the_test(pytester: pytest.Pytester) -> None:
    source = """
    def test_breaks_the_mock(kling_mock_server, kling_mock, kling_client, monkeypatch):
        def explode(*args, **kwargs):
            raise RuntimeError("boom inside the mock")
        monkeypatch.setattr(kling_mock_server.local.backend, "render", explode)
        task = kling_client.text2video("x")
        try:
            kling_client.get_task("text2video", task["task_id"])
        except Exception:
            pass
    """
    result = run(pytester, source)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*RuntimeError: boom inside the mock*"])


def test_works_under_xdist_with_a_mock_per_worker(pytester: pytest.Pytester) -> None:
    source = """
    import os
    import pytest

    @pytest.mark.parametrize("n", range(6))
    def test_isolated(kling_mock, kling_client, n):
        kling_client.text2video(f"shot {n}")
        assert len(kling_mock.tasks()) == 1
        assert os.environ["PYTEST_XDIST_WORKER"].startswith("gw")
    """
    run(pytester, source, "-n", "2").assert_outcomes(passed=6)


@pytest.fixture
def served_mock() -> Iterator[str]:
    with InProcessMock() as mock:
        yield mock.base_url


def test_base_url_option_points_the_fixtures_elsewhere(
    pytester: pytest.Pytester, served_mock: str
) -> None:
    source = f"""
    def test_remote(kling_mock, kling_base_url, kling_client):
        assert kling_base_url.startswith("{served_mock}/ns/pytest-")  # a namespace of its own
        assert kling_mock.base_url == kling_base_url
        kling_client.text2video("a lighthouse")
        assert len(kling_mock.tasks()) == 1
    """
    run(pytester, source, f"--kling-base-url={served_mock}").assert_outcomes(passed=1)


def test_kling_mock_skips_when_the_target_is_not_a_mock(pytester: pytest.Pytester) -> None:
    source = """
    def test_needs_mock(kling_mock):
        pass
    """
    result = run(pytester, source, "--kling-base-url=http://127.0.0.1:9", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*needs a mock target*"])


def test_loading_the_plugin_imports_nothing_heavy() -> None:
    probe = (
        "import sys, kling_testkit.pytest_plugin\n"
        "heavy = ['flask', 'werkzeug', 'requests', 'jwt', 'jsonschema', 'hypothesis', 'faker',"
        " 'locust', 'gevent', 'mock_server']\n"
        "print(sorted(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
