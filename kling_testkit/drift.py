"""Drift: do a target's answers have the shapes the mock's have?

The same requests go to a fresh in-process mock and to the target; their answers are reduced to
shapes (keys, JSON types, status values and codes, the headers that matter) and compared. Free
requests always; a create (and its query) only on a mock or within ``max_units``. A folder of
answers recorded from the real API can be checked too: against the contract the mock follows,
and for keys the mock never sends.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from kling_testkit.auth import bearer, sign_token
from kling_testkit.budget import Budget
from kling_testkit.contract import check_body, operation
from kling_testkit.credentials import Credentials
from kling_testkit.spec import families, openapi, operation_path

LITERAL_KEYS = frozenset({"code", "task_status", "message"})  # compared by value, not type
HEADERS = ("Content-Type", "Retry-After")


@dataclass(frozen=True)
class Probe:
    name: str
    method: str
    path: str
    params: Mapping[str, Any] | None = None
    body: Any = None
    authed: bool = True


def free_probes() -> list[Probe]:
    t2v = families()["text2video"].path
    costs = operation_path("account_costs")
    now_ms = int(time.time() * 1000)
    return [
        Probe("no auth", "GET", t2v, authed=False),
        Probe("list a page", "GET", t2v, {"pageNum": 1, "pageSize": 5}),
        Probe("page size 0", "GET", t2v, {"pageSize": 0}),
        Probe("unknown task", "GET", f"{t2v}/000000000000000001"),
        Probe("unknown external id", "GET", t2v, {"external_task_id": "drift-never-used"}),
        Probe("costs", "GET", costs, {"start_time": now_ms - 86_400_000, "end_time": now_ms}),
        Probe("costs without range", "GET", costs),
        Probe("unknown path", "GET", "/v1/videos/no-such-family"),
    ]


def shape(value: Any, key: str | None = None) -> Any:
    """Keys, JSON types, and the values of status-like fields."""
    if key in LITERAL_KEYS and isinstance(value, (str, int)) and key != "message":
        return value
    if isinstance(value, dict):
        return {k: shape(v, k) for k, v in sorted(value.items())}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    for kind, name in ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string")):
        if isinstance(value, kind):
            return name
    return "null"


def differences(mine: Any, theirs: Any, where: str = "") -> list[str]:
    """Where two shapes differ, as readable lines."""
    if isinstance(mine, dict) and isinstance(theirs, dict):
        found = []
        for key in sorted(set(mine) | set(theirs)):
            path = f"{where}.{key}" if where else key
            if key not in theirs:
                found.append(f"{path}: the mock sends it, the target does not")
            elif key not in mine:
                found.append(f"{path}: the target sends it, the mock does not")
            else:
                found += differences(mine[key], theirs[key], path)
        return found
    if isinstance(mine, list) and isinstance(theirs, list):
        if mine and theirs:
            return differences(mine[0], theirs[0], f"{where}[0]")
        return []
    if mine != theirs:
        return [f"{where or 'body'}: the mock has {mine!r}, the target {theirs!r}"]
    return []


@dataclass
class Seen:
    status: int
    headers: dict[str, str | None]
    body: Any


def _send(session: requests.Session, base: str, creds: Credentials, probe: Probe) -> Seen:
    headers = bearer(sign_token(creds)) if probe.authed else {}
    response = session.request(
        probe.method,
        f"{base}{probe.path}",
        params=probe.params,
        json=probe.body,
        headers=headers,
        timeout=60,
    )
    try:
        body: Any = response.json()
    except ValueError:
        body = {"(not JSON)": response.text[:80]}
    kept = {h: _header_shape(h, response.headers.get(h)) for h in HEADERS}
    return Seen(response.status_code, kept, body)


def _header_shape(name: str, value: str | None) -> str | None:
    if value is None:
        return None
    if name == "Retry-After":
        return "integer" if value.isdigit() else value
    return value.split(";")[0].strip()


def compare(probe: Probe, mine: Seen, theirs: Seen) -> list[str]:
    found = []
    if mine.status != theirs.status:
        found.append(f"HTTP status: the mock {mine.status}, the target {theirs.status}")
    for name in HEADERS:
        if mine.headers[name] != theirs.headers[name]:
            found.append(
                f"{name}: the mock {mine.headers[name]!r}, the target {theirs.headers[name]!r}"
            )
    found += differences(shape(mine.body), shape(theirs.body))
    return [f"{probe.name} ({probe.method} {probe.path}): {line}" for line in found]


def compare_targets(base_url: str, credentials: Credentials, *, max_units: float = 0) -> list[str]:
    """Every difference between the target's answers and a fresh mock's."""
    from kling_testkit.server import InProcessMock

    with requests.Session() as session, InProcessMock() as mock:
        session.trust_env = False
        mine_base = mock.base_url
        mock_creds = Credentials.mock_default({})
        found: list[str] = []
        probes = free_probes()
        paid = max_units >= float(Budget.price("image_generation", _CHEAP)) or _is_mock(
            session, base_url
        )
        if paid:
            probes.append(Probe("create", "POST", families()["image_generation"].path, body=_CHEAP))
        for probe in probes:
            found += compare(
                probe,
                _send(session, mine_base, mock_creds, probe),
                _send(session, base_url, credentials, probe),
            )
        return found


_CHEAP = {"prompt": "a red apple on a white table", "model_name": "kling-v1", "n": 1}


def _is_mock(session: requests.Session, base_url: str) -> bool:
    try:
        data = session.get(f"{base_url}/__mock/health", timeout=10).json()["data"]
    except Exception:
        return False
    return isinstance(data, dict) and data.get("status") == "ok"


def check_recorded(folder: str | Path) -> list[str]:
    """Recorded answers (``{"method", "path", "status", "body"}`` JSON files) against the
    contract the mock follows, and keys the mock never sends."""
    found = []
    for file in sorted(Path(folder).glob("*.json")):
        try:
            record = json.loads(file.read_text(encoding="utf-8"))
            method, path, status, body = (
                record["method"],
                record["path"],
                int(record["status"]),
                record["body"],
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            found.append(f"{file.name}: not a recorded answer ({exc})")
            continue
        for violation in check_body(method, path, status, body):
            found.append(f"{file.name}: {violation}")
        template = operation(method, path)
        if template is not None:
            schema = _response_schema(method, template, status)
            found += [f"{file.name}: {line}" for line in _undeclared(body, schema, "")]
    return found


def _resolve(node: Any) -> Any:
    while isinstance(node, dict) and "$ref" in node:
        target: Any = openapi()
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return node


def _properties(schema: Any) -> dict[str, Any]:
    """Declared properties of a schema, through allOf/oneOf/anyOf."""
    schema = _resolve(schema)
    if not isinstance(schema, dict):
        return {}
    found = dict(schema.get("properties", {}))
    for key in ("allOf", "oneOf", "anyOf"):
        for sub in schema.get(key, []):
            for name, value in _properties(sub).items():
                if not _resolve(found.get(name)):  # an empty schema says nothing: take this one
                    found[name] = value
    return found


def _items(schema: Any) -> Any:
    schema = _resolve(schema)
    if not isinstance(schema, dict):
        return None
    if "items" in schema:
        return schema["items"]
    for key in ("allOf", "oneOf", "anyOf"):
        for sub in schema.get(key, []):
            found = _items(sub)
            if found is not None:
                return found
    return None


def _undeclared(value: Any, schema: Any, where: str) -> list[str]:
    if isinstance(value, dict):
        props = _properties(schema)
        found = []
        for key, item in value.items():
            path = f"{where}.{key}" if where else key
            if props and key not in props:
                found.append(f"{path}: the real API sends it; the mock never does")
            elif key in props:
                found += _undeclared(item, props[key], path)
        return found
    if isinstance(value, list) and value:
        inner = _items(schema)
        return _undeclared(value[0], inner, f"{where}[0]") if inner is not None else []
    return []


def _response_schema(method: str, template: str, status: int) -> Any:
    responses = openapi()["paths"][template][method.lower()]["responses"]
    key = str(status) if str(status) in responses else "default"
    return responses[key]["content"]["application/json"]["schema"]


def run_drift(base_url: str, max_units: float, recorded: str | None) -> int:
    creds = Credentials.from_env() or Credentials.mock_default({})
    found = compare_targets(base_url.rstrip("/"), creds, max_units=max_units)
    if recorded:
        found += check_recorded(recorded)
    if not found:
        print(f"drift: none; {base_url} answered every probe in the mock's shapes")
        return 0
    print(f"drift: {len(found)} difference(s) between the mock and {base_url}:")
    for line in found:
        print(f"  {line}")
    return 1
