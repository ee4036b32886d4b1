"""Free checks of the legacy design: nothing here creates a task, so they run against any target.

Auth codes, unknown ids and paths, paging, ``/account/costs``, the envelope and content type.
Every answer is also checked against the document by the ``api`` fixture. The 2026 design's
checks are in ``test_design_2026.py``.
"""

from __future__ import annotations

import time

import jwt
import pytest

from contract_tests.conftest import Api, expect_error
from kling_testkit.codes import ErrorCode
from kling_testkit.spec import families, operation_path, parameter
from kling_testkit.spec.document import LEGACY, designs

T2V = families()["text2video"].path
LIST_PATHS = sorted(f.path for f in designs(LEGACY).values())  # the 2026 design has /tasks
COSTS = operation_path("account_costs")


def _pair(api: Api) -> None:
    """A check that signs its own token needs the access key and secret key."""
    api.token()  # skips, saying why, when the target was given none


def _token(api: Api, **claims: object) -> dict[str, str]:
    _pair(api)
    now = int(time.time())
    payload = {"iss": api.credentials.access_key, "exp": now + 1800, "nbf": now - 5, **claims}
    token = jwt.encode(payload, api.credentials.secret_key, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


# ------------------------------------------------------------------ auth


def test_no_authorization_is_1001(api: Api) -> None:
    expect_error(api.get(T2V, authed=False), 401, ErrorCode.AUTH_EMPTY)


@pytest.mark.parametrize(
    "header",
    ["Basic abc", "Bearer", "Bearer not.a.jwt", "Bearer unknown-api-key-0123456789abcdef"],
    ids=["basic", "empty-bearer", "malformed-jwt", "unknown-key"],
)
def test_a_malformed_or_unknown_key_is_1002(api: Api, header: str) -> None:
    answer = api.get(T2V, authed=False, headers={"Authorization": header})
    expect_error(answer, 401, ErrorCode.AUTH_INVALID)


def test_a_wrong_secret_is_1002(api: Api) -> None:
    _pair(api)
    now = int(time.time())
    token = jwt.encode(
        {"iss": api.credentials.access_key, "exp": now + 1800, "nbf": now - 5},
        "a-wrong-secret-key-that-is-long-enough-0123456789",
        algorithm="HS256",
    )
    answer = api.get(T2V, authed=False, headers={"Authorization": f"Bearer {token}"})
    expect_error(answer, 401, ErrorCode.AUTH_INVALID)


def test_an_unknown_access_key_is_1002(api: Api) -> None:
    _pair(api)
    now = int(time.time())
    token = jwt.encode(
        {"iss": "no-such-access-key", "exp": now + 1800, "nbf": now - 5},
        api.credentials.secret_key,
        algorithm="HS256",
    )
    answer = api.get(T2V, authed=False, headers={"Authorization": f"Bearer {token}"})
    expect_error(answer, 401, ErrorCode.AUTH_INVALID)


def test_a_token_not_yet_valid_is_1003(api: Api) -> None:
    answer = api.get(T2V, authed=False, headers=_token(api, nbf=int(time.time()) + 3600))
    expect_error(answer, 401, ErrorCode.AUTH_NOT_YET_VALID)


@pytest.mark.kling_audit(allow=["token_misuse"])  # the expired token is the point of the check
def test_an_expired_token_is_1004(api: Api) -> None:
    now = int(time.time())
    answer = api.get(T2V, authed=False, headers=_token(api, exp=now - 60, nbf=now - 3600))
    expect_error(answer, 401, ErrorCode.AUTH_EXPIRED)


# ------------------------------------------------------------------ unknown ids and paths


@pytest.mark.parametrize("path", LIST_PATHS)
def test_an_unknown_task_id_is_1203(api: Api, path: str) -> None:
    expect_error(api.get(f"{path}/000000000000000001"), 404, ErrorCode.RESOURCE_NOT_FOUND)


@pytest.mark.parametrize("path", LIST_PATHS)
def test_an_unknown_external_task_id_is_1203(api: Api, path: str) -> None:
    answer = api.get(path, params={"external_task_id": "contract-never-used-0"})
    expect_error(answer, 404, ErrorCode.RESOURCE_NOT_FOUND)


def test_an_unknown_path_is_an_error_envelope(api: Api) -> None:
    answer = api.get("/v1/videos/no-such-family")
    assert answer.status == 404 and answer.body["code"] != 0


# ------------------------------------------------------------------ lists and paging


@pytest.mark.parametrize("path", LIST_PATHS)
def test_a_list_is_newest_first(api: Api, path: str) -> None:
    tasks = api.get(path, params={"pageNum": 1, "pageSize": 30}).data
    assert isinstance(tasks, list)
    created = [t["created_at"] for t in tasks]
    assert created == sorted(created, reverse=True), f"{path}: not newest first: {created[:10]}"


@pytest.mark.parametrize("name", ["pageNum", "pageSize"])
@pytest.mark.parametrize("bound", ["minimum", "maximum"])
def test_paging_limits_are_1201(api: Api, name: str, bound: str) -> None:
    schema = parameter(name)["schema"]
    value = schema[bound] - 1 if bound == "minimum" else schema[bound] + 1
    answer = api.get(T2V, params={name: value})
    expect_error(answer, 400, ErrorCode.INVALID_VALUE)
    assert name in answer.body["message"], f"the message does not name {name}: {answer.body}"


def test_a_page_past_the_end_is_empty(api: Api) -> None:
    top = parameter("pageNum")["schema"]["maximum"]
    assert api.get(T2V, params={"pageNum": top, "pageSize": 1}).data == []


# ------------------------------------------------------------------ account


def test_account_costs_has_the_documented_shape(api: Api) -> None:
    now_ms = int(time.time() * 1000)
    data = api.get(COSTS, params={"start_time": now_ms - 86_400_000, "end_time": now_ms}).data
    assert data["code"] == 0
    for pack in data.get("resource_pack_subscribe_infos", []):
        assert pack["remaining_quantity"] <= pack["total_quantity"] + 1e-9


def test_account_costs_needs_its_time_range(api: Api) -> None:
    expect_error(api.get(COSTS), 400, ErrorCode.INVALID_VALUE)
