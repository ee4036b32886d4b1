"""The 2026 design on the mock: the model in the path, an API key only, ``GET /tasks`` and the
``POST /tasks`` cursor list, the new task shape, ``contents`` rules, prices and callbacks.

The behaviour suites every family shares (timeline, media, limits, faults) run over these
families in ``test_families.py``; this module pins what belongs to the design itself.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kling_testkit.auth import bearer, sign_token
from kling_testkit.credentials import MOCK_API_KEY
from kling_testkit.spec import ContractViolation, families, schema, validate
from kling_testkit.spec.contents import effective_params
from kling_testkit.spec.document import DESIGN_2026, designs
from kling_testkit.spec.statuses import STATUSES_2026
from kling_testkit.webhooks import verify_webhook
from mock_server import Backend, queries
from mock_server.media import mp4_duration_seconds
from tests.conftest import CREDS, KEY_OF, TWO_ACCOUNTS, Receiver, wait_callbacks, with_config

KEY = {"Authorization": f"Bearer {MOCK_API_KEY}"}
LATE = 3600.0  # past the end of any task on the default timings
IMAGE = "https://example.com/frame.png"
VIDEO = "https://example.com/motion.mp4"
T2V = "/text-to-video/kling-3.0"
SECRET = "whsec_" + "a2xpbmctdGVzdGtpdC1kZXNpZ24tMjAyNi1zZWNyZXQ="


def prompt(text: str = "a lighthouse in a storm") -> dict[str, str]:
    return {"type": "prompt", "text": text}


def minimal(family: str) -> dict[str, Any]:
    """The smallest valid body of a 2026 family, by its kind."""
    kind = family.split("/")[0]
    if kind == "text-to-video":
        return {"contents": [prompt()]}
    if kind == "image-to-video":
        return {"contents": [{"type": "first_frame", "url": IMAGE}]}
    if kind == "omni-video":
        return {"contents": [prompt()], "settings": {"aspect_ratio": "9:16"}}
    return {
        "contents": [{"type": "image", "url": IMAGE}, {"type": "video", "url": VIDEO}],
        "settings": {"character_orientation": "image"},
    }


def made(client: FlaskClient, path: str = T2V, body: Any = None, **options: Any) -> dict[str, Any]:
    sent = dict(body or {"contents": [prompt()]})
    if options:
        sent["options"] = options
    response = client.post(path, json=sent, headers=KEY)
    assert response.status_code == 200, response.json
    data: dict[str, Any] = response.json["data"]  # type: ignore[index]
    return data


def refused(response: Any, status: int, code: int, message: str) -> None:
    assert response.status_code == status, response.json
    assert response.json["code"] == code, response.json
    assert message in response.json["message"], response.json
    assert "data" not in response.json


def advance(client: FlaskClient, seconds: float) -> None:
    assert client.post("/__mock/clock/advance", json={"seconds": seconds}).status_code == 200


def tasks(client: FlaskClient, query: str) -> list[dict[str, Any]]:
    response = client.get(f"/tasks?{query}", headers=KEY)
    assert response.status_code == 200, response.json
    found: list[dict[str, Any]] = response.json["data"]  # type: ignore[index]
    for task in found:
        validate("TaskV2", task)
    return found


def listed(client: FlaskClient, body: Any = None) -> dict[str, Any]:
    response = client.post("/tasks", json=body, headers=KEY) if body is not None else None
    response = response or client.post("/tasks", headers=KEY)
    assert response.status_code == 200, response.json
    data: dict[str, Any] = response.json["data"]  # type: ignore[index]
    validate("TaskPage", data)
    return data


# -- creating ---------------------------------------------------------------------------------


@pytest.mark.parametrize("family", sorted(designs(DESIGN_2026)))
def test_every_model_path_creates_a_task_in_the_new_shape(client: FlaskClient, family: str) -> None:
    data = made(client, families()[family].path, minimal(family), external_task_id=family)
    validate("TaskCreatedV2", data)
    assert data["status"] == "submitted"
    assert data["external_id"] == family
    assert data["create_time"] == data["update_time"]
    assert [t["id"] for t in tasks(client, f"task_ids={data['id']}")] == [data["id"]]


def test_the_omni_models_legacy_name_in_the_path_is_the_same_model(client: FlaskClient) -> None:
    data = made(client, "/omni-video/kling-v3-omni", minimal("omni-video/kling-3.0-omni"))
    assert tasks(client, f"task_ids={data['id']}")[0]["id"] == data["id"]


def test_an_unknown_model_in_the_path_is_no_endpoint(client: FlaskClient) -> None:
    response = client.post("/text-to-video/kling-9.9", json={"contents": [prompt()]}, headers=KEY)
    refused(response, 404, 1203, "")


def test_a_legacy_body_on_a_new_path_is_told_contents_cannot_be_empty(
    client: FlaskClient,
) -> None:
    body = {"prompt": "a cat", "model_name": "kling-v1", "duration": "5"}
    refused(client.post(T2V, json=body, headers=KEY), 400, 1201, "contents cannot be empty")
    empty = {"contents": []}
    refused(client.post(T2V, json=empty, headers=KEY), 400, 1201, "contents cannot be empty")


def test_an_ak_sk_token_is_refused_on_the_new_design_and_accepted_on_v1(
    client: FlaskClient,
) -> None:
    token = bearer(sign_token(CREDS))
    for response in (
        client.post(T2V, json={"contents": [prompt()]}, headers=token),
        client.get("/tasks?task_ids=1", headers=token),
        client.post("/tasks", json={}, headers=token),
    ):
        refused(response, 401, 1002, "takes an API key")
    assert (
        client.post("/v1/videos/text2video", json={"prompt": "x"}, headers=token).status_code == 200
    )
    assert (
        client.post("/v1/videos/text2video", json={"prompt": "x"}, headers=KEY).status_code == 200
    )
    refused(client.get("/tasks?task_ids=1"), 401, 1001, "Authorization is empty")
    wrong = {"Authorization": "Bearer api-key-kling-not-a-key-of-this-mock-000000000000000"}
    refused(client.get("/tasks?task_ids=1", headers=wrong), 401, 1002, "api key not found")


@pytest.mark.parametrize(
    ("family", "body", "message"),
    [
        (
            "image-to-video/kling-2.6",
            {
                "contents": [
                    {"type": "first_frame", "url": IMAGE},
                    {"type": "voice", "voice_id": "v1"},
                ],
                "settings": {"resolution": "720p"},
            },
            "settings.resolution must be '1080p' with voice; got '720p'",
        ),
        (
            "image-to-video/kling-2.6",
            {
                "contents": [
                    {"type": "first_frame", "url": IMAGE},
                    {"type": "voice", "voice_id": "v1"},
                ],
                "settings": {"audio": "off"},
            },
            "settings.audio must be 'native' with voice; got 'off'",
        ),
        (
            "omni-video/kling-3.0-omni",
            {"contents": [prompt()]},
            "settings.aspect_ratio is required without first_frame, feature_video or base_video",
        ),
        (
            "omni-video/kling-3.0-omni",
            {
                "contents": [
                    prompt(),
                    {"type": "base_video", "url": VIDEO},
                    {"type": "first_frame", "url": IMAGE},
                ]
            },
            "contents cannot have first_frame with base_video",
        ),
        (
            "omni-video/kling-3.0-omni",
            {
                "contents": [
                    prompt(),
                    {"type": "feature_video", "url": VIDEO},
                    *[{"type": "refer_image", "url": IMAGE}] * 5,
                ]
            },
            "at most 4 refer_image or element items together with feature_video or base_video",
        ),
        (
            "omni-video/kling-o1",
            {
                "contents": [prompt(), {"type": "first_frame", "url": IMAGE}],
                "settings": {"duration": 7},
            },
            "settings.duration must be 5 or 10 with first_frame without last_frame",
        ),
        (
            "text-to-video/kling-3.0",
            {"contents": [prompt(), prompt()]},
            "contents must have exactly 1 prompt item(s) for kling-3.0; got 2",
        ),
        (
            "image-to-video/kling-3.0",
            {
                "contents": [
                    {"type": "first_frame", "url": IMAGE, "id": "@image_1"},
                    {"type": "last_frame", "url": IMAGE, "id": "@image_1"},
                ]
            },
            "contents[1].id '@image_1' is already used by another item of this task",
        ),
        (
            "motion-control/kling-3.0",
            {
                "contents": [
                    {"type": "image", "url": IMAGE},
                    {"type": "video", "url": VIDEO},
                    {"type": "element", "element_id": "e1"},
                ],
                "settings": {"character_orientation": "image"},
            },
            "settings.character_orientation must be 'video' with element; got 'image'",
        ),
        (
            "motion-control/kling-2.6",
            {"contents": [{"type": "image", "url": IMAGE}, {"type": "video", "url": VIDEO}]},
            "settings cannot be empty",
        ),
        (
            "text-to-video/kling-2.6",
            {"contents": [prompt()], "settings": {"duration": "5"}},
            "settings.duration must be of type integer",
        ),
    ],
)
def test_contents_rules_refuse_what_the_model_cannot_take(
    client: FlaskClient, family: str, body: dict[str, Any], message: str
) -> None:
    response = client.post(families()[family].path, json=body, headers=KEY)
    refused(response, 400, 1201, message)
    assert listed(client) == {"count": 0, "has_more": False}  # nothing was made


def test_a_rule_picks_the_allowed_value_of_a_setting_left_out(
    client: FlaskClient, backend: Backend
) -> None:
    body = {"contents": [{"type": "first_frame", "url": IMAGE}, {"type": "voice", "voice_id": "v"}]}
    data = made(client, "/image-to-video/kling-2.6", body)
    task = backend.find_task(data["id"])
    assert task is not None
    assert (task.params["audio"], task.params["resolution"]) == ("native", "1080p")


# -- querying ---------------------------------------------------------------------------------


def test_get_tasks_answers_the_ids_asked_in_order_and_leaves_out_unknown_ones(
    client: FlaskClient,
) -> None:
    first, second = made(client, external_task_id="a"), made(client, external_task_id="b")
    both = tasks(client, f"task_ids={second['id']},999999999999999999,{first['id']},{second['id']}")
    assert [t["id"] for t in both] == [second["id"], first["id"]]
    assert [t["id"] for t in tasks(client, "external_task_ids=b,nope,a")] == [
        second["id"],
        first["id"],
    ]
    assert tasks(client, "external_task_ids=unknown") == []


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("", "task_ids or external_task_ids is required"),
        ("ids=1", "task_ids or external_task_ids is required"),
        ("task_ids=1&external_task_ids=2", "cannot be used together"),
        ("task_ids=", "query parameter task_ids must not be empty"),
        ("task_ids=1,,2", "must be a comma-separated list of ids"),
        ("task_ids=" + ",".join(str(n) for n in range(101)), "at most 100 ids per query; got 101"),
        # Bounded in characters too: a longer query string, percent-encoded, reached a
        # server's request-line limit (an HTML 414) before the mock could answer.
        ("task_ids=" + "1" * 4097, "task_ids must be at most 4096 characters; got 4097"),
    ],
)
def test_get_tasks_refuses_a_query_without_one_list_of_ids(
    client: FlaskClient, query: str, message: str
) -> None:
    refused(client.get(f"/tasks?{query}", headers=KEY), 400, 1201, message)


def test_the_designs_do_not_see_each_others_tasks(client: FlaskClient) -> None:
    new = made(client, external_task_id="new")
    legacy = client.post(
        "/v1/videos/text2video", json={"prompt": "x", "external_task_id": "old"}, headers=KEY
    )
    old = legacy.json["data"]["task_id"]  # type: ignore[index]
    assert tasks(client, f"task_ids={old}") == []
    assert tasks(client, "external_task_ids=old") == []
    refused(client.get(f"/v1/videos/text2video/{new['id']}", headers=KEY), 404, 1203, new["id"])
    refused(client.get("/v1/videos/text2video/new", headers=KEY), 404, 1203, "new")
    listing = client.get("/v1/videos/text2video", headers=KEY).json["data"]  # type: ignore[index]
    assert [t["task_id"] for t in listing] == [old]
    assert [t["id"] for t in listed(client)["result"]] == [new["id"]]


@with_config(accounts=TWO_ACCOUNTS)
def test_an_account_sees_only_its_own_tasks(client: FlaskClient) -> None:
    a, b = KEY_OF["a"], KEY_OF["b"]
    body = {"contents": [prompt()], "options": {"external_task_id": "mine"}}
    task_id = client.post(T2V, json=body, headers=a).json["data"]["id"]  # type: ignore[index]
    assert client.get(f"/tasks?task_ids={task_id}", headers=b).json["data"] == []  # type: ignore[index]
    assert client.get("/tasks?external_task_ids=mine", headers=b).json["data"] == []  # type: ignore[index]
    assert client.post("/tasks", headers=b).json["data"] == {"count": 0, "has_more": False}  # type: ignore[index]
    # The same external id is free in another account.
    assert client.post(T2V, json=body, headers=b).status_code == 200


@pytest.mark.both_stores
def test_a_task_moves_to_succeeded_with_outputs_billing_and_real_media(
    client: FlaskClient, backend: Backend
) -> None:
    data = made(client, body={"contents": [prompt()], "settings": {"duration": 10}})
    task = backend.find_task(data["id"])
    assert task is not None
    seen = []
    for at in (task.processing_at - 0.001, task.processing_at, task.ends_at - 0.001, task.ends_at):
        advance(client, at - backend.now())
        (found,) = tasks(client, f"task_ids={data['id']}")
        seen.append((found["status"], found["outputs"], found["billing"]))
    assert [s[0] for s in seen] == ["submitted", "processing", "processing", "succeeded"]
    assert all(s[1] == [] and s[2] == [] for s in seen[:3])
    (video,) = seen[3][1]
    assert (video["type"], video["duration"]) == ("video", "10")
    assert seen[3][2] == [
        {"charge_type": "unit", "amount": "6", "package_type": "video"}
    ]  # 0.6 u/s
    path = video["url"].split("localhost", 1)[1]
    media = client.get(path)
    assert media.status_code == 200 and media.mimetype == "video/mp4"
    assert mp4_duration_seconds(media.data) == pytest.approx(10, abs=0.5)
    assert client.get(video["watermark_url"].split("localhost", 1)[1]).status_code == 200


@pytest.mark.parametrize(
    ("family", "body", "amount"),
    [
        (
            "omni-video/kling-3.0-omni",
            minimal("omni-video/kling-3.0-omni"),
            "3",
        ),  # 0.6 x 5, as billed live
        (
            "text-to-video/kling-3.0-turbo",
            {"contents": [prompt()], "settings": {"resolution": "1080p"}},
            "5",
        ),
        (
            "image-to-video/kling-2.6",
            {
                "contents": [
                    {"type": "first_frame", "url": IMAGE},
                    {"type": "voice", "voice_id": "v"},
                ],
                "settings": {"duration": 10},
            },
            "12",  # 1.2 u/s with a voice, 1080p
        ),
        (
            "omni-video/kling-3.0-omni",
            {
                "contents": [prompt(), {"type": "feature_video", "url": VIDEO}],
                "settings": {"resolution": "1080p"},
            },
            "6",  # 1.2 u/s with a video input
        ),
        ("motion-control/kling-2.6", minimal("motion-control/kling-2.6"), "2.5"),  # 0.5 x 5 s
    ],
)
def test_billing_is_the_per_second_price_of_the_output(
    client: FlaskClient, backend: Backend, family: str, body: dict[str, Any], amount: str
) -> None:
    data = made(client, families()[family].path, body)
    advance(client, LATE)
    (found,) = tasks(client, f"task_ids={data['id']}")
    assert found["billing"][0]["amount"] == amount
    (account,) = backend.accounts_view()
    video = [p for p in account["packs"] if p["kind"] == "video"]
    spent = sum(p["total_quantity"] - p["remaining_quantity"] for p in video)
    assert spent == pytest.approx(float(amount))


def test_a_failed_task_says_why_and_is_not_billed(client: FlaskClient) -> None:
    response = client.post(
        T2V, json={"contents": [prompt()]}, headers={**KEY, "X-Mock-Scenario": "fail"}
    )
    task_id = response.json["data"]["id"]  # type: ignore[index]
    advance(client, LATE)
    (found,) = tasks(client, f"task_ids={task_id}")
    assert found["status"] == "failed"
    assert found["message"]
    assert (found["outputs"], found["billing"]) == ([], [])


# -- the cursor list ---------------------------------------------------------------------------


def test_an_empty_list_has_no_result_and_no_cursor(client: FlaskClient) -> None:
    assert listed(client) == {"count": 0, "has_more": False}
    assert listed(client, {}) == {"count": 0, "has_more": False}


@pytest.mark.both_stores
def test_the_cursor_walks_every_task_newest_first_once(client: FlaskClient) -> None:
    made_ids = []
    for _ in range(7):
        made_ids.append(made(client)["id"])
        advance(client, 1)
    pages, body = [], {"limit": 3}
    while True:
        page = listed(client, body)
        pages.append([t["id"] for t in page["result"]])
        assert page["count"] == len(page["result"])
        if not page["has_more"]:
            assert "next_cursor" not in page
            break
        body = {"cursor": page["next_cursor"], "limit": 3}
        made(client)  # a task made meanwhile is newer than the walk: not on a later page
    assert pages == [made_ids[::-1][:3], made_ids[::-1][3:6], made_ids[::-1][6:]]


def test_the_list_filters_by_status_product_type_and_time(
    client: FlaskClient, backend: Backend
) -> None:
    early = made(client)
    advance(client, LATE)
    late = made(client)
    by_status = listed(client, {"filters": [{"key": "status", "values": ["succeeded"]}]})
    assert [t["id"] for t in by_status["result"]] == [early["id"]]
    pending = listed(
        client, {"filters": [{"key": "status", "values": ["submitted", "processing"]}]}
    )
    assert [t["id"] for t in pending["result"]] == [late["id"]]
    images = listed(client, {"filters": [{"key": "product_type", "values": ["image"]}]})
    assert images == {"count": 0, "has_more": False}
    start = late["create_time"]
    window = listed(
        client, {"start_time": str(start), "end_time": start + 1}
    )  # a string or a number
    assert [t["id"] for t in window["result"]] == [late["id"]]
    old = listed(client, {"end_time": early["create_time"]})
    assert [t["id"] for t in old["result"]] == [early["id"]]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"start_time": 2000, "end_time": 1000}, "start_time must be before end_time"),
        ({"limit": 501}, "limit must be between 1 and 500"),
        ({"cursor": "not a cursor"}, "cursor is invalid"),
        ({"cursor": "e30"}, "cursor is invalid"),  # {} in base64
        (
            {"filters": [{"key": "status", "values": ["succeed"]}]},
            "filters[0].values[0] must be one of 'submitted', 'processing', 'succeeded', 'failed'",
        ),
        (
            {"filters": [{"key": "product_type", "values": ["audio"]}]},
            "filters[0].values[0] must be one of 'video', 'image', 'try_on'; got 'audio'",
        ),
        ({"filters": [{"key": "model", "values": ["x"]}]}, "filters[0].key must be one of"),
        ({"start_time": "soon"}, "start_time"),
        ({"sort": "asc"}, "unknown field 'sort'"),
        ([1], "must be of type object"),
    ],
)
def test_the_list_refuses_a_bad_body(client: FlaskClient, body: Any, message: str) -> None:
    refused(client.post("/tasks", json=body, headers=KEY), 400, 1201, message)


def test_the_schema_states_the_filter_values_the_list_keeps() -> None:
    """Schemathesis found filter values the schema allowed and the list refused: the schema
    now states them, and they must stay the ones ``mock_server.queries`` keeps."""
    rules = schema("TaskListRequest")["properties"]["filters"]["items"]["allOf"]
    stated = {
        r["if"]["properties"]["key"]["const"]: r["then"]["properties"]["values"]["items"]["enum"]
        for r in rules
    }
    assert stated == {"status": list(STATUSES_2026), "product_type": list(queries.PRODUCT_TYPES)}


def test_a_cursor_from_before_a_reset_has_expired(client: FlaskClient) -> None:
    for _ in range(2):
        made(client)
    cursor = listed(client, {"limit": 1})["next_cursor"]
    assert client.post("/__mock/reset").status_code == 200
    refused(client.post("/tasks", json={"cursor": cursor}, headers=KEY), 400, 1201, "expired")


# -- callbacks ---------------------------------------------------------------------------------


def test_callbacks_carry_the_new_shape_signed_the_standard_webhooks_way(
    make_app: Any, receiver: Receiver
) -> None:
    app = make_app(callbacks={"secret": SECRET, "allowed_hosts": ["127.0.0.1"]}, clock="manual")
    client = app.test_client()
    data = made(client, callback_url=f"{receiver.url}/hook", external_task_id="cb")
    advance(client, LATE)
    wait_callbacks(client)
    assert receiver.wait_for(3)
    bodies = []
    for call in receiver.calls:
        payload = verify_webhook(SECRET, call["headers"], call["body"].decode())
        validate("TaskV2", payload)
        bodies.append(json.loads(call["body"]))
    assert [b["status"] for b in bodies] == ["submitted", "processing", "succeeded"]
    assert {b["id"] for b in bodies} == {data["id"]}
    assert bodies[-1]["outputs"][0]["type"] == "video"
    assert "task_status" not in bodies[-1]


# -- the rules in code and in the schema agree ----------------------------------------------


@st.composite
def loose_bodies(draw: st.DrawFn, family: str) -> dict[str, Any]:
    """Bodies of the family's form that break its contents rules as often as they keep them."""
    request = schema(families()[family].request_schema)
    types = request["properties"]["contents"]["items"]["allOf"][1]["properties"]["type"]["enum"]
    counts = families()[family].contents["counts"]
    items = []
    for kind in types:
        least, most = counts[kind]
        # Mostly within the type's own count, so the other rules get to be tried too.
        number = draw(st.integers(least, most) | st.integers(0, 2))
        for _ in range(number):
            if kind == "prompt":
                items.append(prompt())
            elif kind in ("element", "voice"):
                items.append({"type": kind, f"{kind}_id": "x1"})
            else:
                items.append({"type": kind, "url": VIDEO if "video" in kind else IMAGE})
    body: dict[str, Any] = {"contents": draw(st.permutations(items)) or [prompt()]}
    settings = {}
    for name, node in request["properties"]["settings"]["properties"].items():
        if draw(st.booleans()):
            if node.get("type") == "boolean":
                choices = [True, False]
            else:
                choices = node.get("enum") or [node["minimum"], node["default"], node["maximum"]]
            settings[name] = draw(st.sampled_from(choices))
    if settings or draw(st.booleans()):
        body["settings"] = settings
    return body


@pytest.mark.parametrize("family", sorted(designs(DESIGN_2026)))
def test_the_schema_states_the_same_contents_rules_as_the_code(family: str) -> None:
    seen = {True: 0, False: 0}

    # Deterministic, and no deadline: a busy machine must not fail it for its speed.
    @settings(
        max_examples=200,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(loose_bodies(family))
    def agree(body: dict[str, Any]) -> None:
        name = families()[family].request_schema
        try:
            validate(name, body, form_only=True)
            effective_params(families()[family], body)
            by_code = True
        except ContractViolation:
            by_code = False
        try:
            validate(name, body)  # the whole schema, its allOf of rules included
            by_schema = True
        except ContractViolation:
            by_schema = False
        assert by_code == by_schema, body
        seen[by_code] += 1

    agree()
    assert seen[True] and seen[False], seen  # both kinds of body were tried
