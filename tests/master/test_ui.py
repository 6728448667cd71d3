"""The web UI over HTTP: sign-in and sessions, scopes, CSRF, escaping, security headers,
hostile query parameters, and its place outside ``/openapi.json`` (docs/ui.md)."""
from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from titus.master.app import create_app
from titus.master.auth import principal
from titus.master.auth import digest
from titus.master.config import MasterSettings
from titus.master.ui.sessions import COOKIE, SessionBook

TOKENS = {"reader": ["read"], "alice": ["user"], "bob": ["user"], "root": ["admin"]}
XSS = "<script>alert(1)</script>"
JOB = {"applicationName": XSS, "owner": {"teamEmail": "alice@example.com"},
       "capacityGroup": "web",
       "container": {"image": {"name": "busybox"}, "resources": {"cpu": 1, "memoryMB": 128},
                     "env": {"DB_PASSWORD": "hunter2", "GREETING": "<b>hi</b>"}},
       "service": {"capacity": {"min": 0, "desired": 1, "max": 3}}}
PAGES = ["/", "/ui/hosts", "/ui/capacity-groups", "/ui/instance-groups"]


def token(name: str) -> str:
    return f"{name}-token"


def bearer(name: str) -> dict:
    return {"Authorization": f"Bearer {token(name)}"}


def settings_for(tmp_path, **extra) -> MasterSettings:
    lines = ["tokens:"]
    for name, scopes in TOKENS.items():
        lines += [f"  - name: {name}", f"    sha256: {digest(token(name))}",
                  f"    scopes: [{', '.join(scopes)}]"]
    (tmp_path / "tokens.yaml").write_text("\n".join(lines) + "\n")
    return MasterSettings(store_url=f"sqlite:///{tmp_path / 'm.db'}", agent_token="boot",
                          token_file=str(tmp_path / "tokens.yaml"), submit_rate_per_sec=0,
                          **extra)


@pytest.fixture
def app(tmp_path):
    with TestClient(create_app(settings_for(tmp_path), start_loop=False)) as http:
        yield http


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """One app and a browser signed in as root, for the tests that only read (the
    hostile-input sweep)."""
    path = tmp_path_factory.mktemp("ui")
    with TestClient(create_app(settings_for(path), start_loop=False)) as http:
        yield browser(http, "root")


def browser(app, name: str) -> TestClient:
    """A second client on the same app, signed in as ``name`` through the form."""
    client = TestClient(app.app)
    reply = client.post("/ui/signin", data={"token": token(name), "next": "/"},
                        follow_redirects=False)
    assert reply.status_code == 303, reply.text
    return client


def csrf_of(client: TestClient, path: str = "/") -> str:
    page = client.get(path).text
    return re.search(r'<meta name="titus-csrf" content="([^"]*)"', page).group(1)


def alices_job(app) -> str:
    reply = app.post("/api/v3/jobs", json=JOB, headers=bearer("alice"))
    assert reply.status_code == 202, reply.text
    return reply.json()["id"]


# -- sign-in ------------------------------------------------------------------------------
def test_without_a_session_the_root_answers_a_sign_in_form(app):
    reply = app.get("/")
    assert reply.status_code == 200
    assert 'id="signin-form"' in reply.text and 'name="token"' in reply.text
    assert 'id="jobs"' not in reply.text  # nothing of the cluster shows


def test_a_wrong_token_is_refused_without_a_cookie(app):
    reply = app.post("/ui/signin", data={"token": "nope", "next": "/"}, follow_redirects=False)
    assert reply.status_code == 401
    assert "not valid" in reply.text
    assert COOKIE not in reply.headers.get("set-cookie", "")
    assert app.get("/").text.count('id="signin-form"') == 1


def test_an_agent_token_cannot_sign_in(app):
    reply = app.post("/ui/signin", data={"token": "boot"}, follow_redirects=False)
    assert reply.status_code == 401 and "may not read" in reply.text


