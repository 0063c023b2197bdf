"""The whole "Log in with DHIS2" journey against fake DHIS2 servers running as real processes, for both
OAuth generations: what only DHIS2 (or only real HTTP) shows. What the core does for every plugin is in
test_contract_core.py, and what the DHIS2 plugin sends, validates and maps, with canned answers, in
test_contract_dhis2.py."""
import json
import logging
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from sqlalchemy import select

from geologin import idp
from geologin.extensions import db
from geologin.models import AuditEvent, ExternalIdentity, User
from tests.conftest import AuthActions, csrf_from, post_form
from tests.fakes import SECRET, Dhis2User, FakeServer

PUBLIC = "http://127.0.0.1:8080"  # Spring Authorization Server refuses "localhost" redirect URIs
SLUGS = ("legacy", "oidc", "other", "gpr")
GPR_PATH = "/api/session/ologin"
REDIRECT_URIS = [f"{PUBLIC}/auth/{slug}/callback" for slug in SLUGS] + [PUBLIC + GPR_PATH]
ALICE = ("alice", "Alice-pass-123")
ALICE_UID = "xE7jOejl9FI"


@pytest.fixture(scope="session")
def dhis2_servers():
    """Fake DHIS2 processes by version, started once per run and reset for each test."""
    started = {}

    def get(version, base_path=None):
        key = (version, base_path)
        if key not in started:
            args = ["--version", version, "--client", f"geologin:{SECRET}:{','.join(REDIRECT_URIS)}"]
            started[key] = FakeServer(*args, *(["--base-path", base_path] if base_path else []))
        started[key].reset()
        return started[key]

    yield get
    for server in started.values():
        server.stop()


@pytest.fixture
def legacy(dhis2_servers):
    return dhis2_servers("2.40.3", "/dhis")


@pytest.fixture
def oidc(dhis2_servers):
    return dhis2_servers("2.42.5")


@pytest.fixture
def app(app_factory):
    return app_factory(ALLOW_INSECURE_HTTP=True, PUBLIC_URL=PUBLIC)


def register(app, server, slug, *, label=None, allow=(), allow_all=False, **settings):
    with app.app_context():
        instance = idp.create_provider(
            "dhis2", slug=slug, label=label or f"DHIS2 {slug}", allow_all_users=allow_all,
            settings={"base_url": server.url + "/", "client_id": "geologin", **settings},
            secrets={"client_secret": settings.pop("secret", SECRET)}, actor="test")
        if allow:
            idp.allow([User.by_username(name) for name in allow], instance, actor="test")
        return instance.id


def start(client, slug, next=None):
    """Click "Log in with DHIS2" on the login page; return where geologin sends the browser."""
    token = csrf_from(client.get("/login"))
    data = {"csrf_token": token, "provider": slug, **({"next": next} if next else {})}
    response = client.post("/auth/start", data=data)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    return response.headers["Location"]


def back_to_geologin(client, location):
    """The browser arrives at geologin's callback with what DHIS2 put in the redirect."""
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}" == PUBLIC, location
    return client.get(parts.path + ("?" + parts.query if parts.query else ""))


def login_via_dhis2(client, slug, user=ALICE, approve=True, next=None):
    location = Dhis2User(*user).authorize(start(client, slug, next), approve=approve)
    return back_to_geologin(client, location)


def flashed_error(client):
    html = client.get("/login").get_data(as_text=True)
    return html.split('class="flash flash-error"', 1)[1].split("</p>", 1)[0] if "flash-error" in html else ""


def logged_in_as(client):
    response = client.get("/")
    return response.status_code == 200 and response.get_data(as_text=True).split("Logged in as ")[1].split("<")[0]


def last_login_event(app):
    with app.app_context():
        event = db.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "login")
                                   .order_by(AuditEvent.id.desc())).first()
        return event.outcome, event.reason_code, event.provider, event.target, event.detail


# -- the journey ------------------------------------------------------------------------------------
def test_legacy_dhis2_login_logs_in_the_matching_user(app, client, legacy, make_user):
    make_user("alice", password=None)
    register(app, legacy, "legacy", allow=["alice"])
    response = login_via_dhis2(client, "legacy")
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert logged_in_as(client) == "alice"
    assert last_login_event(app)[:4] == ("success", None, "legacy", "alice")
    with app.app_context():
        binding = db.session.scalars(select(ExternalIdentity)).one()
        assert (binding.subject, binding.subject_scheme, binding.external_username) == (ALICE_UID, "dhis2-uid",
                                                                                      "alice")


def test_oidc_dhis2_login_logs_in_the_matching_user(app, client, oidc, make_user):
    make_user("alice", password=None)
    register(app, oidc, "oidc", allow=["alice"])
    response = login_via_dhis2(client, "oidc", next="/account/password")
    assert response.headers["Location"] == "/account/password"
    assert logged_in_as(client) == "alice"
    assert last_login_event(app)[:4] == ("success", None, "oidc", "alice")


