"""Calls to identity servers (issue 14, items 5, 6, 13 and 16): the per-server cap below the worker's
threads, an overall deadline per call, a remembered discovery failure, which discovery-supplied endpoints
geologin calls, and what Test connection calls before it sends the client secret."""
import socket
import threading
import time

import pytest
import requests_mock

from geologin import idp as instances
from geologin.providers import HttpClient, InstanceView, ProviderUnavailable
from plugins.oidc.provider import OIDCProvider
from tests.conftest import AuthActions
from tests.fakes import SECRET
from tests.test_dhis2_login import (PUBLIC, app, dhis2_servers, last_login_event, legacy, logged_in_as,  # noqa: F401
                                    login_outcomes, login_via_dhis2, oidc, register, stall_logins)

ISSUER = "https://id.example.org/realms/health"
JSON = {"Content-Type": "application/json"}


# -- item 5: the per-server cap, the deadline, the remembered discovery failure ---------------------------
def test_sec_50_default_cap_stays_below_the_worker_threads(app, legacy, oidc, make_user):
    """With gunicorn's 4 threads and no explicit cap, three logins may wait on a stalled DHIS2; a fourth
    fails fast as unavailable, while a login through another server and a password login are served."""
    app.config.update(WORKER_THREADS=4, HTTP_MAX_CONCURRENT_PER_SERVER=8, HTTP_QUEUE_TIMEOUT=0.2)
    make_user("alice")
    register(app, legacy, "legacy", allow=["alice"])
    register(app, oidc, "other", allow=["alice"])
    threads = stall_logins(app, legacy, "legacy", 4)
    time.sleep(0.6)
    other = app.test_client()
    login_via_dhis2(other, "other")
    assert logged_in_as(other) == "alice"
    assert AuthActions(app.test_client()).login("alice").status_code == 302
    assert any(thread.is_alive() for thread in threads)  # served while the stalled logins still wait
    for thread in threads:
        thread.join(20)
    outcomes, failures = login_outcomes(app, "legacy")
    assert outcomes == [("failure", "provider_unavailable")] + [("success", "")] * 3
    assert all("busy" in detail for detail in failures)


def test_sec_50_gunicorn_tells_the_app_its_thread_count(monkeypatch):
    import runpy

    monkeypatch.setenv("GEOLOGIN_THREADS", "6")
    monkeypatch.delenv("GEOLOGIN_WORKER_THREADS", raising=False)
    runpy.run_path("gunicorn.conf.py")
    import os

    assert os.environ["GEOLOGIN_WORKER_THREADS"] == "6"
    from geologin.providers.http import per_server_cap

    assert per_server_cap({"WORKER_THREADS": 6, "HTTP_MAX_CONCURRENT_PER_SERVER": None}) == 5
    assert per_server_cap({"WORKER_THREADS": 1, "HTTP_MAX_CONCURRENT_PER_SERVER": None}) == 1


class DrippingServer:
    """A real HTTP server on loopback that sends its headers at once, then one body byte every ``every``
    seconds: each byte arrives within any read timeout, so only an overall deadline ends the call."""

    def __init__(self, every=0.3, length=100):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}/"
        self.every, self.length, self.stopped = every, length, threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self._drip, args=(conn,), daemon=True).start()

    def _drip(self, conn):
        with conn:
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                         b"Content-Length: %d\r\n\r\n" % self.length)
            for _ in range(self.length):
                if self.stopped.wait(self.every):
                    return
                try:
                    conn.sendall(b" ")
                except OSError:
                    return

    def stop(self):
        self.stopped.set()
        self.sock.close()


def test_sec_46_dripping_server_is_cut_at_the_overall_deadline():
    server = DrippingServer(every=0.3, length=100)  # 30 s to send it all, each byte well within 1 s
    try:
        client = HttpClient({server.url.split("/")[2]}, read_timeout=1, total_timeout=1.5)
        began = time.monotonic()
        with pytest.raises(ProviderUnavailable) as failure:
            client.get(server.url)
        assert time.monotonic() - began < 3
        assert "did not finish its answer within 1.5 s" in failure.value.detail
    finally:
        server.stop()


