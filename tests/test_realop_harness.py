"""The real-OP harness works, without geologin: the npm oidc-provider (tests/realop/op.mjs) serves a
standard discovery document and a full authorization-code flow with PKCE that Authlib and joserfc accept,
and OPUser drives its login, consent and logout pages. Skipped with a message without Node."""
import secrets
from urllib.parse import quote_plus

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from joserfc import jwt
from joserfc.jwk import KeySet

from tests.realop import (ALICE_PASSWORD, BOB_PASSWORD, CLIENT_ID, CLIENT_SECRET, OPError, OPUser, RealOP, op_config, query,
                          require_realop)

pytestmark = pytest.mark.real_op

CALLBACK = "http://127.0.0.1:8765/auth/oidc/callback"
AFTER_LOGOUT = "http://127.0.0.1:8765/logged-out"
SCOPE = "openid profile email"
SPECIAL_SECRET = "s+cret/with%25 odd:chars&="
VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"  # RFC 7636's example, for _authorization_url's challenge


def _config(**top):
    config = op_config([CALLBACK], [AFTER_LOGOUT])
    config["clients"].append({"client_id": "es256", "client_secret": CLIENT_SECRET, "redirect_uris": [CALLBACK],
                              "id_token_signed_response_alg": "ES256"})
    config["clients"].append({"client_id": "special", "client_secret": SPECIAL_SECRET, "redirect_uris": [CALLBACK]})
    config["accounts"][0]["groups"] = ["admins", "staff"]  # an extra claim: released with `profile`
    return {**config, **top}


@pytest.fixture(scope="module")
def op():
    require_realop()
    with RealOP(_config()) as server:
        yield server


@pytest.fixture(scope="module")
def op_with_path():
    require_realop()
    with RealOP(_config(conformIdTokenClaims=False), path="/realms/test") as server:
        yield server


def _login(op, username="alice", password=ALICE_PASSWORD, client_id=CLIENT_ID, user=None):
    """A full code flow with PKCE and a nonce; returns (tokens, verified id_token claims, header, user)."""
    meta = requests.get(op.discovery_url, timeout=5).json()
    client = OAuth2Session(client_id, CLIENT_SECRET, scope=SCOPE, redirect_uri=CALLBACK,
                           code_challenge_method="S256", token_endpoint_auth_method="client_secret_basic")
    verifier, nonce = generate_token(48), secrets.token_urlsafe(16)
    url, state = client.create_authorization_url(meta["authorization_endpoint"], code_verifier=verifier,
                                                 nonce=nonce)
    user = user or OPUser(username, password)
    back = user.authorize(url)
    params = query(back)
    assert back.startswith(CALLBACK + "?")
    assert params["state"] == state and params["iss"] == op.issuer and params["code"]
    tokens = client.fetch_token(meta["token_endpoint"], authorization_response=back, code_verifier=verifier)
    keys = KeySet.import_key_set(requests.get(meta["jwks_uri"], timeout=5).json())
    token = jwt.decode(tokens["id_token"], keys, algorithms=["RS256", "ES256"])
    jwt.JWTClaimsRegistry(iss={"essential": True, "value": op.issuer}, aud={"essential": True, "value": client_id},
                          nonce={"essential": True, "value": nonce}, sub={"essential": True},
                          exp={"essential": True}, iat={"essential": True}).validate(token.claims)
    return tokens, token.claims, token.header, user


def test_discovery_document(op):
    meta = op.discovery()
    base = op.issuer
    assert base.startswith("http://127.0.0.1:") and meta["issuer"] == base
    assert meta["authorization_endpoint"] == base + "/auth"
    assert meta["token_endpoint"] == base + "/token"
    assert meta["userinfo_endpoint"] == base + "/me"
    assert meta["jwks_uri"] == base + "/jwks"
    assert meta["end_session_endpoint"] == base + "/session/end"
    assert meta["authorization_response_iss_parameter_supported"] is True
    assert meta["code_challenge_methods_supported"] == ["S256"]
    assert meta["response_types_supported"] == ["code"]
    assert {"openid", "profile", "email"} <= set(meta["scopes_supported"])
    assert "client_secret_basic" in meta["token_endpoint_auth_methods_supported"]
    assert {"RS256", "ES256"} <= set(meta["id_token_signing_alg_values_supported"])
    assert {"preferred_username", "email", "email_verified", "name", "groups"} <= set(meta["claims_supported"])


def test_issuer_with_a_path(op_with_path):
    assert op_with_path.issuer.endswith("/realms/test")
    meta = op_with_path.discovery()
    assert meta["issuer"] == op_with_path.issuer
    assert meta["authorization_endpoint"] == op_with_path.issuer + "/auth"
    assert meta["end_session_endpoint"] == op_with_path.issuer + "/session/end"


def test_code_flow_with_pkce_id_token_and_userinfo(op):
    tokens, claims, header, _ = _login(op)
    assert tokens["token_type"].lower() == "bearer" and tokens["access_token"]
    assert header["alg"] == "RS256" and header["kid"]
    assert claims["sub"] == "3f2c9a7e-alice"
    # oidc-provider's default (conformIdTokenClaims): scope-requested claims are only at userinfo when an
    # access token for it is issued
    assert "email" not in claims and "preferred_username" not in claims
    info = requests.get(op.discovery()["userinfo_endpoint"], timeout=5,
                        headers={"Authorization": f"Bearer {tokens['access_token']}"}).json()
    assert info == {"sub": "3f2c9a7e-alice", "preferred_username": "alice", "name": "Alice Example",
                    "email": "alice@example.org", "email_verified": True, "groups": ["admins", "staff"]}


