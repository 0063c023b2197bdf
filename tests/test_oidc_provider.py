"""geologin as an OpenID provider (geologin/apps), driven as an application drives it: authorization requests
built with Authlib's client helpers, the browser's part with Flask's test client, ID tokens checked with
joserfc against the published keys. Tests are named after the OpenID Foundation conformance tests where one
matches (test_oidcc_*) or the security checklist's items 56-68 (test_sec_*)."""
import base64
import threading
import time
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs

import pytest
from authlib.oidc.core.util import create_half_hash
from joserfc import jwt
from joserfc.jwk import RSAKey
from sqlalchemy import select, update

from geologin.apps import clients
from geologin.extensions import db
from geologin.models import AuditEvent, AuthorizationCode, OAuthToken, User, UserSession, utcnow
from tests.conftest import STRONG_PASSWORD, csrf_from
from tests.oidc_rp import ISSUER, POST_LOGOUT_URI, REDIRECT_URI, RelyingParty, query_of, register


@pytest.fixture
def alice(make_user):
    make_user("alice", email="alice@example.org", display_name="Alice Banda")
    return "alice"


@pytest.fixture
def rp(app, client):
    client_id, secret = register(app)
    return RelyingParty(client, client_id, secret)


def _user(app, username):
    with app.app_context():
        user = User.by_username(username)
        db.session.expunge(user)
        return user


def _events(app, event_type):
    with app.app_context():
        return list(db.session.scalars(select(AuditEvent).where(AuditEvent.event_type == event_type)
                                       .order_by(AuditEvent.id)))


def _logged_in(client):
    return client.get("/").status_code == 200


# --- the whole flow ------------------------------------------------------------------------------------------

def test_oidcc_server(app, client, auth, alice, rp):
    """Discovery, login, consent, code, tokens, a verified ID token and userinfo: what every application needs."""
    config = client.get("/.well-known/openid-configuration").get_json()
    assert config["issuer"] == ISSUER
    assert config["authorization_endpoint"] == ISSUER + "/oauth/authorize"
    assert config["code_challenge_methods_supported"] == ["S256"]
    assert config["response_types_supported"] == ["code"]
    assert "HS256" not in config["id_token_signing_alg_values_supported"]

    start = client.get(rp.authorization_url())
    assert start.status_code == 302 and start.headers["Location"].startswith("/login?next=")
    auth.login("alice")
    tokens = rp.sign_in()
    claims, header = rp.id_token_claims(tokens["id_token"])
    user = _user(app, "alice")
    assert claims["sub"] == user.subject and claims["sub"] != "alice"
    assert claims["azp"] == rp.client_id and claims["amr"] == ["pwd"] and "idp" not in claims
    assert claims["at_hash"] == create_half_hash(tokens["access_token"], "RS256").decode()
    assert claims["exp"] - claims["iat"] == app.config["OIDC_ID_TOKEN_SECONDS"]
    assert abs(claims["auth_time"] - time.time()) < 60 and claims["sid"]
    assert claims["preferred_username"] == "alice" and claims["name"] == "Alice Banda"
    assert claims["email"] == "alice@example.org" and claims["email_verified"] is False
    assert header["kid"] in {key["kid"] for key in client.get("/oauth/jwks").get_json()["keys"]}
    assert "refresh_token" not in tokens  # neither offline_access nor refresh tokens for this application

    info = rp.userinfo(tokens["access_token"])
    assert info.status_code == 200
    assert info.get_json() == {"sub": user.subject, "preferred_username": "alice", "name": "Alice Banda",
                               "email": "alice@example.org", "email_verified": False,
                               "updated_at": info.get_json()["updated_at"]}
    assert [e.outcome for e in _events(app, "app.authorize")] == ["success"]
    assert [e.outcome for e in _events(app, "app.token")] == ["success"]


def test_oidcc_scope_profile_only_releases_no_email(app, client, auth, alice, rp):
    auth.login("alice")
    tokens = rp.sign_in(scope="openid profile")
    claims, _ = rp.id_token_claims(tokens["id_token"])
    assert "email" not in claims and claims["preferred_username"] == "alice"
    assert "email" not in rp.userinfo(tokens["access_token"]).get_json()