@pytest.mark.parametrize("version, base_path", [("2.34.7", None), ("2.37.9", None), ("2.41.1", None),
                                               ("2.42.0", "/dhis"), ("2.43.0", None)])
def test_every_dhis2_shape_works(app, client, dhis2_servers, make_user, version, base_path):
    """2.34 (UUID tokens), 2.37 (username only in userCredentials), 2.41.1, 2.42.0 under a path (no
    username claim: the username is sub), 2.43 (new login path)."""
    server = dhis2_servers(version, base_path)
    make_user("alice", password=None)
    register(app, server, "other", allow=["alice"])
    login_via_dhis2(client, "other")
    assert logged_in_as(client) == "alice"


def test_generation_can_be_forced(app, client, oidc, legacy, make_user):
    make_user("alice", password=None)
    register(app, oidc, "oidc", allow=["alice"], generation="oidc")
    register(app, legacy, "legacy", allow=["alice"], generation="legacy")
    assert "/oauth2/authorize?" in start(client, "oidc")
    assert "/dhis/uaa/oauth/authorize?" in start(client, "legacy")
    # Forcing the wrong generation gives a clear failure, not a crash.
    with app.app_context():
        idp.update_provider(idp.IdentityProvider.by_slug("legacy"), settings={"generation": "oidc"})
    client.post("/auth/start", data={"csrf_token": csrf_from(client.get("/login")), "provider": "legacy"})
    assert "cannot use" in flashed_error(client)


def test_login_page_one_server_goes_straight_there(app, client, legacy, make_user):
    register(app, legacy, "legacy", label="Ministry DHIS2")
    html = client.get("/login").get_data(as_text=True)
    assert "Log in with DHIS2" in html
    assert 'id="dhis2-server"' not in html and 'name="provider" value="legacy"' in html


def test_login_page_several_servers_offers_a_labelled_select_in_admin_order(app, client, legacy, oidc):
    register(app, legacy, "legacy", label="Ministry (2.40)")
    register(app, oidc, "oidc", label="Malaria programme (2.42)")
    html = client.get("/login").get_data(as_text=True)
    assert '<label for="dhis2-server">DHIS2 server</label>' in html
    assert html.index("Ministry (2.40)") < html.index("Malaria programme (2.42)")
    with app.app_context():
        idp.move_provider(idp.IdentityProvider.by_slug("oidc"), -1)
    html = client.get("/login").get_data(as_text=True)
    assert html.index("Malaria programme (2.42)") < html.index("Ministry (2.40)")


def test_login_page_remembers_the_chosen_server(app, client, legacy, oidc, make_user):
    make_user("alice", password=None)
    register(app, legacy, "legacy", allow=["alice"])
    register(app, oidc, "oidc", allow=["alice"])
    login_via_dhis2(client, "oidc")
    AuthActions(client).logout()
    html = client.get("/login").get_data(as_text=True)
    assert '<option value="oidc" selected>' in html and '<option value="legacy">' in html


def test_reg_server_select_remembers_only_a_server_that_logged_in(app, client, legacy, oidc, make_user):
    """A failed or abandoned login through another server does not change the remembered one."""
    make_user("alice", password=None)
    register(app, legacy, "legacy", allow=["alice"])
    register(app, oidc, "oidc")  # alice is not allowed there
    login_via_dhis2(client, "legacy")
    AuthActions(client).logout()
    login_via_dhis2(client, "oidc")
    assert "not allowed" in flashed_error(client)
    start(client, "oidc")  # started, never finished
    html = client.get("/login").get_data(as_text=True)
    assert '<option value="legacy" selected>' in html and '<option value="oidc">' in html


def test_disabled_server_is_not_offered(app, client, legacy):
    register(app, legacy, "legacy")
    with app.app_context():
        idp.update_provider(idp.IdentityProvider.by_slug("legacy"), enabled=False)
    assert "Log in with DHIS2" not in client.get("/login").get_data(as_text=True)
    client.post("/auth/start", data={"csrf_token": csrf_from(client.get("/login")), "provider": "legacy"})
    assert "Choose a server" in client.get("/login").get_data(as_text=True)


def test_geoprism_registry_redirect_uri_works_unchanged(app, client, legacy, make_user):
    make_user("alice", password=None)
    register(app, legacy, "gpr", allow=["alice"], redirect_uri=PUBLIC + GPR_PATH)
    authorization = start(client, "gpr")
    assert parse_qs(urlsplit(authorization).query)["redirect_uri"] == [PUBLIC + GPR_PATH]
    location = Dhis2User(*ALICE).authorize(authorization)
    assert urlsplit(location).path == GPR_PATH
    back_to_geologin(client, location)
    assert logged_in_as(client) == "alice"