def test_sec_46_total_timeout_is_configured_per_instance(app, legacy):
    app.config["HTTP_TOTAL_TIMEOUT"] = 7
    register(app, legacy, "legacy")
    with app.app_context():
        provider = instances.plugin_object(instances.IdentityProvider.by_slug("legacy"))
        assert provider.http.total_timeout == 7


def _discovery_calls(server):
    return [r for r in server.control("log", method="GET") if r["path"].endswith("/openid-configuration")]


def test_reg_failed_discovery_is_remembered_briefly(app, client, oidc, make_user):
    make_user("alice", password=None)
    register(app, oidc, "oidc", allow=["alice"])
    oidc.control("behaviour", {"discovery": "500"})
    for _ in range(2):
        start_page = client.post("/auth/start", data={"csrf_token": _csrf(client), "provider": "oidc"})
        assert start_page.status_code in (302, 303)
    assert len(_discovery_calls(oidc)) == 1
    assert last_login_event(app)[:2] == ("failure", "provider_unavailable")


def _csrf(client):
    from tests.conftest import csrf_from

    return csrf_from(client.get("/login"))


# -- item 6: which endpoints a discovery document may name ------------------------------------------------
METADATA = {"issuer": ISSUER, "authorization_endpoint": ISSUER + "/protocol/openid-connect/auth",
            "token_endpoint": ISSUER + "/protocol/openid-connect/token",
            "jwks_uri": ISSUER + "/protocol/openid-connect/certs"}


def _oidc(app, insecure=False, **settings):
    view = InstanceView(slug="health", label="Health ID",
                        settings={"issuer": ISSUER, "client_id": "geologin", "scopes": "openid", **settings},
                        secret_reader=lambda name: SECRET)
    return OIDCProvider(view, http=HttpClient({"id.example.org"}), default_redirect_uri=PUBLIC + "/auth/health/callback",
                        allow_insecure_http=insecure)


def _test_connection(provider, metadata):
    """Test connection against a server publishing ``metadata``; returns the checks and every request made."""
    with requests_mock.Mocker() as mock:
        mock.get(ISSUER + "/.well-known/openid-configuration", json=metadata, headers=JSON)
        mock.post(requests_mock.ANY, status_code=400, json={"error": "invalid_grant"}, headers=JSON)
        checks = provider.test_connection()
        return checks, mock.request_history


@pytest.mark.parametrize("key,endpoint,why", [
    ("token_endpoint", "http://id.example.org/realms/health/token", "is not https"),
    ("token_endpoint", "https://collector.example.net/token", "is not the issuer's host"),
    ("jwks_uri", "https://id.example.org:8443/certs", "is not the issuer's host"),
    ("token_endpoint", "https://user:pw@id.example.org/token", "credentials"),
    ("userinfo_endpoint", "ftp://id.example.org/userinfo", "not an http(s) URL"),
])
def test_sec_45_discovery_endpoint_on_http_or_another_host_is_refused(app, key, endpoint, why):
    with app.test_request_context():
        checks, calls = _test_connection(_oidc(app), {**METADATA, key: endpoint})
    assert not checks[0].ok and why in checks[0].message and key in checks[0].message
    assert [c.method for c in calls] == ["GET"]  # the client secret went nowhere
    assert all("Authorization" not in c.headers for c in calls)


def test_sec_45_other_host_allowed_by_the_admin_is_called(app):
    metadata = {**METADATA, "token_endpoint": "https://oauth2.googleapis.com/token",
                "jwks_uri": "https://www.googleapis.com/oauth2/v3/certs"}
    with app.test_request_context():
        checks, calls = _test_connection(_oidc(app, endpoint_hosts="oauth2.googleapis.com www.googleapis.com"),
                                         metadata)
        assert all(check.ok for check in checks), checks
        assert calls[-1].url == "https://oauth2.googleapis.com/token"
        cleaned = OIDCProvider.clean_settings({"issuer": ISSUER, "client_id": "x",
                                               "endpoint_hosts": "OAuth2.googleapis.com, www.googleapis.com"},
                                              instances_context())
        assert cleaned["endpoint_hosts"] == "oauth2.googleapis.com www.googleapis.com"
        with pytest.raises(Exception) as refused:
            OIDCProvider.clean_settings({"issuer": ISSUER, "client_id": "x", "endpoint_hosts": "https://evil/"},
                                        instances_context())
        assert "Enter host names only" in str(refused.value)