def test_oidcc_client_secret_post(app, client, auth, alice, rp):
    auth.login("alice")
    code = rp.code_from(rp.authorize())
    response = rp.token_request({"grant_type": "authorization_code", "code": code, "redirect_uri": REDIRECT_URI,
                                 "code_verifier": rp.verifier}, auth="post")
    assert response.status_code == 200 and response.headers["Cache-Control"] == "no-store"


def test_oidcc_userinfo_post_body(app, client, auth, alice, rp):
    auth.login("alice")
    tokens = rp.sign_in()
    response = rp.userinfo(tokens["access_token"], method="POST")
    assert response.status_code == 200 and response.get_json()["preferred_username"] == "alice"


def test_oidcc_userinfo_bad_token(client, alice, rp):
    response = rp.userinfo("not-a-token")
    assert response.status_code == 401 and "invalid_token" in response.headers.get("WWW-Authenticate", "")
    assert rp.userinfo("x" * 5000).status_code == 401


# --- checklist H ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("response_type", ["token", "id_token", "code id_token", "code token"])
def test_sec_56_only_the_code_flow(client, auth, alice, rp, response_type):
    auth.login("alice")
    response = client.get(rp.authorization_url(response_type=response_type))
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(REDIRECT_URI) and "#" not in location
    params = query_of(location)
    assert params["error"] == "unsupported_response_type" and params["iss"] == ISSUER and "code" not in params


def test_oidcc_ensure_registered_redirect_uri(client, auth, alice, rp):
    """An unregistered redirect URI, or one differing by a character, gets a page at geologin: no redirect."""
    auth.login("alice")
    for uri in ("https://evil.example.org/callback", REDIRECT_URI + "/", REDIRECT_URI.upper(), REDIRECT_URI + "?x=1"):
        rp.redirect_uri = uri
        response = client.get(rp.authorization_url())
        assert response.status_code == 400 and "Location" not in response.headers
        assert "cannot accept" in response.get_data(as_text=True)


def test_sec_57_unknown_client_gets_a_page_not_a_redirect(client, auth, alice):
    auth.login("alice")
    stranger = RelyingParty(client, "no-such-client")
    response = client.get(stranger.authorization_url())
    assert response.status_code == 400 and "Location" not in response.headers
    assert client.get("/oauth/authorize").status_code == 400  # no parameters at all


def test_sec_58_pkce_s256_only_required_for_public_clients(app, client, auth, alice):
    public_id, secret = register(app, "Dashboard SPA", public=True)
    assert secret is None
    spa = RelyingParty(client, public_id)
    auth.login("alice")
    without = client.get(spa.authorization_url(pkce=False))
    assert query_of(without.headers["Location"])["error"] == "invalid_request"
    plain = client.get(spa.authorization_url(pkce=False, code_challenge="a" * 43, code_challenge_method="plain"))
    assert query_of(plain.headers["Location"])["error"] == "invalid_request"

    code = spa.code_from(spa.authorize())
    wrong = spa.redeem(code, code_verifier="b" * 43)
    assert wrong.status_code == 400 and wrong.get_json()["error"] == "invalid_grant"
    code = spa.code_from(spa.authorize())
    assert spa.redeem(code).status_code == 200  # the right verifier, no secret

    confidential_id, secret = register(app, "Grafana")
    grafana = RelyingParty(client, confidential_id, secret)
    code = grafana.code_from(grafana.authorize(pkce=False))  # PKCE honoured for all, required for public clients
    assert grafana.redeem(code).status_code == 200


def test_oidcc_codereuse(app, client, auth, alice, rp):
    """A code redeemed twice: the second fails, and the tokens the first one gave are revoked (item 59)."""
    auth.login("alice")
    code = rp.code_from(rp.authorize())
    first = rp.redeem(code)
    assert first.status_code == 200
    again = rp.redeem(code)
    assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"
    assert rp.userinfo(first.get_json()["access_token"]).status_code == 401
    assert [e.reason_code for e in _events(app, "app.code_reuse")] == ["code_reuse"]