# -- identity binding (item 14) ---------------------------------------------------------------------
def test_sec_14_reason_identity_mismatch_after_account_recreated(app, client, legacy, make_user):
    make_user("alice", password=None)
    register(app, legacy, "legacy", allow=["alice"])
    login_via_dhis2(client, "legacy")
    AuthActions(client).logout()
    # At DHIS2 the account is deleted and a new one takes the username: another person.
    legacy.control("users", {"username": "alice", "password": "Alice-pass-123", "uid": "NewPerson01",
                             "firstName": "Not", "surname": "Alice"})
    login_via_dhis2(client, "legacy")
    assert client.get("/").status_code == 302
    assert "not the one linked to alice" in flashed_error(client)
    assert last_login_event(app)[:2] == ("failure", "identity_mismatch")
    # An admin unlinks; the next login binds the new account.
    with app.app_context():
        idp.unlink(User.by_username("alice"), idp.IdentityProvider.by_slug("legacy"), actor="test")
    login_via_dhis2(client, "legacy")
    assert logged_in_as(client) == "alice"


def test_sec_14_renamed_account_cannot_take_over_a_bound_user(app, client, legacy, make_user):
    make_user("alice", password=None)
    make_user("mallory", password=None)
    register(app, legacy, "legacy", allow=["alice", "mallory"])
    login_via_dhis2(client, "legacy")  # binds alice's DHIS2 uid to local alice
    AuthActions(client).logout()
    # A DHIS2 admin renames alice's account to "mallory", the name of another local user.
    legacy.control("users", {"uid": ALICE_UID, "username": "mallory", "password": "Alice-pass-123"})
    login_via_dhis2(client, "legacy", user=("mallory", "Alice-pass-123"))
    assert client.get("/").status_code == 302
    assert last_login_event(app)[:2] == ("failure", "identity_mismatch")


# -- a misbehaving DHIS2 over real HTTP (items 46-49) -----------------------------------------------
@pytest.mark.parametrize("mode", ["html", "array", "missing_access_token", "wrong_token_type"])
def test_sec_48_nonsense_profile_answers(app, client, legacy, make_user, mode):
    make_user("alice", password=None)
    register(app, legacy, "legacy", allow=["alice"])
    legacy.control("behaviour", {"me": mode})
    login_via_dhis2(client, "legacy")
    assert last_login_event(app)[:2] == ("failure", "provider_error")


def test_sec_47_server_down_gives_clear_page_and_password_login_still_works(app, client, make_user):
    server = FakeServer("--version", "2.40.3", "--client", f"geologin:{SECRET}:{','.join(REDIRECT_URIS)}")
    make_user("alice")
    register(app, server, "legacy", allow=["alice"])
    authorization = start(client, "legacy")
    location = Dhis2User(*ALICE).authorize(authorization)
    server.stop()  # DHIS2 goes down between the authorization and the code exchange
    response = back_to_geologin(client, location)
    assert response.status_code == 302
    assert "cannot be reached right now" in flashed_error(client)
    assert last_login_event(app)[:2] == ("failure", "provider_unavailable")
    assert AuthActions(client).login("alice").status_code == 302
    assert logged_in_as(client) == "alice"


def test_sec_46_stalled_server_times_out_as_unavailable(app, client, legacy, make_user):
    app.config["HTTP_READ_TIMEOUT"] = 1
    make_user("alice", password=None)
    register(app, legacy, "legacy", allow=["alice"])
    legacy.control("behaviour", {"token": "stall", "stall_seconds": 5})
    login_via_dhis2(client, "legacy")
    assert last_login_event(app)[:2] == ("failure", "provider_unavailable")
    assert "did not answer within 1 s" in last_login_event(app)[4]


def test_sec_49_huge_answer_is_cut_and_refused(app, client, legacy, make_user):
    make_user("alice", password=None)
    register(app, legacy, "legacy", allow=["alice"])
    legacy.control("behaviour", {"token": "huge", "huge_bytes": 20_000_000})
    login_via_dhis2(client, "legacy")
    outcome, reason, _, _, detail = last_login_event(app)
    assert (outcome, reason) == ("failure", "provider_error")
    assert "over the 1048576-byte limit" in detail


# -- PKCE at a real server, mix-up, redirects (items 3-13) ------------------------------------------
def _query(url):
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def test_sec_03_code_injection_into_another_session_fails(app, client, oidc, make_user):
    """The victim's code (bound to the victim's PKCE verifier) is injected into the attacker's own,
    valid, login transaction: the exchange fails and nobody is logged in."""
    make_user("alice", password=None)
    make_user("bob", password=None)
    register(app, oidc, "oidc", allow=["alice", "bob"])
    victim = app.test_client()
    victim_code = _query(Dhis2User(*ALICE).authorize(start(victim, "oidc")))["code"]
    attacker = client
    attacker_state = _query(start(attacker, "oidc"))["state"]
    attacker.get(f"/auth/oidc/callback?{urlencode({'code': victim_code, 'state': attacker_state})}")
    assert attacker.get("/").status_code == 302
    assert last_login_event(app)[:2] == ("failure", "provider_error")


