"""Units per task, resource packs and /account/costs, all read off the mock's clock."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from kling_testkit.codes import ErrorCode
from kling_testkit.pricing import units
from kling_testkit.spec import ContractViolation, check_request, families, field, schema, validate
from tests.conftest import CREDS, I2V, IMAGES, PROMPT, T2V, accepted, create, with_config
from tests.families import example

pytestmark = pytest.mark.both_stores  # the shared store suite

IMAGE_URL = "https://example.com/reference.png"
DAY = 86400
T2V_SECONDS = 10 + 120  # default text2video timing (kling-v1 std 5 s): queued + processing
ALL_DONE = 2 * DAY  # long past the end of any task these tests create
BIG_MS = 10**13


def with_packs(*packs: dict[str, Any]) -> pytest.MarkDecorator:
    """One account with the default keys (the ``auth`` header) and exactly these packs."""
    creds = {"access_key": CREDS.access_key, "secret_key": CREDS.secret_key}
    return with_config(accounts=[{"name": "a", **creds, "packs": list(packs)}])


def pack(name: str, kind: str, total: float, **extra: Any) -> dict[str, Any]:
    return {"name": name, "kind": kind, "total": total, **extra}


def no_units(response: Any) -> str:
    """The message of a 429/1102 refusal (asserts both)."""
    assert response.status_code == 429, response.json
    assert response.json["code"] == ErrorCode.RESOURCE_PACK_EXHAUSTED, response.json
    message: str = response.json["message"]
    return message


def advance(client: FlaskClient, seconds: float) -> None:
    assert client.post("/__mock/clock/advance", json={"seconds": seconds}).status_code == 200


def query(client: FlaskClient, auth: dict[str, str], path: str, task_id: str) -> dict[str, Any]:
    response = client.get(f"{path}/{task_id}", headers=auth)
    assert response.status_code == 200, response.json
    data: dict[str, Any] = response.json["data"]  # type: ignore[index]
    return data


def costs(client: FlaskClient, auth: dict[str, str], **extra: Any) -> Any:
    query_string = {"start_time": 0, "end_time": BIG_MS, **extra}
    return client.get("/account/costs", query_string=query_string, headers=auth)


def packs(client: FlaskClient, auth: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The account's packs by name, from GET /account/costs."""
    response = costs(client, auth)
    assert response.status_code == 200, response.json
    infos = response.json["data"]["resource_pack_subscribe_infos"]
    return {p["resource_pack_name"]: p for p in infos}


def remaining(client: FlaskClient, auth: dict[str, str], name: str) -> float:
    value: float = packs(client, auth)[name]["remaining_quantity"]
    return value


# -- pricing -----------------------------------------------------------------------------------

PRICES = [
    pytest.param(T2V, {"model_name": "kling-v1"}, "1", id="v1-std-5s"),
    pytest.param(T2V, {"model_name": "kling-v1", "duration": "10"}, "2", id="v1-std-10s"),
    pytest.param(T2V, {"model_name": "kling-v1", "mode": "pro"}, "3.5", id="v1-pro-5s"),
    pytest.param(
        T2V, {"model_name": "kling-v1", "mode": "pro", "duration": "10"}, "7", id="v1-pro-10s"
    ),
    pytest.param(T2V, {"model_name": "kling-v1-6", "mode": "std"}, "2", id="v1-6-std-5s"),
    pytest.param(T2V, {"model_name": "kling-v2-master", "mode": "std"}, "10", id="v2m-std"),
    pytest.param(T2V, {"model_name": "kling-v2-master", "mode": "pro"}, "10", id="v2m-pro"),
    pytest.param(I2V, {"model_name": "kling-v2-master", "image": IMAGE_URL}, "10", id="i2v-v2m"),
    pytest.param(T2V, {"model_name": "kling-v2-6", "sound": "on"}, "5", id="v2-6-sound"),
    pytest.param(IMAGES, {"model_name": "kling-v1", "n": 3}, "3", id="image-v1-n3"),
    pytest.param(IMAGES, {"model_name": "kling-v2-1", "image": IMAGE_URL}, "8", id="image-ref"),
    pytest.param(
        IMAGES, {"model_name": "kling-v2-1", "image": IMAGE_URL, "n": 2}, "16", id="image-ref-n2"
    ),
]