def test_sec_59_codes_live_60_seconds(app, client, auth, alice, rp):
    auth.login("alice")
    code = rp.code_from(rp.authorize())
    with app.app_context():
        db.session.execute(update(AuthorizationCode).values(expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
        row = db.session.scalar(select(AuthorizationCode))
        assert row.expires_at - row.created_at <= timedelta(seconds=61)
    assert rp.redeem(code).get_json()["error"] == "invalid_grant"


def test_sec_60_sub_is_stable_and_not_the_username(app, client, auth, alice, rp):
    auth.login("alice")
    first, _ = rp.id_token_claims(rp.sign_in()["id_token"])
    auth.logout()
    auth.login("alice")
    second, _ = rp.id_token_claims(rp.sign_in()["id_token"])
    assert first["sub"] == second["sub"] and first["sid"] != second["sid"]
    assert "alice" not in first["sub"]


def test_sec_60_es256_application(app, client, auth, alice):
    client_id, secret = register(app, "ES app", id_token_alg="ES256")
    rp = RelyingParty(client, client_id, secret)
    auth.login("alice")
    claims, header = rp.id_token_claims(rp.sign_in()["id_token"])
    assert header["alg"] == "ES256" and claims["sub"]


def test_sec_61_iss_in_every_authorization_response(client, auth, alice, rp):
    auth.login("alice")
    page = client.get(rp.authorization_url())
    denied = rp.decide(page, "deny")
    params = query_of(denied.headers["Location"])
    assert params["error"] == "access_denied" and params["iss"] == ISSUER and params["state"] == rp.state
    granted = rp.authorize()
    assert query_of(granted.headers["Location"])["iss"] == ISSUER


def test_oidcc_prompt_none_not_logged_in(client, alice, rp):
    response = client.get(rp.authorization_url(prompt="none"))
    params = query_of(response.headers["Location"])
    assert params["error"] == "login_required" and params["iss"] == ISSUER and params["state"] == rp.state


def test_oidcc_prompt_none_logged_in(client, auth, alice, rp):
    auth.login("alice")
    rp.sign_in()  # consent given once
    response = client.get(rp.authorization_url(prompt="none"))
    assert "code" in query_of(response.headers["Location"])


def test_oidcc_prompt_none_without_consent(client, auth, alice, rp):
    auth.login("alice")
    response = client.get(rp.authorization_url(prompt="none"))
    assert query_of(response.headers["Location"])["error"] == "consent_required"


def test_oidcc_prompt_login(app, client, auth, alice, rp):
    """prompt=login shows the login form although the person is logged in; the code comes after a new login."""
    auth.login("alice")
    rp.sign_in()
    response = client.get(rp.authorization_url(prompt="login"))
    assert response.status_code == 302 and "prompt=login" in response.headers["Location"]
    login_page = client.get(response.headers["Location"])
    assert login_page.status_code == 200 and 'name="password"' in login_page.get_data(as_text=True)
    next_url = parse_qs(response.headers["Location"].split("?", 1)[1])["next"][0]
    assert "prompt" not in parse_qs(next_url.split("?", 1)[1])
    back = client.post("/login", data={"csrf_token": csrf_from(login_page), "username": "alice",
                                       "password": STRONG_PASSWORD, "next": next_url})
    code = rp.code_from(client.get(back.headers["Location"]))
    assert rp.redeem(code).status_code == 200
    assert len(_events(app, "login")) == 2


def test_sec_62_oidcc_max_age_1(client, auth, alice, rp):
    auth.login("alice")
    rp.sign_in()
    time.sleep(2.1)
    response = client.get(rp.authorization_url(max_age="1"))
    assert response.status_code == 302 and response.headers["Location"].startswith("/login?")
    bad = client.get(rp.authorization_url(max_age="soon"))
    assert query_of(bad.headers["Location"])["error"] == "invalid_request"


def test_oidcc_login_hint_and_ui_locales(client, alice, rp):
    response = client.get(rp.authorization_url(login_hint="alice", ui_locales="fr-CA en"))
    assert "geologin_locale=fr" in response.headers.get("Set-Cookie", "")
    page = client.get(response.headers["Location"])
    html = page.get_data(as_text=True)
    assert 'lang="fr"' in html and 'value="alice"' in html


def test_oidcc_refresh_token(app, client, auth, alice, rp):
    """offline_access gives a refresh token; each refresh rotates it; a rotated one used again revokes the whole
    chain (item 64)."""
    auth.login("alice")
    tokens = rp.sign_in(scope="openid profile offline_access")
    first_refresh = tokens["refresh_token"]
    refreshed = rp.refresh(first_refresh)
    assert refreshed.status_code == 200
    new = refreshed.get_json()
    assert new["refresh_token"] != first_refresh and new["access_token"] != tokens["access_token"]
    claims, _ = rp.id_token_claims(new["id_token"], nonce=False)
    assert claims["sub"] == _user(app, "alice").subject
    assert rp.userinfo(new["access_token"]).status_code == 200

    replay = rp.refresh(first_refresh)
    assert replay.status_code == 400 and replay.get_json()["error"] == "invalid_grant"
    assert rp.userinfo(new["access_token"]).status_code == 401
    assert rp.refresh(new["refresh_token"]).status_code == 400
    assert [e.reason_code for e in _events(app, "app.refresh_reuse")] == ["refresh_token_reuse"]


def test_sec_64_session_tokens_die_at_logout_offline_ones_do_not(app, client, auth, alice, rp):
    auth.login("alice")
    online = rp.sign_in()
    offline = rp.sign_in(scope="openid offline_access")
    auth.logout()
    assert rp.userinfo(online["access_token"]).status_code == 401
    assert rp.refresh(offline["refresh_token"]).status_code == 200


def test_sec_64_everything_dies_when_the_user_is_deactivated(app, client, auth, alice, rp, admin):
    auth.login("alice")
    offline = rp.sign_in(scope="openid offline_access")
    from geologin.accounts import users
    with app.app_context():
        users.update_user(User.by_username("alice"), active=False, actor="test")
    assert rp.userinfo(offline["access_token"]).status_code == 401
    assert rp.refresh(offline["refresh_token"]).get_json()["error"] == "invalid_grant"


def test_sec_64_everything_dies_when_the_user_is_deleted(app, client, auth, alice, rp):
    auth.login("alice")
    offline = rp.sign_in(scope="openid offline_access")
    from geologin.accounts import users
    with app.app_context():
        users.delete_user(User.by_username("alice"), actor="test")
        assert db.session.scalar(select(OAuthToken)) is None
    assert rp.refresh(offline["refresh_token"]).status_code == 400


def test_sec_65_client_cannot_use_another_clients_code_or_a_wrong_secret(app, client, auth, alice, rp):
    other_id, other_secret = register(app, "Other")
    auth.login("alice")
    code = rp.code_from(rp.authorize())
    thief = RelyingParty(client, other_id, other_secret)
    thief.verifier = rp.verifier
    assert thief.redeem(code).get_json()["error"] == "invalid_grant"
    wrong = RelyingParty(client, rp.client_id, "not-the-secret")
    wrong.verifier = rp.verifier
    response = wrong.redeem(rp.code_from(rp.authorize()))
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_client"
    public = RelyingParty(client, rp.client_id)  # a confidential client may not skip its secret
    public.verifier = rp.verifier
    assert public.redeem(rp.code_from(rp.authorize())).get_json()["error"] == "invalid_client"


def test_sec_66_access_rules_at_authorize_refresh_and_userinfo(app, client, auth, alice, make_user):
    make_user("bob")
    client_id, secret = register(app, "Registry", all_users=False)
    rp = RelyingParty(client, client_id, secret)
    with app.app_context():
        clients.allow(clients.find("Registry"), [User.by_username("alice")], actor="test")
    auth.login("bob")
    refused = client.get(rp.authorization_url())
    assert refused.status_code == 403 and "Registry" in refused.get_data(as_text=True)
    assert "error=access_denied" in refused.get_data(as_text=True)
    silent = client.get(rp.authorization_url(prompt="none"))
    assert query_of(silent.headers["Location"])["error"] == "access_denied"
    assert [e.reason_code for e in _events(app, "app.authorize") if e.outcome == "failure"][:1] == ["not_allowed"]
    auth.logout()

    auth.login("alice")
    tokens = rp.sign_in(scope="openid offline_access")
    with app.app_context():
        clients.disallow(clients.find("Registry"), [User.by_username("alice")], actor="test")
    assert rp.userinfo(tokens["access_token"]).status_code == 401
    assert rp.refresh(tokens["refresh_token"]).get_json()["error"] == "invalid_grant"


def test_sec_66_only_through_given_identity_providers(app, client, auth, alice):
    from geologin.idp import service
    with app.app_context():
        service.create_provider("oidc", slug="moh", label="MoH", settings={
            "issuer": "https://id.example.org", "client_id": "geologin"}, secrets={"client_secret": "s"})
    client_id, secret = register(app, "Reports", providers=["moh"])
    rp = RelyingParty(client, client_id, secret)
    auth.login("alice")  # with a password
    assert client.get(rp.authorization_url()).status_code == 403
    with app.app_context():  # as if alice had come through the MoH's identity provider
        from geologin.idp import permissions
        from geologin.models import IdentityProvider
        permissions.allow([User.by_username("alice")], IdentityProvider.by_slug("moh"), actor="test")
        db.session.execute(update(UserSession).values(auth_method="provider:moh"))
        db.session.commit()
    response = rp.authorize()
    claims, _ = rp.id_token_claims(rp.redeem(rp.code_from(response)).get_json()["id_token"])
    assert claims["amr"] == ["fed"] and claims["idp"] == "moh"


def test_consent_is_remembered_withdrawn_and_skipped_for_first_party(app, client, auth, alice, rp):
    auth.login("alice")
    rp.sign_in()
    again = client.get(rp.authorization_url())
    assert again.status_code == 302  # no second consent page
    more = client.get(rp.authorization_url(scope="openid profile email offline_access"))
    assert more.status_code == 200 and "consent_decision" in more.get_data(as_text=True)  # asks for more

    assert "/account/applications" in client.get("/account/password").get_data(as_text=True)  # the account page
    page = client.get("/account/applications")
    assert "Superset" in page.get_data(as_text=True)
    with app.app_context():
        application_id = clients.find("Superset").id
    tokens = rp.sign_in()
    withdrawn = client.post(f"/account/applications/{application_id}/withdraw", data={"csrf_token": csrf_from(page)})
    assert withdrawn.status_code == 303
    assert rp.userinfo(tokens["access_token"]).status_code == 401
    assert client.get(rp.authorization_url()).status_code == 200  # asks again
    assert [e.outcome for e in _events(app, "app.consent_withdrawn")] == ["success"]

    first_id, first_secret = register(app, "Intranet", first_party=True)
    intranet = RelyingParty(client, first_id, first_secret)
    assert client.get(intranet.authorization_url()).status_code == 302


def test_revocation_and_introspection(app, client, auth, alice, rp):
    auth.login("alice")
    tokens = rp.sign_in(scope="openid offline_access")
    basic = {"Authorization": "Basic " + base64.b64encode(f"{rp.client_id}:{rp.client_secret}".encode()).decode()}
    live = client.post("/oauth/introspect", data={"token": tokens["access_token"]}, headers=basic).get_json()
    assert live["active"] is True and live["sub"] == _user(app, "alice").subject and live["client_id"] == rp.client_id

    other_id, other_secret = register(app, "Other")
    other = {"Authorization": "Basic " + base64.b64encode(f"{other_id}:{other_secret}".encode()).decode()}
    foreign = client.post("/oauth/introspect", data={"token": tokens["access_token"]}, headers=other)
    assert foreign.get_json() == {"active": False} or foreign.status_code in (400, 401, 403)

    refresh = client.post("/oauth/introspect", data={"token": tokens["refresh_token"]}, headers=basic).get_json()
    assert refresh["active"] is True and refresh["token_type"] == "refresh_token"
    assert client.post("/oauth/revoke", data={"token": tokens["refresh_token"]}, headers=basic).status_code == 200
    assert client.post("/oauth/introspect", data={"token": tokens["access_token"]},
                       headers=basic).get_json() == {"active": False}
    assert rp.refresh(tokens["refresh_token"]).status_code == 400


def test_introspection_of_an_expired_access_token_is_inactive(app, client, auth, alice, rp):
    auth.login("alice")
    tokens = rp.sign_in(scope="openid offline_access")
    with app.app_context():
        db.session.execute(update(OAuthToken).values(access_expires_at=utcnow() - timedelta(seconds=1)))
        db.session.commit()
    basic = {"Authorization": "Basic " + base64.b64encode(f"{rp.client_id}:{rp.client_secret}".encode()).decode()}
    assert client.post("/oauth/introspect", data={"token": tokens["access_token"]},
                       headers=basic).get_json() == {"active": False}
    assert client.post("/oauth/introspect", data={"token": tokens["refresh_token"]},
                       headers=basic).get_json()["active"] is True


def test_oidcc_rp_initiated_logout(app, client, auth, alice, rp):
    auth.login("alice")
    tokens = rp.sign_in()
    response = client.get("/oauth/logout?" + _query(id_token_hint=tokens["id_token"],
                                                    post_logout_redirect_uri=POST_LOGOUT_URI, state="s1"))
    assert response.status_code == 302 and response.headers["Location"] == POST_LOGOUT_URI + "?state=s1"
    assert not _logged_in(client)
    assert rp.userinfo(tokens["access_token"]).status_code == 401


def test_oidcc_rp_initiated_logout_bad_post_logout_uri(client, auth, alice, rp):
    auth.login("alice")
    tokens = rp.sign_in()
    response = client.get("/oauth/logout?" + _query(id_token_hint=tokens["id_token"],
                                                    post_logout_redirect_uri="https://evil.example.org/"))
    assert "Location" not in response.headers or "evil" not in response.headers["Location"]


def test_sec_67_no_valid_hint_asks_and_never_redirects(app, client, auth, alice, rp):
    auth.login("alice")
    rp.sign_in()
    forged_key = RSAKey.generate_key(2048, parameters={"kid": "forged"})
    forged = jwt.encode({"alg": "RS256", "kid": "forged"}, {"iss": ISSUER, "aud": rp.client_id,
                                                            "sub": _user(app, "alice").subject}, forged_key)
    for query in (_query(post_logout_redirect_uri=POST_LOGOUT_URI),
                  _query(id_token_hint=forged, post_logout_redirect_uri=POST_LOGOUT_URI)):
        page = client.get("/oauth/logout?" + query)
        assert page.status_code == 200 and "Location" not in page.headers
        assert "Log out of geologin?" in page.get_data(as_text=True)
        assert _logged_in(client)
    confirmed = client.post("/oauth/logout?" + _query(post_logout_redirect_uri=POST_LOGOUT_URI),
                            data={"csrf_token": csrf_from(page), "confirm": "yes"})
    assert confirmed.status_code == 200 and "Location" not in confirmed.headers
    assert not _logged_in(client)


def _query(**params):
    from urllib.parse import urlencode
    return urlencode(params)


class _Receiver(BaseHTTPRequestHandler):
    received = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        type(self).received.append(parse_qs(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def logout_receiver():
    _Receiver.received = []
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/backchannel", _Receiver.received
    server.shutdown()


def test_sec_68_backchannel_logout(app, client, auth, alice, logout_receiver):
    """geologin's own logout button tells the application: a signed logout token with sub, sid and the
    event, never a nonce. An application that does not answer holds nothing up."""
    uri, received = logout_receiver
    client_id, secret = register(app, "Jupyter", backchannel_logout_uri=uri)
    rp = RelyingParty(client, client_id, secret)
    register(app, "Down", backchannel_logout_uri="http://127.0.0.1:9/backchannel")
    down = RelyingParty(client, clients_id(app, "Down"), None)
    auth.login("alice")
    id_claims, _ = rp.id_token_claims(rp.sign_in()["id_token"])
    started = time.monotonic()
    auth.logout()
    assert time.monotonic() - started < 5
    assert len(received) == 1
    token = jwt.decode(received[0]["logout_token"][0], rp.key_set(), algorithms=["RS256"])
    assert token.header["typ"] == "logout+jwt"
    claims = token.claims
    assert claims["iss"] == ISSUER and claims["aud"] == client_id and claims["sub"] == id_claims["sub"]
    assert claims["sid"] == id_claims["sid"] and "nonce" not in claims
    assert claims["events"] == {"http://schemas.openid.net/event/backchannel-logout": {}}
    assert down is not None


def clients_id(app, name):
    with app.app_context():
        return clients.find(name).client_id


def test_sec_68_failing_application_does_not_block_logout(app, client, auth, alice):
    client_id, secret = register(app, "Down", backchannel_logout_uri="http://127.0.0.1:9/backchannel")
    rp = RelyingParty(client, client_id, secret)
    auth.login("alice")
    rp.sign_in()
    auth.logout()
    assert not _logged_in(client)
    assert [e.outcome for e in _events(app, "app.backchannel_logout")] == ["failure"]


@pytest.mark.parametrize("data", [
    {"grant_type": "authorization_code", "code": "x" * 5000},
    {"grant_type": "authorization_code"},
    {"grant_type": "password", "username": "alice", "password": "x"},
    {"grant_type": "client_credentials"},
    {"grant_type": "refresh_token", "refresh_token": "\u00e9" * 300},
    {},
])
def test_bad_token_requests_get_oauth_errors_never_500(client, alice, rp, data):
    response = rp.token_request(data)
    assert 400 <= response.status_code < 500 and "error" in response.get_json()


def test_bad_authorization_requests_never_500(client, auth, alice, rp):
    auth.login("alice")
    for extra in ({"scope": "openid " + "x" * 3000}, {"nonce": "n" * 3000}, {"code_challenge": "short"},
                  {"prompt": "none login"}, {"max_age": "-1"}, {"client_id": "\u00e9" * 100}):
        response = client.get(rp.authorization_url(**extra))
        assert response.status_code < 500, extra


def test_tokens_dead_for_a_day_are_forgotten_at_the_next_sign_in(app, client, auth, alice, rp):
    auth.login("alice")
    old = rp.sign_in(scope="openid offline_access")
    live = rp.sign_in(scope="openid offline_access")
    with app.app_context():
        long_ago = utcnow() - timedelta(days=2)
        db.session.execute(update(OAuthToken).where(OAuthToken.id == db.session.scalar(select(OAuthToken.id)
                                                                                       .order_by(OAuthToken.id)))
                           .values(access_expires_at=long_ago, refresh_expires_at=long_ago))
        db.session.commit()
    rp.sign_in()
    with app.app_context():
        assert db.session.query(OAuthToken).count() == 2
    assert rp.refresh(old["refresh_token"]).status_code == 400
    assert rp.refresh(live["refresh_token"]).status_code == 200


def test_reg_deleting_a_user_tells_the_applications_of_their_sessions(app, client, auth, alice, logout_receiver):
    """A deleted user's sessions end by cascade: the applications signed in with them are told all the same."""
    uri, received = logout_receiver
    client_id, secret = register(app, "Jupyter", backchannel_logout_uri=uri)
    rp = RelyingParty(client, client_id, secret)
    auth.login("alice")
    id_claims, _ = rp.id_token_claims(rp.sign_in()["id_token"])
    from geologin.accounts import users
    with app.app_context():
        users.delete_user(User.by_username("alice"), actor="test")
    assert len(received) == 1
    claims = jwt.decode(received[0]["logout_token"][0], rp.key_set(), algorithms=["RS256"]).claims
    assert claims["sub"] == id_claims["sub"] and claims["sid"] == id_claims["sid"]


def test_sec_68_disallowing_a_user_ends_their_application_session_with_a_backchannel_logout(
        app, client, auth, alice, logout_receiver):
    """An administrator takes alice off an application's list: her tokens die and the application hears it at
    once, as it would at her logout (it would otherwise keep her signed in until its next refresh)."""
    uri, received = logout_receiver
    client_id, secret = register(app, "Jupyter", backchannel_logout_uri=uri, all_users=False)
    with app.app_context():
        clients.allow(clients.find("Jupyter"), [User.by_username("alice")], actor="test")
    rp = RelyingParty(client, client_id, secret)
    auth.login("alice")
    id_claims, _ = rp.id_token_claims(rp.sign_in()["id_token"])
    with app.app_context():
        clients.disallow(clients.find("Jupyter"), [User.by_username("alice")], actor="test")
    assert len(received) == 1
    claims = jwt.decode(received[0]["logout_token"][0], rp.key_set(), algorithms=["RS256"]).claims
    assert (claims["aud"], claims["sid"]) == (client_id, id_claims["sid"])
    assert client.get("/").status_code == 200  # her geologin session is hers to end


def test_sec_68_withdrawing_consent_ends_the_application_session_with_a_backchannel_logout(
        app, client, auth, alice, logout_receiver):
    uri, received = logout_receiver
    client_id, secret = register(app, "Jupyter", backchannel_logout_uri=uri)
    rp = RelyingParty(client, client_id, secret)
    auth.login("alice")
    id_claims, _ = rp.id_token_claims(rp.sign_in()["id_token"])
    page = client.get("/account/applications")
    with app.app_context():
        application_id = clients.find("Jupyter").id
    client.post(f"/account/applications/{application_id}/withdraw", data={"csrf_token": csrf_from(page)})
    assert [jwt.decode(r["logout_token"][0], rp.key_set(), algorithms=["RS256"]).claims["sid"]
            for r in received] == [id_claims["sid"]]