def test_sec_05_callback_on_another_redirect_uri_is_rejected(app, client, legacy, make_user):
    """A legacy server sends neither iss nor id_token: the redirect URI itself must match."""
    make_user("alice", password=None)
    register(app, legacy, "legacy", allow=["alice"])
    location = Dhis2User(*ALICE).authorize(start(client, "legacy"))
    client.get(f"{GPR_PATH}?{urlsplit(location).query}")
    assert client.get("/").status_code == 302
    assert "another redirect URI" in last_login_event(app)[4]


def test_sec_07_external_login_next_is_validated(app, client, legacy, make_user):
    make_user("alice", password=None)
    register(app, legacy, "legacy", allow=["alice"])
    response = login_via_dhis2(client, "legacy", next="//evil.example/")
    assert response.headers["Location"] == "/"


def test_sec_13_http_server_refused_unless_allowed(app_factory, legacy):
    strict = app_factory(ALLOW_INSECURE_HTTP=False, PUBLIC_URL=PUBLIC)
    with strict.app_context(), pytest.raises(idp.ProviderChangeError) as refused:
        idp.create_provider("dhis2", slug="plain", label="Plain", settings={"base_url": legacy.url},
                                  secrets={"client_secret": SECRET})
    assert "Use https://" in str(refused.value.errors["base_url"])


# -- what reaches the server (item 45) --------------------------------------------------------------
def test_sec_45_no_redirect_followed_from_the_server(app, client, legacy, make_user):
    make_user("alice", password=None)
    register(app, legacy, "legacy", allow=["alice"])
    location = Dhis2User(*ALICE).authorize(start(client, "legacy"))
    app.config["PUBLIC_URL"] = PUBLIC
    with app.app_context():
        provider = idp.plugin_object(idp.IdentityProvider.by_slug("legacy"))
        assert provider.http.allowed_hosts == {urlsplit(legacy.url).netloc}
    # /api/me without a token answers 302 to the login page at DHIS2: not followed, refused.
    response = provider.http.get(legacy.url + "/api/me")
    assert response.status_code == 302
    back_to_geologin(client, location)
    assert logged_in_as(client) == "alice"


# -- logs over real HTTP (items 54, 55) -------------------------------------------------------------
def _capture_tokens(monkeypatch):
    from geologin.providers.oauth import OAuth2Provider

    captured = []
    real = OAuth2Provider.exchange_code

    def exchange(self, code, callback):
        tokens = real(self, code, callback)
        captured.append(dict(tokens, code=code))
        return tokens

    monkeypatch.setattr(OAuth2Provider, "exchange_code", exchange)
    return captured


def test_sec_54_no_secret_code_or_token_in_logs_or_audit(app, client, legacy, oidc, make_user, monkeypatch,
                                                         caplog):
    caplog.set_level(logging.DEBUG)
    make_user("alice", password=None)
    register(app, legacy, "legacy", allow=["alice"])
    register(app, oidc, "oidc", allow=["alice"])
    tokens = _capture_tokens(monkeypatch)
    for slug in ["legacy", "oidc"]:
        login_via_dhis2(client, slug)
        AuthActions(client).logout()
    with app.app_context():
        rows = json.dumps([e.as_dict() for e in db.session.scalars(select(AuditEvent))])
        stored = json.dumps([(i.settings_json, i.secrets_json) for i in idp.ordered_providers()])
    haystack = caplog.text + rows
    assert len(tokens) == 2 and SECRET not in haystack and SECRET not in stored
    for token in tokens:
        for key in ("code", "access_token", "id_token", "refresh_token"):
            if token.get(key):
                assert token[key] not in haystack, key


def test_sec_55_crlf_in_provider_username_cannot_forge_log_lines(app, client, legacy, caplog):
    register(app, legacy, "legacy", allow_all=True)
    forged = "eve\r\n2026-01-01 INFO geologin.audit: audit event=login outcome=success actor=admin"
    legacy.control("users", {"username": forged, "password": "Eve-pass-12345", "uid": "EveUid00001"})
    with caplog.at_level(logging.INFO, logger="geologin.audit"):
        login_via_dhis2(client, "legacy", user=(forged, "Eve-pass-12345"))
    assert last_login_event(app)[1] == "unknown_user"
    target = last_login_event(app)[3]
    assert "\r" not in target and "\n" not in target and "\\r\\n" in target
    assert all("\n" not in record.getMessage() for record in caplog.records)
    assert "User eve" in flashed_error(client)


# -- the id_token of 2.42+ (what DHIS2 sends; the generic OIDC plugin has its own suite) -------------
@pytest.mark.parametrize("fault", ["bad_sig", "wrong_iss", "wrong_aud", "no_sub", "expired", "wrong_nonce",
                                   "alg_none", "hs256_pubkey", "unknown_kid"])
