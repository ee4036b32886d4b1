"""``/__mock/ui``: the dashboard, in headless Chromium against a mock on a loopback socket.

Every wait is on a condition of the page (Playwright's ``expect``, bounded), never a sleep.
Each browser test leaves a screenshot: in ``$KLING_TESTKIT_SCREENSHOTS`` when set, else the
test's tmp dir, and a copy in ``build/screenshots/``.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import requests
from flask.testing import FlaskClient

from tests.conftest import CREDS, T2V, Receiver, with_config

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("KLING_TESTKIT_CHROMIUM", "/usr/bin/chromium")
# This machine has no internet: Chromium's own background connections are cut off here.
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT_MS = 15_000  # the longest any page condition is waited for
TOKEN = "dashboard-control-token-0123456789abcdef"
ERROR = {"type": "error", "code": 5000}
XSS = '<img src=x onerror="window.__pwned = 1"><script>window.__pwned = 2</script>'


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium driven by Playwright (never a browser Playwright downloads)."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(
            f"no Chromium at {CHROMIUM}: the dashboard tests need it. Install it with "
            "`apt-get install -y chromium` (make test does when run as root; .ci/run too), "
            "or point KLING_TESTKIT_CHROMIUM at a Chromium binary"
        )
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=WAIT_MS)
    with sync_playwright() as playwright:
        # Playwright gives each launch a fresh profile (user-data-dir) of its own.
        found = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield found
        finally:
            found.close()


@pytest.fixture
def page(
    browser: Browser, request: pytest.FixtureRequest, tmp_path: Path, live_server: str
) -> Iterator[Page]:
    """A fresh browser context and page; after the test, a screenshot and no script errors."""
    context = browser.new_context(base_url=live_server)
    context.set_default_timeout(WAIT_MS)
    opened = context.new_page()
    errors: list[str] = []
    outside: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    opened.on(
        "console",
        lambda msg: errors.append(msg.text) if "Content Security Policy" in msg.text else None,
    )
    opened.on(
        "request",
        lambda req: None if req.url.startswith(live_server) else outside.append(req.url),
    )
    try:
        yield opened
        assert not errors, errors
        assert not outside, f"the page fetched from elsewhere: {outside}"
    finally:
        _screenshot(opened, request.node.name, tmp_path)
        context.close()


def _screenshot(page: Page, name: str, tmp_path: Path) -> None:
    name = re.sub(r"[^\w.-]+", "_", name)
    folder = Path(os.environ.get("KLING_TESTKIT_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    shot = folder / f"{name}.png"
    page.screenshot(path=shot, full_page=True)
    copies = ROOT / "build" / "screenshots"
    copies.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(shot, copies / shot.name)


def _headers() -> dict[str, str]:
    from kling_testkit.auth import bearer, sign_token

    return bearer(sign_token(CREDS))


def _create(base: str, prompt: str = "a red fox in fresh snow") -> str:
    answer = requests.post(f"{base}{T2V}", json={"prompt": prompt}, headers=_headers(), timeout=10)
    assert answer.status_code == 200, answer.text
    task_id: str = answer.json()["data"]["task_id"]
    return task_id


def _control(method: str, url: str, **kwargs: Any) -> Any:
    answer = requests.request(method, url, timeout=10, **kwargs)
    assert answer.status_code == 200, answer.text
    return answer.json()["data"]


def _open(page: Page, path: str = "/__mock/ui") -> None:
    from playwright.sync_api import expect

    page.goto(path)
    expect(page.locator("#status")).to_have_text(re.compile("^live"))


def test_the_page_loads_everything_from_the_mock(page: Page, live_server: str) -> None:
    from playwright.sync_api import expect

    answer = page.goto("/__mock/ui")
    assert answer is not None and answer.ok
    assert "script-src 'self'" in answer.headers["content-security-policy"]
    expect(page.locator("#status")).to_have_text(re.compile("^live"))
    expect(page.locator("#scope")).to_have_text("root mock")
    expect(page.locator("#clock-mode")).to_have_text(re.compile("stopped"))  # a manual clock
    expect(page.locator("#accounts tr[data-account='default']")).to_contain_text("video 0 / 1000")
    expect(page.locator("#tasks tbody")).to_have_text("no tasks yet")
    expect(page.locator("#scenarios dt").first).to_have_text(re.compile(r"\w"))


def test_a_task_created_through_the_api_appears_and_the_page_moves_it_to_succeed(
    page: Page, live_server: str
) -> None:
    from playwright.sync_api import expect

    _open(page)
    task_id = _create(live_server)
    row = page.locator(f"#tasks tr[data-task-id='{task_id}']")
    expect(row).to_have_attribute("data-status", "submitted")
    expect(page.locator("#task-counts [data-status='submitted']")).to_have_text("submitted: 1")
    account = page.locator("#accounts tr[data-account='default']")
    expect(account).to_contain_text("video 1 / 1000")  # the running task holds a slot
    page.fill("#advance-amount", "3")
    page.select_option("#advance-unit", label="minutes")  # 180 s: past 10 queued + 120 running
    page.click("#advance")
    expect(row).to_have_attribute("data-status", "succeed")
    expect(page.locator("#task-counts [data-status='succeed']")).to_have_text("succeed: 1")
    expect(account).to_contain_text("video 0 / 1000")
    expect(account).to_contain_text("video-pack (video, online): 999 / 1000")
    now = _control("GET", f"{live_server}/__mock/clock")["now"]
    assert now - _control("GET", f"{live_server}/__mock/tasks")[0]["timeline"]["submitted_at"] == (
        pytest.approx(180)
    )


def test_a_fault_added_through_the_api_shows(page: Page, live_server: str) -> None:
    from playwright.sync_api import expect

    _open(page)
    expect(page.locator("#faults tbody")).to_have_text("no fault rule")
    rule = {"id": "flaky-create", "match": {"path": "/v1/videos/*"}, "times": 3}
    _control("POST", f"{live_server}/__mock/faults", json={**rule, "action": ERROR})
    shown = page.locator("#faults tr[data-rule='flaky-create']")
    expect(shown).to_contain_text('{"path":"/v1/videos/*"}')
    expect(shown.locator("td").nth(4)).to_have_text("3")


def test_an_audit_finding_shows(page: Page, live_server: str) -> None:
    from playwright.sync_api import expect

    _open(page)
    expect(page.locator("#audit")).to_contain_text("clean")
    task_id = _create(live_server)
    for _ in range(2):  # the same task twice within one mock second: a poll storm
        requests.get(f"{live_server}{T2V}/{task_id}", headers=_headers(), timeout=10)
    finding = page.locator("#audit [data-finding='poll_storm']")
    expect(finding).to_contain_text("default: poll_storm, once")
    expect(finding).to_contain_text("fix: poll a task at most once")


def test_callbacks_delivered_and_failed_show(
    page: Page, live_server: str, receiver: Receiver
) -> None:
    from playwright.sync_api import expect

    _open(page)
    receiver.statuses = [500]  # the first attempt fails, its retry (1 mock second on) is taken
    body = {"prompt": "a kite", "callback_url": f"{receiver.url}/hook"}
    answer = requests.post(f"{live_server}{T2V}", json=body, headers=_headers(), timeout=10)
    assert answer.status_code == 200, answer.text
    _control("POST", f"{live_server}/__mock/callbacks/wait", json={"timeout": 10})
    _control("POST", f"{live_server}/__mock/clock/advance", json={"seconds": 2})
    counts = page.locator("#callback-counts")
    expect(counts).to_have_text("(failed 1, delivered 1, queued 1)")  # processing: not due
    rows = page.locator("#callbacks tbody tr")
    expect(rows.first).to_contain_text("delivered (200)")  # newest first
    expect(rows.nth(1)).to_contain_text("failed (500)")


def test_the_request_journal_filters(page: Page, live_server: str) -> None:
    from playwright.sync_api import expect

    _open(page)
    task_id = _create(live_server)
    requests.get(f"{live_server}{T2V}/{task_id}", headers=_headers(), timeout=10)
    requests.get(f"{live_server}{T2V}/999", headers=_headers(), timeout=10)
    rows = page.locator("#requests tbody tr")
    expect(rows).to_have_count(3)
    page.fill("#filter-status", "404")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(f"{T2V}/999")
    page.fill("#filter-status", "")
    page.select_option("#filter-method", "POST")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("a red fox in fresh snow")  # the body


@with_config(clock="real", time_scale=1000)
def test_pause_and_resume_from_the_page(page: Page, live_server: str) -> None:
    from playwright.sync_api import expect

    _open(page)
    mode = page.locator("#clock-mode")
    expect(mode).to_have_attribute("data-mode", "running")
    page.click("#pause")
    expect(mode).to_have_attribute("data-mode", "stopped")
    paused = _control("GET", f"{live_server}/__mock/clock")
    assert paused["mode"] == "manual"
    shown = page.locator("#clock-now").inner_text()
    expect(page.locator("#clock-now")).to_have_text(shown)
    assert _control("GET", f"{live_server}/__mock/clock")["now"] == paused["now"]
    page.click("#resume")
    expect(mode).to_have_attribute("data-mode", "running")
    expect(mode).to_have_text("running x1000")
    expect(page.locator("#clock-now")).not_to_have_text(shown)  # moving again
    resumed = _control("GET", f"{live_server}/__mock/clock")
    assert resumed["mode"] == "real" and resumed["now"] > paused["now"]


@with_config(control_token=TOKEN)
def test_the_page_asks_for_the_control_token_and_never_shows_it(
    page: Page, live_server: str
) -> None:
    from playwright.sync_api import expect

    page.goto("/__mock/ui")
    form = page.locator("#token-form")
    expect(form).to_be_visible()
    page.fill("#token-input", "not-the-token-" + "x" * 32)
    page.click("#token-submit")
    expect(page.locator("#token-error")).to_have_text("the mock refused this token")
    page.fill("#token-input", TOKEN)
    page.click("#token-submit")
    expect(page.locator("#status")).to_have_text(re.compile("^live"))
    expect(form).to_be_hidden()
    assert TOKEN not in page.content()
    assert requests.get(f"{live_server}/__mock/clock", timeout=10).status_code == 401


@with_config(control_token=TOKEN)
def test_the_token_in_the_fragment_is_taken_and_dropped_from_the_address(
    page: Page, live_server: str
) -> None:
    from playwright.sync_api import expect

    task_id = _create(live_server)
    page.goto(f"/__mock/ui#token={TOKEN}")
    expect(page.locator("#status")).to_have_text(re.compile("^live"))
    expect(page.locator(f"#tasks tr[data-task-id='{task_id}']")).to_be_visible()
    assert TOKEN not in page.url and TOKEN not in page.content()
    page.reload()  # the tab keeps it (sessionStorage), the address does not
    expect(page.locator("#status")).to_have_text(re.compile("^live"))


def test_client_text_is_shown_as_text(page: Page, live_server: str) -> None:
    from playwright.sync_api import expect

    _open(page)
    task_id = _create(live_server, prompt=XSS)
    row = page.locator(f"#tasks tr[data-task-id='{task_id}']")
    expect(row.locator("td").nth(4)).to_have_text(XSS)
    expect(page.locator("#requests tbody tr").first).to_contain_text(XSS.replace('"', '\\"'))
    assert page.locator("main img, main script").count() == 0
    assert page.evaluate("window.__pwned") is None


def test_a_namespace_page_shows_that_namespace(page: Page, live_server: str) -> None:
    from playwright.sync_api import expect

    mine = _create(f"{live_server}/ns/team-a")
    _open(page, "/ns/team-a/__mock/ui")
    expect(page.locator("#scope")).to_have_text("namespace team-a")
    expect(page.locator(f"#tasks tr[data-task-id='{mine}']")).to_be_visible()
    _open(page)
    expect(page.locator("#tasks tbody")).to_have_text("no tasks yet")  # the root has none
    link = page.locator("#namespaces li[data-namespace='team-a'] a")
    expect(link).to_have_attribute("href", "/ns/team-a/__mock/ui")
    link.click()
    expect(page.locator("#scope")).to_have_text("namespace team-a")
    expect(page.locator(f"#tasks tr[data-task-id='{mine}']")).to_be_visible()


# -- without a browser: what the mock serves --------------------------------------------------


@with_config(control_token=TOKEN)
def test_the_shell_needs_no_token_but_keeps_the_rest_of_the_guard(client: FlaskClient) -> None:
    page = client.get("/__mock/ui")
    assert page.status_code == 200 and page.mimetype == "text/html"
    assert TOKEN.encode() not in page.data
    assert page.headers["X-Frame-Options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    script = client.get("/__mock/ui/dashboard.js")
    assert script.status_code == 200 and script.mimetype == "text/javascript"
    assert client.get("/__mock/tasks").status_code == 401  # the data still needs the token
    for headers in ({"Sec-Fetch-Site": "cross-site"}, {"Host": "evil.example"}):
        refused = client.get("/__mock/ui", headers=headers)
        assert (refused.status_code, refused.json["code"]) == (403, 1103)  # type: ignore[index]


def test_an_unknown_dashboard_file_is_an_enveloped_404(client: FlaskClient) -> None:
    answer = client.get("/__mock/ui/../../etc/passwd")
    assert answer.status_code == 404 and answer.json["code"] == 1203  # type: ignore[index]
    answer = client.get("/__mock/ui/dashboard.html")  # the template is not served raw
    assert answer.status_code == 404 and answer.json["code"] == 1203  # type: ignore[index]


def test_the_namespace_shell_points_into_the_namespace(client: FlaskClient) -> None:
    page = client.get("/ns/team-a/__mock/ui").get_data(as_text=True)
    assert 'data-base="/ns/team-a/__mock"' in page and 'data-home="/__mock"' in page
    assert 'src="/ns/team-a/__mock/ui/dashboard.js"' in page
