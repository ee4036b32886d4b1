"""The contract suite and its runner against good and broken targets (a rewriting proxy)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from kling_testkit.credentials import Credentials
from kling_testkit.drift import check_recorded, compare_targets
from kling_testkit.server import InProcessMock

Rewrite = Callable[[Request, int, dict[str, Any]], tuple[int, str, str] | None]


def _walk(value: Any, change: Callable[[str, Any], Any]) -> Any:
    if isinstance(value, dict):
        return {k: change(k, _walk(v, change)) for k, v in value.items()}
    if isinstance(value, list):
        return [_walk(v, change) for v in value]
    return value


REWRITES: dict[str, Callable[[Request, int, Any], tuple[int, str, str]]] = {}


def rewrite(name: str) -> Callable[[Any], Any]:
    def register(fn: Any) -> Any:
        REWRITES[name] = fn
        return fn

    return register


def _json(status: int, body: Any) -> tuple[int, str, str]:
    return status, "application/json", json.dumps(body)


@rewrite("faithful")
def _faithful(req: Request, status: int, body: Any) -> tuple[int, str, str]:
    return _json(status, body)


@rewrite("no-request-id")
def _no_request_id(req: Request, status: int, body: Any) -> tuple[int, str, str]:
    body.pop("request_id", None)
    return _json(status, body)


@rewrite("succeeded")
def _succeeded(req: Request, status: int, body: Any) -> tuple[int, str, str]:
    return _json(status, _walk(body, lambda k, v: "succeeded" if v == "succeed" else v))


@rewrite("succeed-2026")
def _succeed_2026(req: Request, status: int, body: Any) -> tuple[int, str, str]:
    return _json(status, _walk(body, lambda k, v: "succeed" if v == "succeeded" else v))


@rewrite("duration-number")
def _duration_number(req: Request, status: int, body: Any) -> tuple[int, str, str]:
    def change(key: str, value: Any) -> Any:
        return int(value) if key == "duration" and isinstance(value, str) else value

    return _json(status, _walk(body, change))


@rewrite("no-data")
def _no_data(req: Request, status: int, body: Any) -> tuple[int, str, str]:
    if body.get("code") == 0:
        body.pop("data", None)
    return _json(status, body)


@rewrite("html-502")
def _html_502(req: Request, status: int, body: Any) -> tuple[int, str, str]:
    if req.method == "GET" and not req.path.startswith("/__mock"):
        return 502, "text/html", "<html><body><h1>502 Bad Gateway</h1></body></html>"
    return _json(status, body)


class Proxy:
    """Forwards to a mock and rewrites its JSON answers; ``real`` hides ``/__mock``, ``hide``
    the paths that end so (``/__mock/audit``: a mock from before the audit)."""

    def __init__(self, upstream: str, mode: str, real: bool, hide: str | None = None) -> None:
        self.upstream, self.mode, self.real, self.hide = upstream, mode, real, hide
        self.posts = 0
        self.sent: list[str] = []  # "METHOD /path" of each API request (not /__mock)
        self.session = requests.Session()
        self.session.trust_env = False

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        req = Request(environ)
        hidden = self.hide is not None and req.path.endswith(self.hide)
        if hidden or (self.real and req.path.startswith("/__mock")):
            return Response("<h1>Not Found</h1>", 404, mimetype="text/html")(
                environ, start_response
            )
        if req.method == "POST" and not req.path.startswith("/__mock"):
            self.posts += 1
        if not req.path.startswith("/__mock"):
            self.sent.append(f"{req.method} {req.path}")
        headers = {
            k: v for k, v in req.headers.items() if k.lower() not in ("host", "content-length")
        }
        answer = self.session.request(
            req.method,
            f"{self.upstream}{req.full_path.rstrip('?')}",
            headers=headers,
            data=req.get_data(),
            timeout=30,
        )
        if not answer.headers.get("Content-Type", "").startswith("application/json"):
            response = Response(
                answer.content, answer.status_code, content_type=answer.headers.get("Content-Type")
            )
        else:
            status, kind, text = REWRITES[self.mode](req, answer.status_code, answer.json())
            response = Response(text, status, content_type=kind)
            if "Retry-After" in answer.headers:
                response.headers["Retry-After"] = answer.headers["Retry-After"]
        return response(environ, start_response)


@pytest.fixture
def proxy() -> Iterator[Callable[..., tuple[str, Proxy]]]:
    started: list[Any] = []

    def start(
        mode: str = "faithful", *, real: bool = False, hide: str | None = None
    ) -> tuple[str, Proxy]:
        config = {"clock": "real", "time_scale": 1000} if real else {}
        mock = InProcessMock(config).start()
        found = Proxy(mock.base_url, mode, real, hide)
        server = make_server("127.0.0.1", 0, found, threaded=True)
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        started.append((mock, server))
        return f"http://127.0.0.1:{server.server_port}", found

    yield start
    for mock, server in started:
        server.shutdown()
        server.server_close()
        mock.stop()


def run_contract(url: str | None, *args: str, tmp: Path) -> tuple[int, str, Any]:
    """``kling-testkit contract`` against ``url`` (None: an in-process mock)."""
    report = tmp / "junit.xml"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "kling_testkit.cli",
            "contract",
            *(["--base-url", url] if url else []),
            "--junitxml",
            str(report),
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    return done.returncode, done.stdout + done.stderr, report


def test_the_suite_holds_against_a_mock_reached_over_http(
    proxy: Callable[..., tuple[str, Proxy]], tmp_path: Path
) -> None:
    url, _ = proxy("faithful")
    code, out, junit = run_contract(url, tmp=tmp_path)
    assert code == 0, out[-3000:]
    assert re.search(r"checked \d+: \d+ held, 0 broken, 0 skipped", out), out[-1500:]
    assert junit.exists() and "testsuite" in junit.read_text()


@pytest.mark.parametrize(
    ("mode", "names"),
    [
        ("no-request-id", "request_id: request_id is required"),
        ("succeeded", "data.task_status must be one of"),
        ("duration-number", "duration must be of type string"),
        ("succeed-2026", "data[0].status must be one of"),
        ("no-data", "data: data is required"),
        ("html-502", "Content-Type: application/json; got 'text/html"),
    ],
)
def test_the_suite_fails_naming_what_broke(
    proxy: Callable[..., tuple[str, Proxy]], tmp_path: Path, mode: str, names: str
) -> None:
    url, _ = proxy(mode)
    code, out, _ = run_contract(url, tmp=tmp_path)
    assert code != 0
    assert "BROKEN" in out and names in out, out[-3000:]


def test_a_real_looking_target_gets_no_create_without_a_budget(
    proxy: Callable[..., tuple[str, Proxy]], tmp_path: Path
) -> None:
    url, found = proxy("faithful", real=True)
    code, out, _ = run_contract(url, tmp=tmp_path)
    assert code == 0, out[-3000:]
    assert found.posts == 0
    assert "raise --max-units" in out and "units spent: 0" in out
    assert not re.search(r"(?m)^audit", out), out[-1500:]  # not a mock: no audit to show


def test_with_a_budget_paid_checks_run_and_stay_within_it(
    proxy: Callable[..., tuple[str, Proxy]], tmp_path: Path
) -> None:
    url, found = proxy("faithful", real=True)
    code, out, _ = run_contract(url, "--max-units", "4", tmp=tmp_path)
    assert code == 0, out[-3000:]
    spent = float(re.search(r"units spent: ([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    assert 0 < spent <= 4 and found.posts > 0


def test_a_real_looking_target_with_an_api_key_gets_the_2026_checks_within_budget(
    proxy: Callable[..., tuple[str, Proxy]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kling_testkit.credentials import MOCK_API_KEY

    monkeypatch.setenv("KLING_API_KEY", MOCK_API_KEY)  # the runner passes it to the suite
    url, found = proxy("faithful", real=True)
    only = ("--", "-k", "test_design_2026")
    code, out, _ = run_contract(url, *only, tmp=tmp_path)
    assert code == 0, out[-3000:]
    creates = [s for s in found.sent if s.startswith("POST /") and s != "POST /tasks"]
    assert creates == [] and "GET /tasks" in found.sent and "POST /tasks" in found.sent
    assert "raise --max-units" in out and "units spent: 0" in out
    assert "needs the target's API key" not in out
    found.sent.clear()
    code, out, _ = run_contract(url, "--max-units", "3", *only, tmp=tmp_path)
    assert code == 0, out[-3000:]
    spent = float(re.search(r"units spent: ([0-9.]+)", out).group(1))  # type: ignore[union-attr]
    assert spent == 3  # both 1.5-unit lifecycles; the 3-unit walk no longer fits
    creates = [s for s in found.sent if s.startswith("POST /") and s != "POST /tasks"]
    assert sorted(creates) == [
        "POST /image-to-video/kling-2.5-turbo",
        "POST /text-to-video/kling-2.5-turbo",
    ]
    assert re.search(r"skipped 1: paid check: needs 1\.5 units, 0(\.0)? left", out), out[-1500:]


def test_without_an_api_key_a_real_target_skips_the_2026_checks(
    proxy: Callable[..., tuple[str, Proxy]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("KLING_API_KEY", "KLING_TESTKIT_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    url, found = proxy("faithful", real=True)
    code, out, _ = run_contract(url, "--", "-k", "test_design_2026", tmp=tmp_path)
    assert code == 0, out[-3000:]
    assert re.search(r"checked (\d+): 0 held, 0 broken, \1 skipped", out), out[-1500:]
    assert "needs the target's API key ($KLING_TESTKIT_API_KEY" in out
    assert found.sent == []


def test_drift_is_quiet_against_a_faithful_target(proxy: Callable[..., tuple[str, Proxy]]) -> None:
    url, _ = proxy("faithful")
    assert compare_targets(url, Credentials.mock_default({})) == []


def test_drift_names_each_difference(proxy: Callable[..., tuple[str, Proxy]]) -> None:
    url, _ = proxy("no-request-id")
    found = compare_targets(url, Credentials.mock_default({}))
    assert found and all("request_id: the mock sends it, the target does not" in f for f in found)
    url, _ = proxy("html-502")
    found = compare_targets(url, Credentials.mock_default({}))
    assert any(
        "Content-Type: the mock 'application/json', the target 'text/html'" in f for f in found
    )


def test_recorded_answers_are_checked(tmp_path: Path) -> None:
    task = {
        "task_id": "123456789012345678",
        "task_status": "succeeded",
        "task_status_msg": "",
        "task_info": {},
        "task_result": {},
        "watermark_info": {"enabled": False},
        "created_at": 1,
        "updated_at": 1,
        "new_field": 1,
    }
    record = {
        "method": "GET",
        "path": "/v1/videos/text2video/123456789012345678",
        "status": 200,
        "body": {"code": 0, "message": "SUCCEED", "request_id": "r", "data": task},
    }
    (tmp_path / "task.json").write_text(json.dumps(record))
    (tmp_path / "broken.json").write_text("{not json")
    found = check_recorded(tmp_path)
    assert any("data.task_status must be one of" in f for f in found), found
    assert any("data.new_field: the real API sends it; the mock never does" in f for f in found)
    assert any(f.startswith("broken.json: not a recorded answer") for f in found)


def test_the_example_ci_workflow_runs_commands_that_exist() -> None:
    yaml = pytest.importorskip("yaml")
    workflow = yaml.safe_load(
        (Path(__file__).parent.parent / "examples" / "contract-ci.yml").read_text()
    )
    runs = [s["run"] for s in workflow["jobs"]["contract"]["steps"] if "run" in s]
    commands = [r for r in runs if r.startswith("kling-testkit")]
    assert len(commands) == 4
    from kling_testkit.cli import _parser

    for command in commands:
        args = command.replace('"${{ secrets.KLING_BASE_URL }}"', "http://127.0.0.1:9").split()[1:]
        _parser().parse_args(args)  # exits on an unknown flag


def test_against_a_mock_the_summary_shows_the_suites_own_audit(tmp_path: Path) -> None:
    # A mock that calls one query of a task every hour a poll storm: the suite polls every 30
    # mock seconds, so its own requests now break a rule.
    mock = InProcessMock({"audit": {"poll_interval_s": 3600}}).start()
    try:
        code, out, _ = run_contract(mock.base_url, "--fail-on-audit", tmp=tmp_path)
        assert code == 1, out[-3000:]
        assert "audit: the suite broke rules the mock checks" in out
        assert re.search(r"  poll_storm: \d+ times", out) and "FAILED --fail-on-audit" in out
        assert "(at most one per 3600 s) [test_a_task_runs_to_the_end_and_its_result_down" in out
        code, out, _ = run_contract(mock.base_url, "--audit-allow", "poll_storm", tmp=tmp_path)
        assert code == 0 and "audit: clean" in out, out[-3000:]
        code, out, _ = run_contract(mock.base_url, tmp=tmp_path)  # shown, not failed
        assert code == 0 and "poll_storm" in out, out[-3000:]
    finally:
        mock.stop()


def test_the_audit_of_an_in_process_mock_is_in_the_summary(tmp_path: Path) -> None:
    code, out, _ = run_contract(None, "--fail-on-audit", tmp=tmp_path)
    assert code == 0, out[-3000:]
    # 4 units of legacy checks, 6 of the 2026 design's (two 1.5-unit lifecycles, two 1.5-unit
    # tasks to query and walk).
    assert out.rstrip().endswith("units spent: 10 (mock units, no money)\naudit: clean"), out[-800:]


def test_a_mock_without_an_audit_is_checked_as_before(
    proxy: Callable[..., tuple[str, Proxy]], tmp_path: Path
) -> None:
    url, _ = proxy("faithful", hide="/__mock/audit")
    code, out, _ = run_contract(url, "--fail-on-audit", tmp=tmp_path)
    assert code == 0, out[-3000:]
    assert re.search(r"checked \d+: \d+ held, 0 broken, 0 skipped", out), out[-1500:]
    assert not re.search(r"(?m)^audit", out), out[-1500:]


def test_the_suite_is_clean_by_the_mocks_audit(
    proxy: Callable[..., tuple[str, Proxy]], tmp_path: Path
) -> None:
    url, _ = proxy("faithful")
    code, out, _ = run_contract(url, "--fail-on-audit", tmp=tmp_path)
    assert code == 0 and "audit: clean" in out, out[-3000:]