def test_id_token_failing_any_check_is_provider_error(app, client, oidc, make_user, fault):
    make_user("alice", password=None)
    register(app, oidc, "oidc", allow=["alice"])
    oidc.control("behaviour", {"id_token": fault})
    login_via_dhis2(client, "oidc")
    assert client.get("/").status_code == 302
    assert last_login_event(app)[:2] == ("failure", "provider_error")


@pytest.mark.parametrize("fault", ["no_kid", "clock_ahead", "just_expired"])
def test_sec_51_small_clock_skew_and_absent_kid_are_accepted(app, client, oidc, make_user, fault):
    make_user("alice", password=None)
    register(app, oidc, "oidc", allow=["alice"])
    oidc.control("behaviour", {"id_token": fault})
    login_via_dhis2(client, "oidc")
    assert logged_in_as(client) == "alice"


def test_signing_key_rotated_by_a_dhis2_restart_is_fetched_once(app, client, oidc, make_user):
    make_user("alice", password=None)
    register(app, oidc, "oidc", allow=["alice"])
    login_via_dhis2(client, "oidc")
    AuthActions(client).logout()
    oidc.control("rotate-keys")  # DHIS2 without a keystore makes a new key at every restart
    login_via_dhis2(client, "oidc")
    assert logged_in_as(client) == "alice"
    jwks_calls = [r for r in oidc.control("log", method="GET") if r["path"].endswith("/oauth2/jwks")]
    assert len(jwks_calls) == 2


def stall_logins(app, server, slug, count, seconds=3):
    """``count`` browsers authorized at ``server`` come back to geologin at once, in threads (started, not
    joined), while its token endpoint stalls ``seconds``."""
    import threading

    browsers = [app.test_client() for _ in range(count)]
    locations = [Dhis2User(*ALICE).authorize(start(browser, slug)) for browser in browsers]
    server.control("behaviour", {"token": "stall", "stall_seconds": seconds})
    threads = [threading.Thread(target=back_to_geologin, args=pair) for pair in zip(browsers, locations)]
    for thread in threads:
        thread.start()
    return threads


def login_outcomes(app, slug):
    """(outcome, reason code) of every login through ``slug``, sorted, and the failures' details."""
    with app.app_context():
        events = db.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "login",
                                                             AuditEvent.provider == slug)).all()
    return sorted((e.outcome, e.reason_code or "") for e in events), [e.detail for e in events
                                                                       if e.outcome == "failure"]


def test_sec_50_stalled_server_holds_only_a_few_workers(app, legacy, make_user):
    """Six logins hit a DHIS2 whose token endpoint stalls: at most two wait on it (the per-server cap),
    the rest fail fast as unavailable, and a password login meanwhile is served at once."""
    import time

    app.config.update(HTTP_MAX_CONCURRENT_PER_SERVER=2, HTTP_QUEUE_TIMEOUT=0.2, HTTP_READ_TIMEOUT=10)
    make_user("alice")
    register(app, legacy, "legacy", allow=["alice"])
    threads = stall_logins(app, legacy, "legacy", 6)
    time.sleep(0.5)
    assert AuthActions(app.test_client()).login("alice").status_code == 302
    assert any(thread.is_alive() for thread in threads)  # served while the stalled logins still wait
    for thread in threads:
        thread.join(20)
    outcomes, failures = login_outcomes(app, "legacy")
    assert outcomes == [("failure", "provider_unavailable")] * 4 + [("success", "")] * 2
    assert all("busy" in detail for detail in failures)


def test_sec_28_withdrawing_permission_or_disabling_the_server_ends_sessions_opened_through_it(
        app, client, legacy, make_user):
    make_user("alice")
    register(app, legacy, "legacy", allow=["alice"])
    login_via_dhis2(client, "legacy")
    password_browser = app.test_client()
    AuthActions(password_browser).login("alice")
    with app.app_context():
        idp.disallow([User.by_username("alice")], idp.IdentityProvider.by_slug("legacy"), actor="t")
    assert client.get("/").status_code == 302  # the DHIS2 session ended
    assert password_browser.get("/").status_code == 200  # the password session did not
    with app.app_context():
        idp.allow([User.by_username("alice")], idp.IdentityProvider.by_slug("legacy"), actor="t")
    login_via_dhis2(client, "legacy")
    assert logged_in_as(client) == "alice"
    with app.app_context():
        idp.update_provider(idp.IdentityProvider.by_slug("legacy"), enabled=False, actor="t")
    assert client.get("/").status_code == 302
    assert password_browser.get("/").status_code == 200


# -- issue 14 ---------------------------------------------------------------------------------------------
def _admin_browser(app, make_user):
    make_user("root", is_admin=True)
    browser = app.test_client()
    assert AuthActions(browser).login("root").status_code == 302
    return browser


