"""The pytest plugin, as a downstream project meets it: pytest run on generated test files."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import requests

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
    # The in-process mock's clock is read and moved in this process, without HTTP.
    in_process = kling_mock_server.local is not None
    assert (type(kling_mock.clock).__name__ == "InProcessClock") == in_process
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
        monkeypatch.setattr(kling_mock_server.local.backend, "render_api", explode)
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


DESIGN_2026 = """
from kling_testkit.credentials import MOCK_API_KEY
from mock_server.media import mp4_duration_seconds

def test_the_2026_design(kling_mock, kling_credentials, kling_client, tmp_path):
    assert kling_credentials.api_key == MOCK_API_KEY and kling_credentials.has_pair
    assert kling_client.credentials == kling_credentials
    body = {"contents": [{"type": "prompt", "text": "a red fox in snow"}]}
    task = kling_client.create_task("text-to-video/kling-3.0", body)
    done = kling_client.wait("text-to-video/kling-3.0", task)  # moves the mock's clock
    assert done["status"] == "succeeded"
    assert [t["id"] for t in kling_client.iter_tasks()] == [task["id"]]
    kling_client.download(done["outputs"][0], tmp_path / "fox.mp4")
    assert mp4_duration_seconds((tmp_path / "fox.mp4").read_bytes()) > 4
    assert len(kling_mock.requests(path="/tasks")) >= 2
"""


def test_the_fixtures_open_the_2026_design(pytester: pytest.Pytester) -> None:
    run(pytester, DESIGN_2026).assert_outcomes(passed=1)


def test_the_fixtures_open_the_2026_design_of_a_served_mock(
    pytester: pytest.Pytester, served_mock: str
) -> None:
    run(pytester, DESIGN_2026, f"--kling-base-url={served_mock}").assert_outcomes(passed=1)


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


# ------------------------------------------------------------------ safety (issue 8)


class StandIn:
    """A stand-in for the real API on loopback: answers like a server, records every request."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        self.authorizations: list[str] = []  # secrets: compare them, never show them
        self.url = ""

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        self.requests.append(f"{environ['REQUEST_METHOD']} {environ['PATH_INFO']}")
        self.authorizations.append(environ.get("HTTP_AUTHORIZATION", ""))
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b'{"code": 0, "message": "SUCCEED", "request_id": "r", "data": []}']


@pytest.fixture
def stand_in() -> Iterator[StandIn]:
    import threading

    from werkzeug.serving import make_server

    found = StandIn()
    server = make_server("127.0.0.1", 0, found, threaded=True)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    found.url = f"http://127.0.0.1:{server.server_port}"
    yield found
    server.shutdown()
    server.server_close()


DOWNSTREAM = (
    EVERY_FIXTURE
    + """

def test_faults_stay_in_their_test(kling_mock, kling_client):
    kling_mock.add_fault(action={"type": "error", "code": 5001})
    assert len(kling_mock.faults()) == 1


def test_and_the_next_test_is_clean(kling_mock, kling_client):
    assert kling_mock.faults() == [] and kling_mock.tasks() == []
    kling_client.text2video("clean")


def test_the_readme_example_without_kling_mock(kling_base_url, kling_credentials, kling_client):
    for n in range(6):  # more than the 5 video slots: each test starts with none in use
        kling_client.text2video(f"shot {n}")
"""
)