def test_all_claims_in_the_id_token_when_switched_on(op_with_path):
    _, claims, _, _ = _login(op_with_path)
    assert claims["preferred_username"] == "alice" and claims["email"] == "alice@example.org"
    assert claims["email_verified"] is True and claims["groups"] == ["admins", "staff"]


def test_es256_client(op):
    _, _, header, _ = _login(op, client_id="es256")
    assert header["alg"] == "ES256"


def test_second_authorization_in_the_same_browser_skips_login_and_consent(op):
    _, first, _, user = _login(op, username="bob", password=BOB_PASSWORD)
    assert user.pages == ["login", "consent"]
    _, second, _, _ = _login(op, user=user)
    assert user.pages == [] and first["sub"] == second["sub"] == "8d41b0c2-bob"


def _authorization_url(op, client_id=CLIENT_ID, **extra):
    params = {"client_id": client_id, "response_type": "code", "scope": SCOPE, "redirect_uri": CALLBACK,
              "state": "st-" + secrets.token_hex(4), "code_challenge_method": "S256",
              "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM", **extra}
    return requests.Request("GET", op.discovery()["authorization_endpoint"], params=params).prepare().url, params


def test_deny_sends_access_denied(op):
    url, params = _authorization_url(op)
    back = query(OPUser("alice", ALICE_PASSWORD).authorize(url, approve=False))
    assert back["error"] == "access_denied" and back["state"] == params["state"] and back["iss"] == op.issuer
    assert "code" not in back


def test_wrong_password_stays_on_the_login_page(op):
    url, _ = _authorization_url(op)
    user = OPUser("alice", "not-the-password")
    with pytest.raises(OPError) as failed:
        user.authorize(url)
    assert failed.value.login_failed
    page = failed.value.response
    assert page.status_code == 200 and "Wrong username or password." in page.text
    assert 'name="username"' in page.text and 'name="password"' in page.text


def test_missing_pkce_is_refused(op):
    url, params = _authorization_url(op, code_challenge=None, code_challenge_method=None)
    response = requests.get(url, allow_redirects=False, timeout=5)
    assert response.status_code == 303
    back = query(response.headers["Location"])
    assert back["error"] == "invalid_request" and "PKCE" in back["error_description"]
    assert back["state"] == params["state"] and back["iss"] == op.issuer


def _code(op, client_id=CLIENT_ID):
    return query(OPUser("alice", ALICE_PASSWORD).authorize(_authorization_url(op, client_id)[0]))["code"]


def test_token_requests_the_op_refuses(op):
    token_endpoint = op.discovery()["token_endpoint"]
    form = {"grant_type": "authorization_code", "code": _code(op), "redirect_uri": CALLBACK,
            "code_verifier": VERIFIER}
    wrong_secret = requests.post(token_endpoint, data=form, auth=(CLIENT_ID, "wrong"), timeout=5)
    assert wrong_secret.status_code == 401 and wrong_secret.json()["error"] == "invalid_client"
    wrong_verifier = requests.post(token_endpoint, data={**form, "code_verifier": "x" * 43},
                                   auth=(CLIENT_ID, CLIENT_SECRET), timeout=5)
    assert wrong_verifier.status_code == 400 and wrong_verifier.json()["error"] == "invalid_grant"
    form["code"] = _code(op)
    no_redirect_uri = requests.post(token_endpoint, data={**form, "redirect_uri": None},
                                    auth=(CLIENT_ID, CLIENT_SECRET), timeout=5)
    assert no_redirect_uri.status_code == 400 and no_redirect_uri.json()["error"] == "invalid_request"


def test_basic_credentials_are_form_urlencoded(op):
    """RFC 6749 2.3.1: client_id and secret are form-urlencoded before Base64; the OP decodes them."""
    token_endpoint = op.discovery()["token_endpoint"]
    form = {"grant_type": "authorization_code", "code": _code(op, "special"), "redirect_uri": CALLBACK,
            "code_verifier": VERIFIER}
    raw = requests.post(token_endpoint, data=form, auth=("special", SPECIAL_SECRET), timeout=5)
    assert raw.status_code == 401 and raw.json()["error"] == "invalid_client"  # "+" and "%25" decode to " " and "%"
    form["code"] = _code(op, "special")
    encoded = requests.post(token_endpoint, data=form, auth=("special", quote_plus(SPECIAL_SECRET)), timeout=5)
    assert encoded.status_code == 200 and encoded.json()["id_token"]


def test_rp_initiated_logout(op):
    tokens, _, _, user = _login(op)
    end_session = requests.Request("GET", op.discovery()["end_session_endpoint"], params={
        "id_token_hint": tokens["id_token"], "post_logout_redirect_uri": AFTER_LOGOUT, "state": "bye-1"}
    ).prepare().url
    assert query(user.logout(end_session)) == {"state": "bye-1"}
    _login(op, user=user)  # logged out at the OP: the same browser signs in and consents again (the grant
    assert user.pages == ["login", "consent"]  # belonged to the ended OP session)
    assert user.logout(end_session.replace("bye-1", "bye-2")) == AFTER_LOGOUT + "?state=bye-2"


def test_key_rotation():
    require_realop()
    with RealOP(_config()) as op:
        _, _, first, _ = _login(op)
        kids = op.rotate_keys()
        assert kids[:2] == ["rsa-2", "ec-2"] and first["kid"] in kids
        _, _, second, _ = _login(op)
        assert second["kid"] == "rsa-2"
        assert op.rotate_keys(keep_old=False) == ["rsa-3", "ec-3"]
        published = {k["kid"] for k in requests.get(op.discovery()["jwks_uri"], timeout=5).json()["keys"]}
        assert published == {"rsa-3", "ec-3"}