def test_sec_05_a_redirect_uri_belongs_to_one_provider_only(app, legacy, oidc, make_user):
    """A second provider may not take the GeoPrism path another one (even a disabled one) uses: in the
    service, the admin form and the CLI, each with a message that names the holder."""
    register(app, legacy, "gpr", label="Ministry DHIS2", redirect_uri=PUBLIC + GPR_PATH)
    with app.app_context():
        idp.update_provider(idp.IdentityProvider.by_slug("gpr"), enabled=False)
        with pytest.raises(idp.ProviderChangeError) as refused:
            idp.create_provider("dhis2", slug="other", label="Other", secrets={"client_secret": SECRET},
                                      settings={"base_url": oidc.url + "/", "redirect_uri": PUBLIC + GPR_PATH})
        assert "Ministry DHIS2" in str(refused.value.errors["redirect_uri"])
    admin = _admin_browser(app, make_user)
    response = post_form(admin, "/admin/providers/new?type=dhis2", {
        "slug": "other", "label": "Other", "enabled": "y", "setting_base_url": oidc.url + "/",
        "setting_client_id": "geologin", "setting_client_secret": SECRET, "setting_generation": "auto",
        "setting_redirect_uri": PUBLIC + GPR_PATH})
    assert response.status_code == 400
    assert "already used by Ministry DHIS2" in response.get_data(as_text=True)
    result = app.test_cli_runner().invoke(args=[
        "providers", "add", "dhis2", "--slug", "other", "--label", "Other", "--base-url", oidc.url + "/",
        "--redirect-uri", PUBLIC + GPR_PATH, "--client-secret-stdin"], input=SECRET + "\n")
    assert result.exit_code != 0 and "already used by Ministry DHIS2" in result.output
    # Editing an existing provider onto the taken path is refused the same way.
    register(app, oidc, "oidc")
    result = app.test_cli_runner().invoke(args=["providers", "edit", "oidc", "--set",
                                                f"redirect_uri={PUBLIC}{GPR_PATH}"])
    assert result.exit_code != 0 and "already used by Ministry DHIS2" in result.output
    with app.app_context():
        assert idp.settings_of(idp.IdentityProvider.by_slug("oidc"))["redirect_uri"] is None
        assert idp.IdentityProvider.by_slug("other") is None


def test_sec_05_attacker_provider_on_a_shared_path_cannot_complete_another_providers_login(
        app, client, legacy, dhis2_servers, make_user):
    """Alice starts a login at the legacy server (no iss) through the GeoPrism path; meanwhile that
    provider moves to its own callback and an attacker's server takes the GeoPrism path. Her pending
    answer, delivered on the GeoPrism path, must not complete the legacy provider's login."""
    make_user("alice", password=None)
    register(app, legacy, "gpr", allow=["alice"], redirect_uri=PUBLIC + GPR_PATH)
    location = Dhis2User(*ALICE).authorize(start(client, "gpr"))
    assert urlsplit(location).path == GPR_PATH
    attacker = dhis2_servers("2.41.1")
    with app.app_context():
        idp.update_provider(idp.IdentityProvider.by_slug("gpr"), settings={"redirect_uri": ""})
    register(app, attacker, "other", allow_all=True, redirect_uri=PUBLIC + GPR_PATH)
    back_to_geologin(client, location)
    assert client.get("/").status_code == 302
    outcome, reason, provider, _, detail = last_login_event(app)
    assert (outcome, reason, provider) == ("failure", "state_invalid", "gpr")
    assert "redirect URI" in detail


def test_sec_05_providers_sharing_a_path_from_before_the_rule_cannot_log_in_through_it(
        app, client, legacy, dhis2_servers, make_user):
    """A database from before the one-provider-per-redirect-URI rule may hold two providers on the same
    path: a login through that path is refused (and enabling a second one is refused) until one moves."""
    make_user("alice", password=None)
    register(app, legacy, "gpr", allow=["alice"], redirect_uri=PUBLIC + GPR_PATH)
    attacker = dhis2_servers("2.41.1")
    register(app, attacker, "other", allow_all=True)
    with app.app_context():
        other = idp.IdentityProvider.by_slug("other")
        other.settings_json = json.dumps({**idp.settings_of(other), "redirect_uri": PUBLIC + GPR_PATH})
        db.session.commit()
    login_via_dhis2(client, "gpr")
    assert client.get("/").status_code == 302
    outcome, reason, provider, _, detail = last_login_event(app)
    assert (outcome, reason, provider) == ("failure", "not_configured", "gpr")
    assert "other" in detail
    with app.app_context():
        idp.update_provider(idp.IdentityProvider.by_slug("other"), enabled=False)
    result = app.test_cli_runner().invoke(args=["providers", "enable", "other"])
    assert result.exit_code != 0 and "already used by DHIS2 gpr" in result.output
    with app.app_context():
        assert not idp.IdentityProvider.by_slug("other").enabled
    login_via_dhis2(client, "gpr")
    assert logged_in_as(client) == "alice"


BOB = ("bob", "Bob-pass-123")