def test_the_production_variables_reach_nothing(
    pytester: pytest.Pytester, stand_in: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KLING_BASE_URL", stand_in.url)
    monkeypatch.setenv("KLING_ACCESS_KEY", "prod-access-key")
    monkeypatch.setenv("KLING_SECRET_KEY", "prod-secret-key-0123456789abcdef0123456789")
    monkeypatch.setenv("KLING_API_KEY", "api-key-kling-production-0123456789abcdef0123456789")
    run(pytester, DOWNSTREAM).assert_outcomes(passed=4)
    assert stand_in.requests == []


def test_a_proxy_from_the_environment_never_sees_the_in_process_mock(
    pytester: pytest.Pytester, stand_in: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, stand_in.url)  # a "proxy" that records what reaches it
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    run(pytester, DOWNSTREAM).assert_outcomes(passed=4)
    assert stand_in.requests == []


def test_what_a_test_sets_on_its_client_session_stays_in_that_test(
    pytester: pytest.Pytester,
) -> None:
    source = """
    def test_sets(kling_client, kling_mock):
        kling_client.session.headers["X-Left-Over"] = "1"
        kling_client.session.cookies.set("left", "over")
        kling_client.list_tasks("text2video")

    def test_sees_none(kling_client, kling_mock):
        assert "X-Left-Over" not in kling_client.session.headers
        assert not kling_client.session.cookies
        kling_client.list_tasks("text2video")
        (entry,) = kling_mock.requests(path="/v1/videos/text2video")
        assert "x-left-over" not in {k.lower() for k in entry["headers"]}
    """
    run(pytester, source, "-p", "no:randomly").assert_outcomes(passed=2)


def test_a_real_target_gets_no_paid_call_without_a_budget(
    pytester: pytest.Pytester, stand_in: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KLING_TESTKIT_ACCESS_KEY", "sandbox-access")
    monkeypatch.setenv("KLING_TESTKIT_SECRET_KEY", "sandbox-secret-0123456789abcdef0123456789")
    source = """
    import pytest
    from kling_testkit.budget import BudgetExceeded

    def test_paid(kling_client):
        with pytest.raises(BudgetExceeded):
            kling_client.text2video("a lighthouse")

    def test_free(kling_client):
        assert kling_client.list_tasks("text2video") == []

    def test_needs_mock(kling_mock):
        pass
    """
    result = run(pytester, source, f"--kling-base-url={stand_in.url}", "-rs")
    result.assert_outcomes(passed=2, skipped=1)
    result.stdout.fnmatch_lines(["*needs a mock target*--kling-base-url*"])
    assert [r for r in stand_in.requests if r.startswith("POST")] == []
    assert "GET /v1/videos/text2video" in stand_in.requests


def test_a_real_target_with_only_an_api_key_gets_it_on_both_designs(
    pytester: pytest.Pytester, stand_in: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "api-key-kling-sandbox-0123456789abcdef0123456789abcdef"
    for name in ("KLING_TESTKIT_ACCESS_KEY", "KLING_TESTKIT_SECRET_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("KLING_TESTKIT_API_KEY", key)
    source = """
    import pytest
    from kling_testkit.budget import BudgetExceeded

    def test_keys(kling_credentials, kling_client):
        assert kling_credentials.api_key and not kling_credentials.has_pair
        assert kling_client.credentials == kling_credentials

    def test_free(kling_client):
        assert kling_client.query_tasks(task_ids=["123456789012345678"]) == []
        assert kling_client.list_tasks("text2video") == []

    def test_paid(kling_client):
        with pytest.raises(BudgetExceeded):
            kling_client.create_task(
                "text-to-video/kling-3.0", {"contents": [{"type": "prompt", "text": "x"}]}
            )
    """
    run(pytester, source, f"--kling-base-url={stand_in.url}").assert_outcomes(passed=3)
    sent = [(r, a) for r, a in zip(stand_in.requests, stand_in.authorizations, strict=True)]
    api = [(r, a == f"Bearer {key}") for r, a in sent if not r.startswith("GET /__mock")]
    assert api == [("GET /tasks", True), ("GET /v1/videos/text2video", True)]


def test_a_real_target_without_keys_skips_the_credentials(
    pytester: pytest.Pytester, stand_in: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("KLING_TESTKIT_ACCESS_KEY", "KLING_TESTKIT_SECRET_KEY", "KLING_TESTKIT_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    source = """
    def test_needs_keys(kling_client):
        pass
    """
    result = run(pytester, source, f"--kling-base-url={stand_in.url}", "-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*needs $KLING_TESTKIT_API_KEY, or $KLING_TESTKIT_ACCESS_KEY*"])
    assert stand_in.requests == ["GET /__mock/health"]  # only the probe: is it a mock?


def test_a_budget_allows_that_many_units(
    pytester: pytest.Pytester, served_mock: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = """
    def test_spend(kling_client):
        kling_client.text2video("a lighthouse")
    """
    # served_mock is a mock; the budget applies to real targets only, so this just runs.
    run(pytester, source, f"--kling-base-url={served_mock}").assert_outcomes(passed=1)


def test_kling_mock_config_from_a_conftest(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest

        @pytest.fixture(scope="session")
        def kling_mock_config():
            return {"concurrency": {"video": 1}, "blocked_terms": ["forbidden"]}
        """
    )
    source = """
    import pytest
    from kling_testkit.errors import PolicyError, RateLimitError
    from kling_testkit.retry import RetryPolicy

    def test_start_up_config(kling_mock, kling_client):
        kling_client.retry = RetryPolicy(attempts=1)
        with pytest.raises(PolicyError):
            kling_client.text2video("a forbidden thing")
        kling_client.text2video("one")
        with pytest.raises(RateLimitError):
            kling_client.text2video("two")
    """
    run(pytester, source).assert_outcomes(passed=1)


def test_kling_mock_config_from_the_ini_option(pytester: pytest.Pytester) -> None:
    pytester.makefile(".json", mock_config='{"failure_rate": {"text2video": 1.0}}')
    pytester.makeini("[pytest]\nkling_mock_config = mock_config.json\n")
    source = """
    import pytest
    from kling_testkit.errors import TaskFailed

    def test_fails_by_config(kling_client):
        task = kling_client.text2video("a kite")
        with pytest.raises(TaskFailed):
            kling_client.wait("text2video", task)
    """
    run(pytester, source).assert_outcomes(passed=1)


def test_tokens_follow_the_mock_clock_when_it_checks_them(pytester: pytest.Pytester) -> None:
    source = """
    import pytest

    @pytest.mark.kling_config(auth_clock="mock")
    def test_hours_of_mock_time(kling_mock, kling_client):
        for _ in range(4):
            kling_mock.clock.advance(3600)  # past a 30-minute token's exp on the mock clock
            assert kling_client.list_tasks("text2video") == []
        assert {e["code"] for e in kling_mock.requests()} == {0}  # never a 1004
    """
    run(pytester, source).assert_outcomes(passed=1)


def test_hypothesis_examples_get_fresh_state(pytester: pytest.Pytester) -> None:
    source = """
    from hypothesis import given, settings, strategies as st

    @settings(max_examples=15, deadline=None)
    @given(n=st.integers(1, 3))
    def test_examples(kling_mock_server, n):
        with kling_mock_server.fresh() as mock:
            client = kling_mock_server.client(mock)
            for i in range(n):
                client.text2video(f"shot {i}", external_task_id=f"same-{i}")
            assert len(mock.tasks()) == n
    """
    run(pytester, source).assert_outcomes(passed=1)


def test_xdist_workers_share_one_served_mock_without_meeting(pytester: pytest.Pytester) -> None:
    from tests.test_cli import LISTENING, Server, _env

    served = Server(("--port", "0", "--manual-clock", "--quiet"), _env())
    try:
        url = served.wait_for(LISTENING).removeprefix("listening on ")
        source = (
            DOWNSTREAM
            + """

import pytest
import requests

@pytest.mark.parametrize("n", range(8))
def test_many(kling_mock, kling_client, n):
    kling_mock.add_fault(action={"type": "error", "code": 5000}, match={"path": "/nowhere"})
    kling_client.text2video(f"shot {n}")
    kling_mock.clock.advance(5)
    assert len(kling_mock.tasks()) == 1 and len(kling_mock.faults()) == 1
"""
        )
        run(pytester, source, "-n", "2", f"--kling-base-url={url}").assert_outcomes(passed=12)
        names = requests.get(f"{url}/__mock/namespaces", timeout=10).json()["data"]["names"]
        assert names == []  # every test's namespace was dropped at its end
        assert requests.get(f"{url}/__mock/tasks", timeout=10).json()["data"] == []
    finally:
        served.stop()


POLLS_TWICE = """
import pytest

{decorator}
def test_polls_twice_at_once(kling_client):
    task_id = kling_client.text2video("a quiet harbour")["task_id"]
    kling_client.get_task("text2video", task_id)
    kling_client.get_task("text2video", task_id)  # the same mock second: a poll storm

def test_polls_once(kling_client):
    kling_client.get_task("text2video", kling_client.text2video("a harbour")["task_id"])
"""


def test_the_audit_marker_fails_a_test_whose_client_broke_a_rule(
    pytester: pytest.Pytester,
) -> None:
    result = run(pytester, POLLS_TWICE.format(decorator="@pytest.mark.kling_audit"))
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*the client broke rules the mock checks:",
            "account 'default':",
            "  poll_storm: once",
            "    GET /v1/videos/text2video/* at mock time * (request *): queried 0.000 s after the "
            "previous query of this task (at most one per 1 s)",
            "    fix: poll a task at most once every few seconds*",
        ]
    )


def test_the_audit_marker_allows_what_a_test_names(pytester: pytest.Pytester) -> None:
    source = POLLS_TWICE.format(decorator='@pytest.mark.kling_audit(allow=["poll_storm"])')
    run(pytester, source).assert_outcomes(passed=2)


def test_unmarked_tests_are_not_judged_unless_the_ini_option_says(
    pytester: pytest.Pytester,
) -> None:
    run(pytester, POLLS_TWICE.format(decorator="")).assert_outcomes(passed=2)
    pytester.makeini("[pytest]\nkling_audit = true\n")
    run(pytester, POLLS_TWICE.format(decorator="")).assert_outcomes(passed=1, failed=1)