@pytest.mark.parametrize(("path", "body", "expected"), PRICES)
def test_successful_task_deducts_the_units_of_the_pricing_table(
    client: FlaskClient, auth: dict[str, str], path: str, body: dict[str, Any], expected: str
) -> None:
    task_id = accepted(create(client, auth, path, **body))
    advance(client, ALL_DONE)
    task = query(client, auth, path, task_id)
    assert task["task_status"] == "succeed"
    assert task["final_unit_deduction"] == expected


def enum(family: str, name: str) -> list[Any]:
    """The documented choices of one create field of a family (from the contract)."""
    choices: list[Any] = field(families()[family].request_schema, name)["enum"]
    return choices


def unpriced(family: str, bodies: list[dict[str, Any]]) -> list[str]:
    """The bodies that ``units`` cannot price (or prices at zero), with why."""
    found = []
    for body in bodies:
        try:
            price = units(family, check_request(family, {"prompt": PROMPT, **body}))
        except (KeyError, ContractViolation) as exc:
            found.append(f"{body}: {exc!r}")
            continue
        if not price > 0:
            found.append(f"{body}: {price}")
    return found


# The 2026 families (price rule per_second) have no model_name, mode or sound to walk: their
# per-second prices are checked by tests/test_design_2026.py and tests/test_families.py.
VIDEO_FAMILIES = sorted(name for name, f in families().items() if f.price["rule"] == "video")
IMAGE_FAMILIES = sorted(name for name, f in families().items() if f.price["rule"] == "image")


@pytest.mark.parametrize("family", VIDEO_FAMILIES)
def test_every_video_model_has_a_price_for_every_mode_duration_and_sound(family: str) -> None:
    extra = example(family)
    has_sound = "sound" in schema(families()[family].request_schema)["properties"]
    bodies = [
        {**extra, "model_name": model, "mode": mode, "duration": duration, **sound}
        for model in enum(family, "model_name")
        for mode in enum(family, "mode")
        for duration in enum(family, "duration")
        for sound in ([{"sound": s} for s in enum(family, "sound")] if has_sound else [{}])
    ]
    assert len(bodies) >= 4 * len(enum(family, "model_name")) > 0
    assert unpriced(family, bodies) == []


@pytest.mark.parametrize("family", IMAGE_FAMILIES)
def test_every_image_model_has_a_price_with_and_without_an_input_image(family: str) -> None:
    bodies = [
        {"model_name": model, **extra}
        for model in enum(family, "model_name")
        for extra in (example(family), {**example(family), "image": IMAGE_URL})
    ]
    assert bodies
    assert unpriced(family, bodies) == []


# -- final_unit_deduction ----------------------------------------------------------------------