def test_sec_14_administrator_is_never_reached_through_every_active_user(app, client, legacy, make_user):
    """An admin of the DHIS2 server (another organisation) names an account like a local administrator: a
    provider open to every active user must not log it in; a permission of its own does."""
    make_user("alice", password=None, is_admin=True)
    make_user("bob", password=None)
    register(app, legacy, "legacy", allow_all=True)
    login_via_dhis2(client, "legacy")
    assert client.get("/").status_code == 302
    assert "administrators log in through DHIS2 legacy only when allowed for it one by one" in flashed_error(client)
    outcome, reason, provider, target, detail = last_login_event(app)
    assert (outcome, reason, provider, target) == ("failure", "not_allowed", "legacy", "alice")
    assert "administrator" in detail
    login_via_dhis2(app.test_client(), "legacy", user=BOB)  # everyone else still gets in
    assert last_login_event(app)[:4] == ("success", None, "legacy", "bob")
    with app.app_context():
        idp.allow([User.by_username("alice")], idp.IdentityProvider.by_slug("legacy"), actor="t")
    login_via_dhis2(client, "legacy")
    assert logged_in_as(client) == "alice"


def test_sec_28_switching_to_allowed_users_only_ends_sessions_of_users_not_on_the_list(
        app, client, legacy, make_user):
    from geologin.accounts import users

    make_user("alice", password=None)
    make_user("bob", password=None)
    register(app, legacy, "legacy", allow=["bob"], allow_all=True)
    login_via_dhis2(client, "legacy")
    bob = app.test_client()
    login_via_dhis2(bob, "legacy", user=BOB)
    assert logged_in_as(client) == "alice" and logged_in_as(bob) == "bob"
    with app.app_context():
        idp.update_provider(idp.IdentityProvider.by_slug("legacy"), allow_all_users=False, actor="t")
    assert client.get("/").status_code == 302  # alice is not on the list
    assert logged_in_as(bob) == "bob"
    # Made an administrator, bob needs his own permission for that server: he has one, so he stays.
    with app.app_context():
        users.update_user(User.by_username("bob"), is_admin=True, actor="t")
    assert logged_in_as(bob) == "bob"
    # Made an administrator, alice loses the session "every active user" gave her: she has no permission of
    # her own.
    with app.app_context():
        idp.update_provider(idp.IdentityProvider.by_slug("legacy"), allow_all_users=True, actor="t")
    login_via_dhis2(client, "legacy")
    assert logged_in_as(client) == "alice"
    with app.app_context():
        users.update_user(User.by_username("alice"), is_admin=True, actor="t")
    assert client.get("/").status_code == 302
    assert logged_in_as(bob) == "bob"


def test_sec_28_switching_off_password_login_ends_password_sessions(app, client, legacy, make_user):
    from geologin.accounts import users

    make_user("alice")
    register(app, legacy, "legacy", allow=["alice"])
    login_via_dhis2(client, "legacy")
    password_browser = app.test_client()
    assert AuthActions(password_browser).login("alice").status_code == 302
    with app.app_context():
        users.update_user(User.by_username("alice"), password_login_allowed=False, actor="t")
    assert password_browser.get("/").status_code == 302
    assert logged_in_as(client) == "alice"  # the DHIS2 session used no password


def test_reg_dhis2_242_consent_without_username_is_a_refusal_that_says_to_tick_it(app, client, oidc, make_user):
    """DHIS2 2.42's consent page: submitting without ticking "username" is a refusal. The user reads what
    to tick; the audit reads as a refusal and names the user where the browser is logged in."""
    make_user("alice")
    register(app, oidc, "oidc", label="Malaria DHIS2", allow=["alice"])
    login_via_dhis2(client, "oidc", approve=False)
    message = flashed_error(client)
    assert "You did not authorize the login at Malaria DHIS2" in message
    assert "consent page" in message and "username" in message
    assert "log out of Malaria DHIS2" in message
    outcome, reason, provider, _, detail = last_login_event(app)
    assert (outcome, reason, provider) == ("failure", "access_denied", "oidc")
    assert "refused on the DHIS2 consent page" in detail and "username" in detail
    assert not detail.startswith("server returned")
    # Logged in already (with a password), alice tries DHIS2 and refuses: the audit names her.
    assert AuthActions(client).login("alice").status_code == 302
    started = client.post("/auth/start", data={"csrf_token": csrf_from(client.get("/")), "provider": "oidc"})
    back_to_geologin(client, Dhis2User(*ALICE).authorize(started.headers["Location"], approve=False))
    with app.app_context():
        event = db.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "login")
                                   .order_by(AuditEvent.id.desc())).first()
        assert (event.reason_code, event.actor) == ("access_denied", "alice")
    assert logged_in_as(client) == "alice"  # a refused login changes nothing


