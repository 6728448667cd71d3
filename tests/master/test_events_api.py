"""``GET /api/v3/events``: the event log in pages with an opaque cursor, filtered by job or
task; hostile queries answer 400/404 in the one error shape, never 500."""
from __future__ import annotations

import asyncio
import base64
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient

from tests.master.conftest import POSTGRES_URL, Clock, _postgres_store, make_master
from titus.master.config import MasterSettings
from titus.master.app import create_app
from titus.master.event_log import MAX_LIMIT, decode_cursor, encode_cursor

JOB = {"applicationName": "ev", "owner": {"teamEmail": "me@example.com"},
       "container": {"image": {"name": "busybox", "tag": "latest"},
                     "resources": {"cpu": 1, "memoryMB": 128}},
       "batch": {"size": 2}}


@pytest.fixture
def api(store, settings, clock):
    master = make_master(settings, clock, store)
    app = create_app(master=master, start_loop=False)
    with TestClient(app) as client:
        client.master = master
        yield client


@pytest.fixture(scope="module", params=["sqlite",
                                        pytest.param("postgres", marks=pytest.mark.postgres)])
def hostile_api(request, tmp_path_factory):
    """One master per store for the hostile queries (each leaves the store as it was)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('events') / 'm.db'}"
    else:
        _postgres_store().close()
        url = POSTGRES_URL
    master = make_master(MasterSettings(store_url=url), Clock())
    with TestClient(create_app(master=master, start_loop=False)) as client:
        client.master = master
        submit(client)
        yield client
    master.store.close()


def raw_get(client, path: str, query: bytes):
    """A GET sent straight to the app: an HTTP client refuses URLs this long (10 MB)."""
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": query, "root_path": "", "headers": [(b"host", b"testserver")],
             "client": ("127.0.0.1", 1234), "server": ("testserver", 80)}
    sent, answer = [], {"status": 0, "body": b"", "headers": {}}

    async def receive():
        if sent:
            await asyncio.sleep(3600)
        sent.append(True)
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = {k.decode().lower(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    client.portal.call(client.app, scope, receive, send)
    return answer


def submit(api) -> str:
    r = api.post("/api/v3/jobs", json=JOB)
    assert r.status_code in (200, 201, 202), r.text
    return r.json()["id"]


def kinds(page) -> list[str]:
    return [e["kind"] for e in page["items"]]


def read_all(api, limit, **params) -> list[dict]:
    items, cursor = [], None
    while True:
        r = api.get("/api/v3/events", params={**params, "limit": limit,
                                              **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        body = r.json()
        items += body["items"]
        cursor = body["pagination"]["cursor"]
        if not body["pagination"]["hasMore"]:
            return items


def test_pages_walk_the_whole_log_in_commit_order(api):
    jobs = [submit(api) for _ in range(5)]
    everything = read_all(api, 100)
    assert kinds({"items": everything}) == ["jobAccepted"] * 5
    assert [e["jobId"] for e in everything] == jobs
    paged = read_all(api, 2)
    assert paged == everything
    first = api.get("/api/v3/events", params={"limit": 2}).json()
    assert first["pagination"]["hasMore"] and len(first["items"]) == 2
    e = everything[0]
    assert set(e) >= {"cursor", "timestamp", "kind", "entityId", "data"}
    assert e["timestamp"].isdigit() and e["data"] == {"applicationName": "ev"}


def test_polling_with_the_cursor_sees_each_later_entry_once(api):
    submit(api)
    page = api.get("/api/v3/events").json()
    cursor = page["pagination"]["cursor"]
    empty = api.get("/api/v3/events", params={"cursor": cursor}).json()
    assert empty["items"] == [] and empty["pagination"]["cursor"] == cursor
    seen = []
    for _ in range(3):  # appends between reads: nothing skipped, nothing twice
        job = submit(api)
        api.delete(f"/api/v3/jobs/{job}")
        body = api.get("/api/v3/events", params={"cursor": cursor, "limit": 1}).json()
        seen += body["items"]
        cursor = body["pagination"]["cursor"]
    seen += read_all(api, 1000, cursor=cursor)
    # a job killed before any task was placed finishes at once
    assert kinds({"items": seen}) == ["jobAccepted", "jobKillInitiated", "jobFinished"] * 3
    assert len({e["cursor"] for e in seen}) == 9


def test_the_empty_log_gives_a_cursor_to_start_polling_from(api):
    body = api.get("/api/v3/events").json()
    assert body["items"] == [] and not body["pagination"]["hasMore"]
    submit(api)
    later = api.get("/api/v3/events", params={"cursor": body["pagination"]["cursor"]}).json()
    assert kinds(later) == ["jobAccepted"]


def test_filters_by_job_and_by_task(api):
    a, b = submit(api), submit(api)
    task_a = api.get("/api/v3/tasks", params={"jobId": a}).json()["items"][0]["id"]
    other_a = api.get("/api/v3/tasks", params={"jobId": a}).json()["items"][1]["id"]
    with api.master.store.transaction() as tx:  # what the ledger writes for a task's history
        tx.event(1.0, "taskLaunchResent", task_a, {"jobId": a, "attempt": 2})
        tx.event(2.0, "taskBackingOff", a, {"taskId": task_a, "replacementId": "r1"})
        tx.event(3.0, "taskBackingOff", a, {"taskId": other_a, "replacementId": "r2"})
    api.delete(f"/api/v3/jobs/{b}")
    of_a = read_all(api, 100, jobId=a)
    assert kinds({"items": of_a}) == ["jobAccepted", "taskLaunchResent", "taskBackingOff",
                                      "taskBackingOff"]
    assert {e["jobId"] for e in of_a} == {a}
    assert of_a[1]["taskId"] == task_a and of_a[2]["taskId"] == task_a
    of_b = read_all(api, 100, jobId=b)
    assert kinds({"items": of_b}) == ["jobAccepted", "jobKillInitiated", "jobFinished"]
    of_task = read_all(api, 100, taskId=task_a)
    assert kinds({"items": of_task}) == ["taskLaunchResent", "taskBackingOff"]
    assert read_all(api, 100, taskId=task_a, jobId=b) == []


def test_a_finished_jobs_events_stay_readable_from_the_archive(api):
    job = submit(api)
    api.delete(f"/api/v3/jobs/{job}")
    assert api.get(f"/api/v3/jobs/{job}").status_code == 200
    assert kinds({"items": read_all(api, 100, jobId=job)})[:2] == ["jobAccepted",
                                                                     "jobKillInitiated"]


class Answer:
    """What :func:`raw_get` received, shaped like an HTTP client's response."""

    def __init__(self, raw: dict):
        self.status_code, self.headers, self.content = raw["status"], raw["headers"], raw["body"]
        self.text = self.content.decode("utf-8", "replace")

    def json(self):
        import json

        return json.loads(self.content)