def test_final_unit_deduction_appears_only_once_the_task_has_succeeded(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    task_id = accepted(create(client, auth, model_name="kling-v1", mode="pro"))
    ends = 10 + 120 * 1.5  # pro mode runs 1.5x longer
    seen = []
    for step in (0, 10, ends - 10 - 0.001):
        advance(client, step)
        task = query(client, auth, T2V, task_id)
        seen.append((task["task_status"], "final_unit_deduction" in task))
    assert seen == [("submitted", False), ("processing", False), ("processing", False)]
    advance(client, 0.001)
    task = query(client, auth, T2V, task_id)
    assert (task["task_status"], task["final_unit_deduction"]) == ("succeed", "3.5")


def test_failed_task_shows_a_deduction_of_zero(client: FlaskClient, auth: dict[str, str]) -> None:
    task_id = accepted(create(client, auth, scenario="fail", mode="pro"))
    advance(client, T2V_SECONDS - 1)
    assert "final_unit_deduction" not in query(client, auth, T2V, task_id)
    advance(client, ALL_DONE)
    task = query(client, auth, T2V, task_id)
    assert (task["task_status"], task["final_unit_deduction"]) == ("failed", "0")


# -- deduction and reservation -----------------------------------------------------------------


@with_packs(pack("v", "video", 3))
def test_pack_is_charged_only_when_the_task_succeeds(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    accepted(create(client, auth))
    seen = []
    for step in (0, 10, T2V_SECONDS - 10 - 0.001, 0.001):
        advance(client, step)
        seen.append(remaining(client, auth, "v"))
    assert seen == [3, 3, 3, 2]


@with_packs(pack("v", "video", 3))
def test_failed_task_never_reduces_the_pack(client: FlaskClient, auth: dict[str, str]) -> None:
    accepted(create(client, auth, scenario="fail"))
    for step in (0, T2V_SECONDS, ALL_DONE):
        advance(client, step)
        assert remaining(client, auth, "v") == 3


@with_packs(pack("v", "video", 3))
def test_running_tasks_reserve_their_units_so_a_pack_cannot_be_overspent(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    ids = [accepted(create(client, auth)) for _ in range(3)]
    advance(client, 60)
    assert {query(client, auth, T2V, i)["task_status"] for i in ids} == {"processing"}
    message = no_units(create(client, auth))
    assert message.startswith("Account balance not enough")
    assert remaining(client, auth, "v") == 3  # reserved, not yet deducted


@with_packs(pack("v", "video", 3))
def test_units_reserved_by_a_failing_task_come_back_when_it_ends(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    accepted(create(client, auth, scenario="fail"))  # t = 0, ends failed at t = 130
    advance(client, 60)
    accepted(create(client, auth))  # t = 60, ends at t = 190
    accepted(create(client, auth))
    no_units(create(client, auth))
    advance(client, T2V_SECONDS - 60 - 0.001)
    no_units(create(client, auth))
    advance(client, 0.001)  # t = 130: the failed task has ended, its unit is free again
    accepted(create(client, auth))
    no_units(create(client, auth))


@with_packs(pack("v", "video", 100), pack("i", "image", 50))
def test_balance_after_a_mixed_run_is_total_minus_the_successful_tasks(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    runs: list[tuple[str, str | None, dict[str, Any]]] = [
        (T2V, None, {"model_name": "kling-v1"}),  # 1
        (T2V, None, {"model_name": "kling-v1", "mode": "pro", "duration": "10"}),  # 7
        (T2V, "fail", {"model_name": "kling-v2-master", "mode": "pro"}),  # 0
        (I2V, None, {"model_name": "kling-v1-6", "image": IMAGE_URL}),  # 2
        (T2V, None, {"model_name": "kling-v2-6", "sound": "on"}),  # 5
        (T2V, "fail", {"model_name": "kling-v1", "mode": "pro"}),  # 0
        (T2V, None, {"model_name": "kling-v2-master", "mode": "std"}),  # 10
        (IMAGES, None, {"model_name": "kling-v1", "n": 3}),  # 3
        (IMAGES, "fail", {"model_name": "kling-v1", "n": 2}),  # 0
        (IMAGES, None, {"model_name": "kling-v2-1", "image": IMAGE_URL, "n": 2}),  # 16
    ]
    for path, scenario, body in runs:
        accepted(create(client, auth, path, scenario, **body))
        advance(client, 7)
    advance(client, ALL_DONE)
    assert remaining(client, auth, "v") == 100 - (1 + 7 + 2 + 5 + 10)
    assert remaining(client, auth, "i") == 50 - (3 + 16)


# -- pack lifetimes ----------------------------------------------------------------------------


@with_packs(pack("later", "video", 5, starts_after_s=100))
def test_pack_that_starts_later_cannot_be_used_before_it_starts(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    assert packs(client, auth)["later"]["status"] == "toBeOnline"
    response = create(client, auth)
    no_units(response)
    assert response.headers["Retry-After"] == "100"
    advance(client, 40)
    assert create(client, auth).headers["Retry-After"] == "60"
    advance(client, 60)
    assert packs(client, auth)["later"]["status"] == "online"
    accepted(create(client, auth))


@with_packs(pack("short", "video", 5, lifetime_s=1000))
def test_pack_past_its_lifetime_is_expired_and_unusable(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    assert packs(client, auth)["short"]["status"] == "online"
    advance(client, 1000)
    assert packs(client, auth)["short"]["status"] == "expired"
    no_units(create(client, auth))


@with_packs(pack("small", "video", 2))
def test_used_up_pack_shows_run_out_and_refuses_more(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    accepted(create(client, auth))
    accepted(create(client, auth))
    advance(client, T2V_SECONDS)
    info = packs(client, auth)["small"]
    assert (info["status"], info["remaining_quantity"]) == ("runOut", 0)
    no_units(create(client, auth))


@with_packs(
    pack("a-long", "video", 5, lifetime_s=400 * DAY),
    pack("z-short", "video", 1, lifetime_s=30 * DAY),
)
def test_the_pack_expiring_first_is_charged_first(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    accepted(create(client, auth))
    advance(client, T2V_SECONDS)
    assert (remaining(client, auth, "z-short"), remaining(client, auth, "a-long")) == (0, 5)
    accepted(create(client, auth))  # the short pack is used up: the long one pays
    advance(client, T2V_SECONDS)
    assert (remaining(client, auth, "z-short"), remaining(client, auth, "a-long")) == (0, 4)


# -- /account/costs ----------------------------------------------------------------------------


def test_account_costs_requires_auth(client: FlaskClient) -> None:
    response = client.get("/account/costs", query_string={"start_time": 0, "end_time": 1})
    assert response.status_code == 401
    assert response.json["code"] == ErrorCode.AUTH_EMPTY  # type: ignore[index]


@pytest.mark.parametrize(
    ("query_string", "named"),
    [
        ({"end_time": 1}, "start_time"),
        ({"start_time": 0}, "end_time"),
        ({"start_time": "soon", "end_time": 1}, "start_time"),
        ({"start_time": 0, "end_time": "1.5"}, "end_time"),
        ({"start_time": -1, "end_time": 1}, "start_time"),
        ({"start_time": 0, "end_time": -5}, "end_time"),
    ],
)
def test_account_costs_refuses_bad_time_parameters_naming_them(
    client: FlaskClient, auth: dict[str, str], query_string: dict[str, Any], named: str
) -> None:
    response = client.get("/account/costs", query_string=query_string, headers=auth)
    assert response.status_code == 400, response.json
    assert response.json["code"] == ErrorCode.INVALID_VALUE  # type: ignore[index]
    assert named in response.json["message"]  # type: ignore[index]


def test_account_costs_answers_a_window_that_ends_before_it_starts(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    # The contract cannot order two query parameters, so the mock does not either: the window
    # filters nothing, reversed or not (DECISIONS.md).
    reversed_window = costs(client, auth, start_time=2000, end_time=1000)
    assert reversed_window.status_code == 200, reversed_window.json
    assert reversed_window.json["data"] == costs(client, auth).json["data"]  # type: ignore[index]


@with_packs(pack("v", "video", 3), pack("i", "image", 20))
def test_account_costs_is_double_wrapped_and_matches_the_contract(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    response = costs(client, auth)
    assert response.status_code == 200, response.json
    data = response.json["data"]
    validate("AccountCosts", data)
    assert (data["code"], data["msg"]) == (0, "success")
    infos = {p["resource_pack_name"]: p for p in data["resource_pack_subscribe_infos"]}
    assert set(infos) == {"v", "i"}
    assert (infos["v"]["total_quantity"], infos["i"]["remaining_quantity"]) == (3, 20)


@with_packs(pack("v", "video", 3), pack("i", "image", 20))
def test_account_costs_filters_by_resource_pack_name(
    client: FlaskClient, auth: dict[str, str]
) -> None:
    response = costs(client, auth, resource_pack_name="i")
    assert response.status_code == 200, response.json
    infos = response.json["data"]["resource_pack_subscribe_infos"]
    assert [p["resource_pack_name"] for p in infos] == ["i"]


@with_packs()
def test_account_without_packs_gets_no_pack_list(client: FlaskClient, auth: dict[str, str]) -> None:
    response = costs(client, auth)
    assert response.status_code == 200, response.json
    assert response.json["data"] == {"code": 0, "msg": "success"}
    validate("AccountCosts", response.json["data"])