@pytest.mark.parametrize("reason", ["unknown_user", "not_allowed", "identity_mismatch", "access_denied"])
def test_reg_refusals_say_to_log_out_of_the_server_to_use_another_account(app, client, legacy, make_user,
                                                                          reason):
    if reason != "unknown_user":
        make_user("alice", password=None)
    else:
        make_user("bob", password=None)  # someone else; alice does not exist here
    register(app, legacy, "legacy", label="Ministry DHIS2", allow=["alice"] if reason not in ("not_allowed", "unknown_user") else (),
             allow_all=reason == "unknown_user")
    if reason == "identity_mismatch":
        with app.app_context():
            db.session.add(ExternalIdentity(user_id=User.by_username("alice").id, subject="SomeoneElse",
                                            subject_scheme="dhis2-uid",
                                            provider_id=idp.IdentityProvider.by_slug("legacy").id))
            db.session.commit()
    login_via_dhis2(client, "legacy", approve=reason != "access_denied")
    assert last_login_event(app)[1] == reason
    assert "To log in with another Ministry DHIS2 account, log out of Ministry DHIS2 first." in flashed_error(client)


# -- what DHIS2 says about the person: groups, roles, org units (issue 18) ---------------------------------
def stored_attributes(app, username="alice"):
    """(group names, role names, org unit paths, seen_at) stored for ``username``'s one DHIS2 binding."""
    from geologin.idp import attributes

    with app.app_context():
        binding = db.session.scalars(select(ExternalIdentity).where(
            ExternalIdentity.user_id == User.by_username(username).id)).one()
        said = attributes.as_dict(binding)
    return ([g["name"] for g in said["groups"]], [r["name"] for r in said["attributes"].get("roles", [])],
            [u.get("path") for u in said["attributes"].get("org_units", [])], said["seen_at"])


@pytest.mark.parametrize("version, base_path", [("2.40.3", "/dhis"), ("2.37.9", None), ("2.42.5", None)])
def test_groups_roles_and_org_units_from_api_me_are_stored_and_replaced_at_the_next_login(
        app, client, dhis2_servers, make_user, version, base_path):
    """Both generations: /api/me asked for exactly what geologin reads (2.42: with the access token after the
    id_token); a change at DHIS2 replaces what the previous login stored."""
    server = dhis2_servers(version, base_path)
    make_user("alice", password=None)
    slug = "oidc" if version >= "2.42" else "legacy"
    register(app, server, slug, allow=["alice"])
    login_via_dhis2(client, slug)
    assert logged_in_as(client) == "alice"
    groups, roles, units, seen_at = stored_attributes(app)
    assert groups == ["Malaria programme", "Data managers"] and roles == ["Data entry clerk"]
    assert units == ["/ImspTQPwCqd/O6uvpzGd5pu", "/ImspTQPwCqd/fdc6uOvgoji"] and seen_at is not None
    me_calls = [entry for entry in server.control("log", method="GET") if entry.get("path", "").endswith("/api/me")]
    assert me_calls and all("userGroups[id,name]" in json.dumps(entry) for entry in me_calls)
    server.control("users", {"username": "alice", "userGroups": [{"id": "B6JNeAQ6akX", "name": "HIV programme"}],
                             "organisationUnits": [], "userRoles": [{"id": "RoleUid0001", "name": "Viewer"}]})
    AuthActions(client).logout()
    login_via_dhis2(client, slug)
    assert stored_attributes(app)[:3] == (["HIV programme"], ["Viewer"], [])


def test_dhis2_2420_refusing_its_access_token_on_api_me_still_logs_in_and_says_why(app, client, dhis2_servers,
                                                                                make_user):
    """2.42.0-2.42.4 accept their own access token on /api only when configured to: the login goes on with
    the id_token's username, nothing is known of the memberships, and the audit event says why."""
    server = dhis2_servers("2.42.0", "/dhis")
    make_user("alice", password=None)
    register(app, server, "oidc", allow=["alice"])
    login_via_dhis2(client, "oidc")
    assert logged_in_as(client) == "alice"
    assert stored_attributes(app)[:3] == ([], [], [])
    outcome, _, _, _, detail = last_login_event(app)
    assert outcome == "success" and "groups, roles and org units unknown" in detail and "HTTP 401" in detail


def test_sec_48_sec_49_bad_memberships_from_dhis2_are_cleaned_and_bounded_never_a_500(app, client, legacy, make_user):
    legacy.control("users", {"username": "alice", "userGroups": (
        [{"id": "Ctl\x00Grp\x1b1", "name": "Evil\r\nname\x07"}, {"id": 12345, "name": "number id"},
         {"id": "x" * 5000, "name": "y" * 5000}, {"name": "no id"}]
        + [{"id": f"G{n:010d}", "name": f"Group {n}"} for n in range(700)])})
    make_user("alice", password=None)
    register(app, legacy, "legacy", allow=["alice"])
    response = login_via_dhis2(client, "legacy")
    assert response.status_code == 302 and logged_in_as(client) == "alice"
    groups = stored_attributes(app)[0]
    assert len(groups) == 500 and groups[0] == "Evilname" and len(groups[1]) == 255
    assert "groups: " in last_login_event(app)[4] and "beyond 500 left out" in last_login_event(app)[4]
