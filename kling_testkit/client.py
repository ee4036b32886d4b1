"""A small, typed client of the Kling API, doing the things the pitfalls list gets wrong.

It speaks both designs: the legacy ``/v1`` one (``model_name`` in the body, one path per family
to create, query and list) and the 2026 one (the model in the path, ``contents``/``settings``/
``options`` bodies, ``GET /tasks`` to query and ``POST /tasks`` to list, an API key only). The
family name picks the design (``families()[family].design``).

Keys come from the caller or the environment (never a default), every call has a timeout, the
token is renewed before it expires, errors become typed exceptions, 429s and 5xx are retried a
bounded number of times honouring ``Retry-After``, ``wait`` polls with backoff and a deadline,
a budget refuses overspending, and ``download`` saves a result before its URL expires.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests

from kling_testkit.auth import DEFAULT_TOKEN_TTL, bearer, sign_token
from kling_testkit.budget import Budget
from kling_testkit.codes import ErrorCode
from kling_testkit.credentials import API_KEY_VAR, BASE_URL_VAR, Credentials
from kling_testkit.errors import (
    ApiError,
    CredentialsError,
    InvalidRequestError,
    KlingError,
    ProtocolError,
    ResultExpired,
    ServerError,
    TaskFailed,
    TransportError,
    WaitTimeout,
    error_class,
)
from kling_testkit.retry import RetryPolicy
from kling_testkit.spec import FAILED, TERMINAL, Family, families, operation_path
from kling_testkit.spec.document import DESIGN_2026, designs
from kling_testkit.spec.statuses import TERMINAL_2026

TERMINAL_STATUSES = TERMINAL
"""The statuses ``wait`` stops at on the legacy design (the contract's terminal ones)."""
TERMINAL_STATUSES_2026 = TERMINAL_2026
"""The statuses ``wait`` stops at on the 2026 design."""
TASKS_PATH = "/tasks"
"""The 2026 design's query (``GET``) and list (``POST``) endpoint."""
MAX_IDS_PER_QUERY = 100
"""Ids one ``GET /tasks`` may ask for (the mock refuses more; the reference names no limit)."""
RENEW_BEFORE = 60.0
"""Seconds before ``exp`` at which a cached token is replaced."""


def _seconds(retry_after: str) -> float | None:
    """A ``Retry-After`` in seconds (the API sends whole seconds; a date is not read)."""
    return float(retry_after) if retry_after.isdigit() else None


class KlingClient:
    """Talks to one target (the mock or a real endpoint) with one account's keys.

    ``credentials`` (or ``api_key``) default to the environment: ``KLING_API_KEY``, and
    ``KLING_ACCESS_KEY`` with ``KLING_SECRET_KEY``; there is never a built-in key. The legacy
    design is called with a JWT signed from the access key and secret key when there are some,
    else with the API key; the 2026 design only ever with the API key (a client without one
    raises :class:`CredentialsError` before sending to it).

    ``clock`` and ``sleep`` drive waiting and expiry checks (point them at a mock's clock to
    wait without sleeping); ``token_clock`` signs tokens (wall time by default).
    """

    def __init__(
        self,
        base_url: str | None = None,
        credentials: Credentials | None = None,
        *,
        api_key: str | None = None,
        timeout: float = 30.0,
        token_ttl: float = DEFAULT_TOKEN_TTL,
        retry: RetryPolicy | None = None,
        budget: Budget | None = None,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        token_clock: Callable[[], float] = time.time,
    ) -> None:
        base_url = base_url or os.environ.get(BASE_URL_VAR)
        if not base_url:
            raise KlingError(f"no target: pass base_url or set {BASE_URL_VAR}")
        credentials = credentials or Credentials.from_env()
        if api_key is not None:
            if not api_key.strip():
                raise CredentialsError("api_key is empty")
            credentials = (
                dataclasses.replace(credentials, api_key=api_key.strip())
                if credentials is not None
                else Credentials(api_key=api_key.strip())
            )
        if credentials is None:
            raise CredentialsError(
                f"no credentials: pass credentials or api_key, or set {API_KEY_VAR} "
                "(or KLING_ACCESS_KEY and KLING_SECRET_KEY)"
            )
        self.base_url = base_url.rstrip("/")
        self.credentials = credentials
        self.timeout = timeout
        self.token_ttl = token_ttl
        self.retry = retry or RetryPolicy()
        self.budget = budget
        self.session = session or requests.Session()
        self._clock, self._sleep, self._token_clock = clock, sleep, token_clock
        self._token: tuple[str, float] | None = None
        self._costs: dict[str, Decimal] = {}  # task_id -> units reserved in the budget

    # -- plumbing --------------------------------------------------------------------------

    def token(self, *, fresh: bool = False) -> str:
        """A valid token, signed anew when the cached one is within a minute of ``exp``.

        Needs an access key and secret key (:class:`CredentialsError` otherwise).
        """
        if not self.credentials.has_pair:
            raise CredentialsError(
                "no access key and secret key to sign a token with: this client has an API key "
                "only (it sends that instead)"
            )
        now = self._token_clock()
        if fresh or self._token is None or self._token[1] - RENEW_BEFORE <= now:
            self._token = (
                sign_token(self.credentials, now=now, ttl=self.token_ttl),
                now + self.token_ttl,
            )
        return self._token[0]

    def _signs(self, path: str) -> bool:
        """Whether a call to ``path`` carries a signed token (else the API key).

        The 2026 design's paths take an API key only; the legacy ones a token when there is a
        pair to sign it with, else the API key.
        """
        if is_2026_path(path):
            if not self.credentials.api_key:
                raise CredentialsError(
                    f"{path} is a 2026-design endpoint: it takes an API key only (an access key "
                    f"and secret key are refused there); pass api_key= or set {API_KEY_VAR}"
                )
            return False
        return self.credentials.has_pair

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Mapping[str, Any] | None = None,
        params: Mapping[str, Any] | None = None,
        deadline: float | None = None,
        idempotent: bool | None = None,
        recover: Callable[[ApiError], Any] | None = None,
    ) -> Any:
        """One API call with bounded retries; returns the envelope's ``data``.

        429 (rate or concurrency) and 5xx answers are retried after ``Retry-After`` (up to the
        policy's ``max_retry_after``) or a jittered backoff; an expired token is re-signed once;
        a transport failure (:class:`TransportError`) is retried only when the call is
        ``idempotent`` (default: GET). ``deadline``, on this client's clock, bounds the whole
        call: a wait that would pass it is not slept, and the last error is raised. After a
        lost attempt, ``recover`` may turn a refusal into a result (None: raise it). The path
        picks the ``Authorization``: the API key on a 2026-design path, else a token when the
        client has an access key and secret key.
        """
        idempotent = method == "GET" if idempotent is None else idempotent
        signs = self._signs(path)
        resigned = False
        retry = 0
        while True:
            failure: ApiError | TransportError
            try:
                return self._send(method, path, json, params, signs)
            except ApiError as error:
                if error.code == ErrorCode.AUTH_EXPIRED and signs and not resigned:
                    resigned = True
                    self.token(fresh=True)
                    continue
                if retry and recover is not None:
                    recovered = recover(error)
                    if recovered is not None:
                        return recovered
                if not self.retry.retryable(error):
                    raise
                failure = error
            except TransportError as error:
                if not idempotent:
                    raise
                failure = error
            retry += 1
            if retry >= self.retry.attempts:
                raise failure
            wait = self.retry.delay(failure if isinstance(failure, ApiError) else None, retry)
            if deadline is not None and self._clock() + wait > deadline:
                raise failure
            self._sleep(wait)

    def _send(
        self,
        method: str,
        path: str,
        json: Mapping[str, Any] | None,
        params: Mapping[str, Any] | None,
        signs: bool = True,
    ) -> Any:
        secret = self.token() if signs else self.credentials.api_key
        try:
            response = self.session.request(
                method,
                f"{self.base_url}{path}",
                json=json,
                params=params,
                headers=bearer(secret),
                timeout=self.timeout,
            )
        except requests.RequestException as exc:
            raise TransportError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("code"), int):
            shown = repr(response.text[:200]) if body is None else str(body)[:200]
            if response.status_code >= 500:  # a proxy in front of the API failed: retry later
                raise ServerError(
                    0,
                    f"{method} {path}: HTTP {response.status_code} without a Kling envelope "
                    f"(a gateway's answer?): {shown}",
                    response.status_code,
                    None,
                    _seconds(response.headers.get("Retry-After", "")),
                )
            what = "body is not JSON" if body is None else "not a Kling envelope"
            raise ProtocolError(f"{method} {path}: HTTP {response.status_code}, {what}: {shown}")
        code = body["code"]
        if code != 0 or response.status_code >= 400:
            raise error_class(code, response.status_code)(
                code,
                str(body.get("message", "")),
                response.status_code,
                body.get("request_id"),
                _seconds(response.headers.get("Retry-After", "")),
            )
        if "data" not in body:
            raise ProtocolError(f"{method} {path}: success envelope without data")
        return body["data"]

    @staticmethod
    def _family(family: str) -> Family:
        found = families().get(family)
        if found is None:
            raise KlingError(f"unknown family {family!r}; one of: {', '.join(sorted(families()))}")
        return found

    @classmethod
    def _path(cls, family: str) -> str:
        return cls._family(family).path

    @classmethod
    def _is_2026(cls, family: str) -> bool:
        return cls._family(family).design == DESIGN_2026

    # -- tasks -----------------------------------------------------------------------------

    def create_task(self, family: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """Submit a task; returns the create ``data``.

        Legacy families (``"text2video"`` ...) answer ``task_id``, ``task_status`` ...; 2026
        ones (``"text-to-video/kling-3.0"`` ...: ``contents``/``settings``/``options`` bodies,
        an API key needed) answer ``id``, ``status``, ``create_time``, ``update_time`` and
        ``external_id``.

        With retries on, the create carries an ``external_task_id`` (the caller's, or one made
        here; in ``options`` on the 2026 design), so a retry after a lost answer cannot create
        and charge twice: when the retry hears "external_task_id already used", the task the
        first try created is returned (looked up by that id: ``GET /tasks?external_task_ids=``
        on the 2026 design). With a budget, the task's price is reserved first and
        BudgetExceeded raised (nothing sent) when it does not fit.
        """
        new = self._is_2026(family)
        path = self._path(family)
        self._signs(path)  # no API key for a 2026 family: say so before reserving anything
        body = dict(body)
        if new:
            options = body.get("options")
            if options is not None and not isinstance(options, Mapping):
                raise KlingError(f"options must be an object; got {type(options).__name__}")
            holder: dict[str, Any] = dict(options or {})
        else:
            holder = body
        if self.retry.attempts > 1 and "external_task_id" not in holder:
            holder["external_task_id"] = f"kt-{uuid.uuid4().hex}"
        if new and holder:
            body["options"] = holder
        external = holder.get("external_task_id")

        def existing(error: ApiError) -> dict[str, Any] | None:
            if not (isinstance(external, str) and _is_duplicate_external_id(error)):
                return None
            if new:
                found = self.query_tasks(external_task_ids=[external])
                if not found:
                    return None
                return {k: found[0][k] for k in _CREATED_KEYS_2026 if k in found[0]}
            task = self.get_task(family, external)
            return {k: task[k] for k in _CREATED_KEYS if k in task}

        cost = self.budget.reserve(family, body) if self.budget else Decimal(0)
        try:
            data: dict[str, Any] = self.request(
                "POST",
                path,
                json=body,
                idempotent=isinstance(external, str),
                recover=existing,
            )
        except BaseException:
            if self.budget:
                self.budget.refund(cost)
            raise
        self._costs[str(data["id" if new else "task_id"])] = cost
        return data

    def text2video(self, prompt: str, **fields: Any) -> dict[str, Any]:
        """Submit a legacy text-to-video task (``/v1/videos/text2video``)."""
        return self.create_task("text2video", {"prompt": prompt, **fields})

    def selection(self, step: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """One multi-elements selection call, answered at once: ``step`` is ``init``, ``add``,
        ``delete``, ``clear`` or ``preview`` (``POST /v1/videos/multi-elements/<step>-selection``);
        returns its ``data``. The edit itself is ``create_task("multi_elements", body)`` with
        the ``session_id`` that ``init`` answered. Only ``clear`` and ``preview`` are resent
        after a lost answer: the others would open or mark twice."""
        if step not in SELECTION_STEPS:
            raise ValueError(f"step must be one of {', '.join(SELECTION_STEPS)}; got {step!r}")
        path = operation_path(f"{step}_selection")
        data: dict[str, Any] = self.request(
            "POST", path, json=body, idempotent=step in ("clear", "preview")
        )
        return data

    def identify_face(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /v1/videos/identify-face`` (``video_id`` or ``video_url``), answered at once:
        its ``data`` (``session_id``, ``face_data``). The lip-sync itself is
        ``create_task("advanced_lip_sync", {"session_id": ..., "face_choose": [...]})``. Not
        resent after a lost answer: it would open a second session."""
        path = operation_path("identify_face")
        data: dict[str, Any] = self.request("POST", path, json=body, idempotent=False)
        return data

    def get_task(
        self, family: str, task_id: str, *, deadline: float | None = None
    ) -> dict[str, Any]:
        """Query one task.

        Legacy: by ``task_id`` (or ``external_task_id``) on the family's path. 2026 design: by
        ``id`` through ``GET /tasks?task_ids=<id>`` (an external id goes through
        :meth:`query_tasks`); the API answers an unknown id with an empty array, which is raised
        here as :class:`InvalidRequestError` with code 1203 (resource not found), as the
        legacy design's 404 is.
        """
        if not self._is_2026(family):
            data: dict[str, Any] = self.request(
                "GET", f"{self._path(family)}/{task_id}", deadline=deadline
            )
            return data
        found = self.query_tasks(task_ids=[task_id], deadline=deadline)
        if not found:
            raise InvalidRequestError(
                ErrorCode.RESOURCE_NOT_FOUND,
                f"task {task_id} not found: GET {TASKS_PATH}?task_ids={task_id} answered an "
                "empty list (an unknown id, or a task of another account or design)",
                200,
            )
        return found[0]

    def query_tasks(
        self,
        *,
        task_ids: Sequence[str] = (),
        external_task_ids: Sequence[str] = (),
        deadline: float | None = None,
    ) -> list[dict[str, Any]]:
        """2026 design: the tasks with these ids, or these external ids (one kind per call),
        through ``GET /tasks``, in the order asked; unknown ids are left out.

        More than 100 ids are asked in batches of 100.
        """
        if bool(task_ids) == bool(external_task_ids):
            raise KlingError("query_tasks takes task_ids or external_task_ids (one of the two)")
        name, ids = ("task_ids", task_ids) if task_ids else ("external_task_ids", external_task_ids)
        if isinstance(ids, str):
            raise KlingError(f"{name} must be a list of ids, not one string")
        bad = [i for i in ids if not isinstance(i, str) or not i or "," in i]
        if bad:
            raise KlingError(f"{name}: each id must be a non-empty string without commas: {bad}")
        found: list[dict[str, Any]] = []
        for start in range(0, len(ids), MAX_IDS_PER_QUERY):
            batch = ",".join(ids[start : start + MAX_IDS_PER_QUERY])
            data = self.request("GET", TASKS_PATH, params={name: batch}, deadline=deadline)
            if not isinstance(data, list):
                raise ProtocolError(f"GET {TASKS_PATH}: data is not a list: {str(data)[:200]}")
            found += data
        return found

    def list_tasks(self, family: str, *, page: int = 1, size: int = 30) -> list[dict[str, Any]]:
        """One page of a legacy family's tasks, newest first (the 2026 design lists every
        task at once through :meth:`list_page` and :meth:`iter_tasks`)."""
        if self._is_2026(family):
            raise KlingError(
                f"{family} is a 2026-design family: its tasks are listed through POST "
                f"{TASKS_PATH} (list_page() or iter_tasks())"
            )
        data: list[dict[str, Any]] = self.request(
            "GET", self._path(family), params={"pageNum": page, "pageSize": size}
        )
        return data

    def list_page(
        self,
        *,
        cursor: str | None = None,
        limit: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        filters: Mapping[str, Sequence[str]] | None = None,
    ) -> dict[str, Any]:
        """2026 design: one page of ``POST /tasks``: ``result`` (task objects), ``count``,
        ``has_more`` and, when there is more, ``next_cursor``.

        ``start_time``/``end_time`` are Unix milliseconds (ignored by the API with a cursor);
        ``limit`` 1..500 (the API's default 100); ``filters`` by key, e.g.
        ``{"status": ["succeeded"], "product_type": ["video"]}``. An empty page comes back
        with ``result`` as ``[]`` (the API leaves it out).
        """
        if limit is not None and not 1 <= limit <= 500:
            raise KlingError(f"limit must be between 1 and 500; got {limit}")
        body: dict[str, Any] = {}
        for name, value in (
            ("cursor", cursor),
            ("limit", limit),
            ("start_time", start_time),
            ("end_time", end_time),
        ):
            if value is not None:
                body[name] = value
        if filters:
            body["filters"] = [{"key": k, "values": list(v)} for k, v in filters.items()]
        data = self.request("POST", TASKS_PATH, json=body, idempotent=True)
        if not isinstance(data, dict) or not isinstance(data.get("result", []), list):
            raise ProtocolError(f"POST {TASKS_PATH}: not a page of tasks: {str(data)[:200]}")
        page: dict[str, Any] = {"result": [], **data}
        return page

    def iter_tasks(
        self,
        *,
        limit: int | None = None,
        start_time: int | None = None,
        end_time: int | None = None,
        filters: Mapping[str, Sequence[str]] | None = None,
        max_pages: int = 100,
    ) -> Iterator[dict[str, Any]]:
        """2026 design: every task of ``POST /tasks`` (see :meth:`list_page`), page after page
        following ``next_cursor``.

        Bounded: after ``max_pages`` pages with more still to come it raises
        :class:`KlingError` (narrow the window or raise ``max_pages``); a page that says it has
        more but gives no new cursor raises :class:`ProtocolError`.
        """
        if max_pages < 1:
            raise KlingError(f"max_pages must be at least 1; got {max_pages}")
        cursor: str | None = None
        seen: set[str] = set()
        for _ in range(max_pages):
            page = self.list_page(
                cursor=cursor,
                limit=limit,
                start_time=start_time,
                end_time=end_time,
                filters=filters,
            )
            yield from page["result"]
            if not page.get("has_more"):
                return
            cursor = page.get("next_cursor")
            if not isinstance(cursor, str) or not cursor or cursor in seen:
                raise ProtocolError(
                    f"POST {TASKS_PATH}: has_more without a new next_cursor ({cursor!r})"
                )
            seen.add(cursor)
        raise KlingError(
            f"POST {TASKS_PATH}: still more tasks after {max_pages} pages; narrow the time "
            "window or raise max_pages"
        )

    def wait(
        self,
        family: str,
        task: str | Mapping[str, Any],
        *,
        timeout: float = 900.0,
        poll_interval: float = 1.0,
        max_interval: float = 15.0,
        on_poll: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Poll until the task ends; return it on success, raise TaskFailed or WaitTimeout.

        ``task`` is a task id or a task object (a create's ``data`` will do). The interval
        starts at ``poll_interval`` and doubles up to ``max_interval``; ``on_poll`` sees every
        task object fetched. On the 2026 design it polls ``GET /tasks?task_ids=`` and stops at
        ``succeeded`` or ``failed``.
        """
        new = self._is_2026(family)
        id_key, status_key = ("id", "status") if new else ("task_id", "task_status")
        failed, terminal = (FAILED, TERMINAL_STATUSES_2026) if new else (FAILED, TERMINAL_STATUSES)
        task_id = task if isinstance(task, str) else str(task[id_key])
        deadline = self._clock() + timeout
        interval = poll_interval
        while True:
            current = self.get_task(family, task_id, deadline=deadline)
            if on_poll is not None:
                on_poll(current)
            if current[status_key] == failed:
                if self.budget and task_id in self._costs:
                    self.budget.refund(self._costs.pop(task_id))
                raise TaskFailed(current)
            if current[status_key] in terminal:
                return current
            remaining = deadline - self._clock()
            if remaining <= 0:
                raise WaitTimeout(f"task {task_id} still {current[status_key]} after {timeout}s")
            self._sleep(min(interval, remaining))
            interval = min(interval * 2, max_interval)

    def download(self, result: str | Mapping[str, Any], path: str | Path) -> int:
        """Save a result file to ``path``: its URL, a legacy ``videos[]``/``images[]``/
        ``audios[]`` item (an audio's MP3), or a 2026 ``outputs[]`` item (its ``url``; an
        audio's ``mp3_url``).

        Writes atomically (nothing is left behind on failure) and returns the size in bytes.
        The server decides whether a URL still works: 403, 404 and 410 raise ResultExpired
        (real result URLs carry no expiry a client could read); a connection that fails or a
        body cut short raise TransportError.
        """
        if isinstance(result, str):
            url = result
        else:
            found = result.get("url") or result.get("url_mp3") or result.get("mp3_url")
            if not isinstance(found, str) or not found:
                raise KlingError(f"no url in this result: keys {sorted(result)}")
            url = found
        shown = urlsplit(url)._replace(query="").geturl()  # a signed URL is a capability
        target = Path(path)
        try:
            with self.session.get(url, timeout=self.timeout, stream=True) as response:
                if response.status_code in (403, 404, 410):
                    raise ResultExpired(
                        f"download of {shown} refused (HTTP {response.status_code}): "
                        f"{response.text[:200]}; copy results as soon as a task succeeds"
                    )
                if response.status_code != 200:
                    raise KlingError(f"download of {shown} failed: HTTP {response.status_code}")
                return _save(response, target)
        except requests.RequestException as exc:
            raise TransportError(f"download of {shown} failed: {type(exc).__name__}") from exc


_CREATED_KEYS = ("task_id", "task_status", "task_info", "created_at", "updated_at")
_CREATED_KEYS_2026 = ("id", "status", "create_time", "update_time", "external_id")


SELECTION_STEPS = ("init", "add", "delete", "clear", "preview")
"""The steps of a multi-elements selection session, in the order a client takes them."""


@functools.cache
def _paths_2026() -> tuple[str, ...]:
    return tuple(p for f in designs(DESIGN_2026).values() for p in f.paths)


def is_2026_path(path: str) -> bool:
    """Whether ``path`` (a query string allowed) is an endpoint of the 2026 design: ``/tasks``
    or a model's create path (aliases included). Those take an API key only."""
    bare = path.split("?", 1)[0].rstrip("/")
    return bare == TASKS_PATH or any(bare == p or bare.startswith(f"{p}/") for p in _paths_2026())


def _is_duplicate_external_id(error: ApiError) -> bool:
    return error.code == ErrorCode.INVALID_VALUE and "external_task_id" in error.message


def _save(response: requests.Response, target: Path) -> int:
    """Stream a response body to ``target`` through a temporary file in the same folder."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    size = 0
    try:
        with os.fdopen(fd, "wb") as out:
            for chunk in response.iter_content(64 * 1024):
                out.write(chunk)
                size += len(chunk)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return size