def instances_context():
    from geologin.providers import SettingsContext

    return SettingsContext()


@pytest.mark.parametrize("address", ["10.0.0.5", "127.0.0.1", "169.254.169.254", "[::1]", "192.168.1.10"])
def test_sec_13_private_address_endpoint_refused_for_a_public_issuer(app, address):
    metadata = {**METADATA, "token_endpoint": f"https://{address}/token"}
    with app.test_request_context():
        provider = _oidc(app, endpoint_hosts=address if not address.startswith("[") else "")
        checks, calls = _test_connection(provider, metadata)
    assert not checks[0].ok
    assert "private address" in checks[0].message or "not the issuer's host" in checks[0].message
    assert [c.method for c in calls] == ["GET"]


def test_sec_13_private_address_named_by_the_admin_still_refused(app):
    metadata = {**METADATA, "token_endpoint": "https://10.0.0.5/token"}
    with app.test_request_context():
        checks, calls = _test_connection(_oidc(app, endpoint_hosts="10.0.0.5"), metadata)
    assert not checks[0].ok and "private address" in checks[0].message
    assert [c.method for c in calls] == ["GET"]


def test_sec_45_refused_endpoint_never_gets_the_code_or_secret_in_a_login(app, client, make_user):
    """A login whose discovery document names a foreign token endpoint fails before the code exchange."""
    from geologin.providers import CallbackContext, ProviderError

    with app.test_request_context():
        provider = _oidc(app)
        with requests_mock.Mocker() as mock:
            mock.get(ISSUER + "/.well-known/openid-configuration", json={
                **METADATA, "token_endpoint": "https://collector.example.net/token"}, headers=JSON)
            token = mock.post("https://collector.example.net/token", json={})
            with pytest.raises(ProviderError):
                provider.complete_login(CallbackContext(params={"code": "c0de", "state": "s"},
                                                        redirect_uri=PUBLIC + "/cb", nonce="n", code_verifier="v" * 43))
            assert token.call_count == 0


# -- items 13 and 16: Test connection identifies DHIS2 before it sends the secret ----------------------------
class AnyWebServer:
    """A web server on loopback that answers every request with a 200 HTML page (as geologin's own login
    page, a proxy's default page or an intranet service would), recording what it was sent."""

    def __init__(self):
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        seen = self.requests = []

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                seen.append((self.command, self.path, dict(self.headers), self.rfile.read(length)))
                body = b"<!doctype html><title>Log in</title><p>Welcome"
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def any_web_server():
    server = AnyWebServer()
    yield server
    server.stop()


def _checks(app, slug):
    with app.test_request_context():
        return instances.plugin_object(instances.IdentityProvider.by_slug(slug)).test_connection()


def _token_calls(server):
    return [r for r in server.control("log", method="GET") if r["path"].endswith(("/token", "/oauth/token"))]


NOT_DHIS2 = "This is not the address of a DHIS2 server: use the address you open DHIS2 at, without /dhis-web-... or /api/."


@pytest.mark.parametrize("path", ["/dhis-web-dashboard/", "/api/", "/dhis-web-dashboard/index.html#/", "/uaa/"])
def test_reg_dhis2_path_in_the_address_is_refused_and_corrected(app, oidc, path):
    register(app, oidc, "moh")
    with app.app_context():
        instance = instances.IdentityProvider.by_slug("moh")
        instances.update_provider(instance, settings={"base_url": oidc.url + path.split("#")[0]}, actor="t")
    checks = _checks(app, "moh")
    assert [c.ok for c in checks] == [False]
    assert checks[0].name == "Server reachable"
    assert checks[0].message == f"{NOT_DHIS2} DHIS2 answers at {oidc.url}/: use that address."
    assert not _token_calls(oidc)  # the client secret was not sent


def test_reg_2_42_behind_a_wrong_path_is_not_called_legacy(app, oidc):
    register(app, oidc, "moh")
    with app.app_context():
        instances.update_provider(instances.IdentityProvider.by_slug("moh"),
                                  settings={"base_url": oidc.url + "/dhis/"}, actor="t")
    checks = _checks(app, "moh")
    assert [c.ok for c in checks] == [False] and checks[0].message == NOT_DHIS2
    assert "legacy" not in " ".join(c.message for c in checks)