def test_signing_in_sets_an_httponly_strict_cookie_that_is_not_the_token(app):
    reply = app.post("/ui/signin", data={"token": token("alice"), "next": "/ui/hosts"},
                     follow_redirects=False)
    assert reply.status_code == 303 and reply.headers["location"] == "/ui/hosts"
    cookie = reply.headers["set-cookie"]
    assert cookie.startswith(f"{COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    assert "Path=/" in cookie and "Max-Age=" in cookie
    assert "Secure" not in cookie  # plain HTTP here; set over HTTPS
    assert token("alice") not in cookie and digest(token("alice")) not in cookie
    assert reply.headers.get("cache-control") == "no-store"
    page = app.get("/")
    assert page.status_code == 200 and 'id="jobs"' in page.text and "alice" in page.text
    assert token("alice") not in page.text


def test_sign_in_goes_back_only_to_a_path_on_this_master(app):
    for target in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:1"):
        reply = app.post("/ui/signin", data={"token": token("reader"), "next": target},
                         follow_redirects=False)
        assert reply.headers["location"] == "/", target


def test_sign_in_from_another_site_is_refused(app):
    reply = app.post("/ui/signin", data={"token": token("root")}, follow_redirects=False,
                     headers={"Origin": "https://evil.example"})
    assert reply.status_code == 403
    reply = app.post("/ui/signin", data={"token": token("root")}, follow_redirects=False,
                     headers={"Sec-Fetch-Site": "cross-site"})
    assert reply.status_code == 403


@pytest.mark.parametrize("body,kind,status", [
    (b"token=%ED%A0%80", "application/x-www-form-urlencoded", 400),  # a lone surrogate
    (b"token=\xff\xfe", "application/x-www-form-urlencoded", 400),
    (b"token=" + b"x" * 20000, "application/x-www-form-urlencoded", 413),
    (b'{"token": "root-token"}', "application/json", 415),
])
def test_hostile_sign_in_forms_are_refused(app, body, kind, status):
    reply = app.post("/ui/signin", content=body, headers={"Content-Type": kind},
                     follow_redirects=False)
    assert reply.status_code == status
    assert COOKIE not in reply.headers.get("set-cookie", "")


def test_sign_in_attempts_are_rate_limited_per_client(app):
    codes = [app.post("/ui/signin", data={"token": f"guess-{i}"},
                      follow_redirects=False).status_code for i in range(14)]
    assert codes[:10] == [401] * 10 and 429 in codes[10:]
    assert app.post("/ui/signin", data={"token": "guess"},
                    follow_redirects=False).headers.get("retry-after")


def test_a_finished_jobs_page_reads_the_archive(app):
    job_id = alices_job(app)
    app.delete(f"/api/v3/jobs/{job_id}", headers=bearer("alice"))  # no task on a host: ends
    assert app.get(f"/api/v3/jobs/{job_id}", headers=bearer("root")).json()["status"][
        "state"] == "Finished"
    client = browser(app, "root")
    page = client.get(f"/ui/jobs/{job_id}").text
    assert "archived" in page and 'data-action="kill-job"' not in page
    assert "jobKillInitiated" in page  # its events, from the event log
    assert job_id in client.get("/", params={"state": "Finished"}).text
    task_id = app.get("/api/v3/tasks", params={"jobId": job_id},
                      headers=bearer("root")).json()["items"][0]["id"]
    assert client.get(f"/ui/tasks/{task_id}").status_code == 200


def test_signing_out_needs_the_pages_csrf_value_and_ends_the_session(app):
    client = browser(app, "alice")
    assert client.post("/ui/signout", data={"csrf": "forged"},
                       follow_redirects=False).status_code == 403
    assert 'id="jobs"' in client.get("/").text
    reply = client.post("/ui/signout", data={"csrf": csrf_of(client)}, follow_redirects=False)
    assert reply.status_code == 303
    assert 'id="signin-form"' in client.get("/").text


def test_a_session_ends_after_idle_time_and_lifetime():
    now = [1000.0]
    book = SessionBook(idle_sec=10, lifetime_sec=25, clock=lambda: now[0])
    sid, _ = book.open(principal("alice", ["user"]))
    now[0] += 9
    assert book.get(sid) is not None
    now[0] += 9  # used 9 s ago: still idle-fresh
    assert book.get(sid) is not None
    now[0] += 11
    assert book.get(sid) is None  # idle too long
    sid, _ = book.open(principal("alice", ["user"]))
    for _ in range(3):
        now[0] += 9
        book.get(sid)
    assert book.get(sid) is None  # past its lifetime, however busy
    assert book.get("x" * 500) is None and book.get("") is None


def test_the_oldest_sessions_end_beyond_the_limit():
    book = SessionBook(limit=3)
    ids = [book.open(principal(f"u{i}", ["read"]))[0] for i in range(5)]
    assert [book.get(i) is not None for i in ids] == [False, False, True, True, True]


def test_an_expired_session_is_a_sign_in_form_and_a_401(app):
    client = browser(app, "alice")
    app.app.state.sessions.idle_sec = -1  # every session is now too old
    assert 'id="signin-form"' in client.get("/").text
    assert client.get("/api/v3/jobs").status_code == 401


# -- scopes and CSRF ----------------------------------------------------------------------
def test_the_rest_api_accepts_the_session_cookie_for_reads(app):
    job_id = alices_job(app)
    client = browser(app, "reader")
    assert client.get(f"/api/v3/jobs/{job_id}").status_code == 200


def test_writes_with_the_cookie_need_the_csrf_header(app):
    job_id = alices_job(app)
    client = browser(app, "alice")
    assert client.delete(f"/api/v3/jobs/{job_id}").status_code == 403
    assert client.delete(f"/api/v3/jobs/{job_id}",
                         headers={"X-Titus-CSRF": "forged"}).status_code == 403
    other = browser(app, "alice")  # another session's value is no good either
    assert client.delete(f"/api/v3/jobs/{job_id}",
                         headers={"X-Titus-CSRF": csrf_of(other)}).status_code == 403
    assert app.get(f"/api/v3/jobs/{job_id}", headers=bearer("root")).json()["status"][
        "state"] == "Accepted"
    reply = client.delete(f"/api/v3/jobs/{job_id}", headers={"X-Titus-CSRF": csrf_of(client)})
    assert reply.status_code == 200 and reply.json()["status"]["state"] != "Accepted"


def test_a_reader_sees_everything_and_acts_on_nothing(app):
    job_id = alices_job(app)
    task_id = app.get("/api/v3/tasks", params={"jobId": job_id},
                      headers=bearer("root")).json()["items"][0]["id"]
    client = browser(app, "reader")
    for path in PAGES + [f"/ui/jobs/{job_id}", f"/ui/tasks/{task_id}"]:
        page = client.get(path)
        assert page.status_code == 200, path
        assert 'data-action="' not in page.text, path  # no kill or scale button
    assert "read only" in client.get("/").text
    csrf = {"X-Titus-CSRF": csrf_of(client)}
    assert client.delete(f"/api/v3/jobs/{job_id}", headers=csrf).status_code == 403
    assert client.delete(f"/api/v3/tasks/{task_id}", headers=csrf).status_code == 403
    assert client.put(f"/api/v3/jobs/{job_id}/instances", json={"desired": 2},
                      headers=csrf).status_code == 403
    assert client.post("/api/v3/jobs", json=JOB, headers=csrf).status_code == 403


def test_another_users_job_cannot_be_killed_from_the_ui(app):
    job_id = alices_job(app)
    bob = browser(app, "bob")
    page = bob.get(f"/ui/jobs/{job_id}").text
    assert 'data-action="kill-job"' not in page
    reply = bob.delete(f"/api/v3/jobs/{job_id}", headers={"X-Titus-CSRF": csrf_of(bob)})
    assert reply.status_code == 403
    alice = browser(app, "alice")
    page = alice.get(f"/ui/jobs/{job_id}").text
    assert 'data-action="kill-job"' in page and 'data-action="scale-job"' in page
    reply = alice.put(f"/api/v3/jobs/{job_id}/instances", json={"desired": 2},
                      headers={"X-Titus-CSRF": csrf_of(alice)})
    assert reply.status_code == 200, reply.text
    root = browser(app, "root")
    assert 'data-action="kill-job"' in root.get(f"/ui/jobs/{job_id}").text


def test_the_observe_stream_takes_the_cookie_with_its_caps(tmp_path):
    with TestClient(create_app(settings_for(tmp_path), start_loop=False)) as http:
        job_id = alices_job(http)
        client = browser(http, "reader")
        reply = client.get("/api/v3/observe", params={"snapshotOnly": "true"})
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/event-stream")
        assert job_id in reply.text and "snapshotEnd" in reply.text
        assert TestClient(http.app).get("/api/v3/observe",
                                        params={"snapshotOnly": "true"}).status_code == 401
    with TestClient(create_app(settings_for(tmp_path / "..", max_observe_streams=0),
                               start_loop=False)) as http:
        client = browser(http, "reader")
        assert client.get("/api/v3/observe",
                          params={"snapshotOnly": "true"}).status_code == 429


# -- escaping and headers -----------------------------------------------------------------
def test_user_strings_are_escaped_and_secrets_redacted(app):
    job_id = alices_job(app)
    task_id = app.get("/api/v3/tasks", params={"jobId": job_id},
                      headers=bearer("root")).json()["items"][0]["id"]
    client = browser(app, "root")
    for path in ["/", f"/ui/jobs/{job_id}", f"/ui/tasks/{task_id}"]:
        page = client.get(path).text
        assert XSS not in page, path
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page, path
    page = client.get(f"/ui/jobs/{job_id}").text
    assert "hunter2" not in page and "&lt;redacted&gt;" in page
    assert "<b>hi</b>" not in page and "&lt;b&gt;hi&lt;/b&gt;" in page


def test_pages_carry_the_csp_and_have_no_inline_script_or_style(app):
    job_id = alices_job(app)
    client = browser(app, "root")
    for path in PAGES + [f"/ui/jobs/{job_id}", "/ui/signin", "/ui/jobs/unknown"]:
        reply = client.get(path)
        csp = reply.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp, path
        assert "unsafe-inline" not in csp
        assert reply.headers["x-content-type-options"] == "nosniff"
        assert reply.headers["x-frame-options"] == "DENY"
        html = reply.text
        assert not re.search(r"<script(?![^>]*\bsrc=)", html), path
        assert not re.search(r"\sstyle=|\son[a-z]+=", html), path
        assert not re.search(r"(src|href)=\"(https?:)?//", html), path  # nothing from elsewhere
    assert client.get("/ui/jobs/unknown").status_code == 404
    api = client.get("/api/v3/jobs")
    assert api.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in api.headers["content-security-policy"]


def test_static_assets_come_from_the_package(app):
    for path, kind in [("/ui/static/ui.js", "javascript"), ("/ui/static/ui.css", "text/css"),
                       ("/ui/static/docs.js", "javascript"),
                       ("/ui/vendor/swagger-ui-bundle.js", "javascript"),
                       ("/ui/vendor/redoc.standalone.js", "javascript")]:
        reply = app.get(path)
        assert reply.status_code == 200 and kind in reply.headers["content-type"], path
    assert app.get("/ui/vendor/../../etc/passwd").status_code == 404
    assert app.get("/ui/vendor/core.py").status_code == 404
    assert app.get("/ui/static/../routes.py").status_code == 404


def test_api_docs_work_offline_behind_the_read_scope(app):
    for path in ("/docs", "/redoc"):
        assert app.get(path).status_code == 401
        reply = app.get(path, headers=bearer("reader"))
        assert reply.status_code == 200
        sources = re.findall(r'(?:src|href)="([^"]+)"', reply.text)
        assert sources and all(s.startswith("/ui/") for s in sources), sources
        assert "script-src 'self'" in reply.headers["content-security-policy"]
        assert not re.search(r"<script(?![^>]*\bsrc=)", reply.text)
    client = browser(app, "reader")
    assert client.get("/docs").status_code == 200
    assert client.get("/openapi.json").status_code == 200


# -- hostile input ------------------------------------------------------------------------
HOSTILE = ["NaN", "1e999", "-1", "x" * 10_000, "%ED%A0%80", "%00", "%FF", "[]", "{}", "0"]
ROUTES = ["/?state={v}", "/?owner={v}", "/?group={v}", "/?limit={v}", "/ui/hosts?resource={v}",
          "/ui/jobs/{v}", "/ui/tasks/{v}", "/ui/signin?next={v}", "/?state=Finished&owner={v}"]


@pytest.mark.parametrize("route", ROUTES)
def test_hostile_query_parameters_are_400_or_ignored(shared, route):
    client = shared
    for value in HOSTILE:
        reply = client.get(route.format(v=value))
        assert reply.status_code in (200, 400, 404), (route, value[:20], reply.status_code)
        if reply.status_code == 400:
            assert reply.json()["problems"], reply.text


def test_filters_choose_the_jobs_shown(app):
    job_id = alices_job(app)
    client = browser(app, "root")
    assert job_id in client.get("/", params={"owner": "alice@example.com"}).text
    assert job_id not in client.get("/", params={"owner": "bob@example.com"}).text
    assert job_id in client.get("/", params={"group": "web"}).text
    assert job_id not in client.get("/", params={"group": "other"}).text
    assert job_id in client.get("/", params={"state": "Accepted"}).text
    assert job_id not in client.get("/", params={"state": "Finished"}).text
    assert client.get("/", params={"state": "Bogus"}).status_code == 400


# -- a master without tokens, and the OpenAPI document -------------------------------------
def test_an_insecure_master_needs_no_sign_in(tmp_path):
    settings = MasterSettings(store_url=f"sqlite:///{tmp_path / 'm.db'}")
    with TestClient(create_app(settings, start_loop=False)) as http:
        page = http.get("/")
        assert page.status_code == 200 and 'id="jobs"' in page.text
        assert 'id="signin-form"' not in page.text
        assert http.get("/ui/signin", follow_redirects=False).status_code == 303


def test_ui_routes_stay_out_of_the_openapi_document(app):
    """The pages answer HTML, not the API's JSON: they are left out of ``/openapi.json`` (so
    schemathesis and the auth matrix, which take their routes from it, leave them to this
    file), and so are the docs pages and assets."""
    doc = app.get("/openapi.json", headers=bearer("reader")).json()
    ui = [p for p in doc["paths"] if p == "/" or p.startswith(("/ui", "/docs", "/redoc"))]
    assert ui == []
    from titus.master.ui.routes import router

    pages = {r.path: r.include_in_schema for r in router.routes}
    assert {"/", "/ui/jobs/{job_id}", "/ui/tasks/{task_id}", "/ui/hosts", "/ui/signin",
            "/ui/signout", "/ui/capacity-groups", "/ui/instance-groups"} <= set(pages)
    assert not any(pages.values())
    for path in ("/", "/ui/hosts", "/ui/signin", "/docs", "/redoc"):  # served all the same
        assert app.get(path, headers=bearer("reader")).status_code == 200, path