def get(client, **params) -> Answer:
    """GET /api/v3/events with ``params`` percent-encoded byte by byte (a lone surrogate goes
    as the bytes a careless client would send: its UTF-8-style encoding)."""
    pairs = "&".join(f"{k}={quote(v.encode('utf-8', 'surrogatepass'), safe='')}"
                     for k, v in params.items())
    return Answer(raw_get(client, "/api/v3/events", pairs.encode()))


def assert_error(r, status, field=None):
    assert r.status_code == status, r.text[:300]
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert isinstance(body["error"], str) and isinstance(body["problems"], list)
    if field is not None:
        assert body["problems"][0]["field"] == field, body
    assert len(r.content) < 20_000  # a huge value is never echoed back whole
    return body


BAD_CURSORS = ["x", "!!!", "0", "-1", encode_cursor(5)[:-1] + "*", "ZXYx",
               base64.urlsafe_b64encode(b"ev1:-3").decode(),
               base64.urlsafe_b64encode(b"ev1:" + b"9" * 40).decode(),
               base64.urlsafe_b64encode(b"\xff\xfe").decode(), "\ud800", "a\x00b", "c" * 100_000]


@pytest.mark.parametrize("cursor", BAD_CURSORS, ids=range(len(BAD_CURSORS)))
def test_a_cursor_not_made_here_is_a_400(hostile_api, cursor):
    assert_error(get(hostile_api, cursor=cursor), 400, "cursor")


@pytest.mark.parametrize("limit", ["0", "-1", str(MAX_LIMIT + 1), "1" + "0" * 30, "nan", "inf",
                                   "1e3", "abc", "", "\ud800", "1.5"])
def test_a_limit_out_of_range_or_not_a_number_is_refused(hostile_api, limit):
    body = assert_error(get(hostile_api, limit=limit), 400)
    assert body["problems"][0]["field"].endswith("limit")


@pytest.mark.parametrize("param", ["jobId", "taskId"])
@pytest.mark.parametrize("value", ["nope", "a\x00b", "\x00", "\ud800", "x\udfff",
                                   "%" * 10, "'; drop table events; --", "j" * 10_000_000])
def test_unknown_hostile_or_huge_ids_are_not_found(hostile_api, param, value):
    assert_error(get(hostile_api, **{param: value}), 404)
    assert hostile_api.get("/api/v3/events").status_code == 200


def test_cursors_are_opaque_and_round_trip():
    for seq in (0, 1, 2**40):
        assert decode_cursor(encode_cursor(seq)) == seq
    assert "ev1" not in encode_cursor(7)
    assert decode_cursor("") == 0 and decode_cursor(None) == 0