def test_sec_13_test_connection_sends_no_secret_to_a_server_that_is_not_dhis2(app, any_web_server):
    register(app, any_web_server, "moh")
    checks = _checks(app, "moh")
    assert [c.ok for c in checks] == [False] and checks[0].message == NOT_DHIS2
    assert {method for method, *_ in any_web_server.requests} == {"GET"}
    assert all("Authorization" not in headers and SECRET.encode() not in body
               for _, _, headers, body in any_web_server.requests)


@pytest.mark.parametrize("server,expected", [("legacy", ["DHIS2 answers at", "legacy (/uaa)"]),
                                             ("oidc", ["DHIS2 2.42.5 answers at", "2.42+ (OpenID Connect)"])])
def test_reg_dhis2_is_identified_positively(app, request, server, expected):
    fake = request.getfixturevalue(server)
    register(app, fake, "moh")
    checks = _checks(app, "moh")
    assert [c.ok for c in checks] == [True, True, True], checks
    assert [m in c.message for m, c in zip(expected, checks)] == [True, True]
    assert [r["path"] for r in fake.control("log", method="GET")
            if r["path"].endswith("/api/system/ping")], "identified by api/system/ping"


# -- item 16: a provider whose connection test never passed is created disabled ---------------------------
def _admin(app):
    from geologin.accounts import users
    from tests.conftest import STRONG_PASSWORD

    with app.app_context():
        users.create_user("root", password=STRONG_PASSWORD, is_admin=True, actor="test")
    client = app.test_client()
    assert AuthActions(client).login("root").status_code == 302
    return client


def _new_form(base_url, **changes):
    return {"slug": "moh", "label": "MoH", "enabled": "y", "setting_base_url": base_url,
            "setting_client_id": "geologin", "setting_client_secret": SECRET, "setting_generation": "auto",
            "setting_redirect_uri": "", **changes}


def _enabled(app, slug="moh"):
    with app.app_context():
        return instances.IdentityProvider.by_slug(slug).enabled


def test_reg_admin_creates_a_provider_disabled_until_its_test_passes(app, legacy, any_web_server):
    from tests.conftest import post_form

    client = _admin(app)
    response = post_form(client, "/admin/providers/new?type=dhis2", _new_form(any_web_server.url + "/dhis-web-dashboard/"))
    assert response.status_code == 302 and not _enabled(app)
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "created disabled because the connection test did not pass" in page
    assert "This is not the address of a DHIS2 server" in page and "enable it with Edit" in page
    assert all("Authorization" not in headers for _, _, headers, _ in any_web_server.requests)

    response = post_form(client, "/admin/providers/new?type=dhis2", _new_form(legacy.url + "/", slug="ok"))
    assert _enabled(app, "ok")
    assert "The connection test passed" in client.get(response.headers["Location"]).get_data(as_text=True)

    post_form(client, "/admin/providers/new?type=dhis2",
              _new_form(any_web_server.url + "/", slug="forced", enable_untested="y"))
    assert _enabled(app, "forced")
    post_form(client, "/admin/providers/new?type=dhis2", _new_form(legacy.url + "/", slug="off", enabled=None))
    assert not _enabled(app, "off")


def test_reg_cli_creates_a_provider_disabled_until_its_test_passes(app, legacy, any_web_server):
    cli = app.test_cli_runner()

    def add(slug, url, *extra):
        return cli.invoke(args=["providers", "add", "dhis2", "--slug", slug, "--label", slug, "--base-url", url,
                                "--client-secret-stdin", *extra], input=f"{SECRET}\n")

    failed = add("moh", any_web_server.url + "/api/")
    assert failed.exit_code == 0 and not _enabled(app, "moh")
    assert "FAILED  Server reachable: This is not the address of a DHIS2 server" in failed.output
    assert "moh was created disabled because the connection test did not pass" in failed.output
    assert "`providers enable moh`" in failed.output
    passed = add("ok", legacy.url + "/")
    assert "The connection test passed: ok is enabled." in passed.output and _enabled(app, "ok")
    forced = add("forced", any_web_server.url + "/", "--enabled")
    assert forced.exit_code == 0 and _enabled(app, "forced") and "FAILED" not in forced.output
    assert add("both", legacy.url + "/", "--enabled", "--disabled").exit_code == 2
