"""Tests of the fake DHIS2 (tests/fakes/dhis2) over real HTTP (the server runs as a subprocess).

The fake must behave as shared/reference/dhis2-oauth.md says; these tests pin that down.
Servers come from conftest.py (one process per DHIS2 version, reset before each test).
"""
import base64
import hashlib
import json
import re
import secrets
import time
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

SECRET = "0123456789abcdef0123456789abcdef0123"
CALLBACK = "http://127.0.0.1:8765/auth/dhis2/callback"
OTHER_CALLBACK = "https://geologin.example.org/auth/dhis2/callback"
ALICE = ("alice", "Alice-pass-123")
BOB = ("bob", "Bob-pass-123")
T = 5  # seconds; timeout of every request


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------


def query(location):
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


def origin(url):
    return "/".join(url.split("/")[:3])


def submit_login_form(browser, login_url, user):
    """GET the login page, POST its form; returns the 302 response."""
    page = browser.get(login_url, timeout=T)
    assert page.status_code == 200
    assert 'name="j_username"' in page.text and 'name="j_password"' in page.text
    action = re.search(r'<form[^>]*action="([^"]+)"', page.text).group(1)
    resp = browser.post(origin(login_url) + action,
                        data={"j_username": user[0], "j_password": user[1]},
                        allow_redirects=False, timeout=T)
    assert resp.status_code == 302
    return resp


def authorize_params(**overrides):
    params = {"response_type": "code", "client_id": "geologin", "redirect_uri": CALLBACK,
              "state": "st-123"}
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def legacy_approval_page(srv, browser, user=ALICE, **overrides):
    """Authorize (logging in if needed); returns the approval page response."""
    url = f"{srv.url}/uaa/oauth/authorize"
    resp = browser.get(url, params=authorize_params(**overrides), allow_redirects=False, timeout=T)
    if resp.status_code == 302:
        back = submit_login_form(browser, resp.headers["Location"], user)
        resp = browser.get(back.headers["Location"], allow_redirects=False, timeout=T)
    return resp


def legacy_code(srv, browser=None, user=ALICE, **overrides):
    browser = browser or requests.Session()
    page = legacy_approval_page(srv, browser, user, **overrides)
    assert page.status_code == 200, page.text
    resp = browser.post(f"{srv.url}/uaa/oauth/authorize", data={"user_oauth_approval": "true"},
                        allow_redirects=False, timeout=T)
    assert resp.status_code == 303
    return query(resp.headers["Location"])["code"]


def legacy_token(srv, code, auth=("geologin", SECRET), **data):
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}
    form.update(data)
    form = {k: v for k, v in form.items() if v is not None}
    return requests.post(f"{srv.url}/uaa/oauth/token", auth=auth, data=form, timeout=T)


def pkce():
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    return verifier, challenge.rstrip(b"=").decode()


def new_authorize(srv, browser, user=ALICE, tick=None, **overrides):
    """2.42+ authorize: login if asked, consent (ticking ``tick``, default all) if asked.
    Returns the final response (302 to the client, or an error)."""
    params = authorize_params(**{"scope": "openid", "nonce": "n-0S6_WzA2Mj", **overrides})
    resp = browser.get(f"{srv.url}/oauth2/authorize", params={k: v for k, v in params.items()
                                                              if v is not None},
                       allow_redirects=False, timeout=T)
    if resp.status_code == 302 and resp.headers["Location"].startswith(srv.url):  # login
        back = submit_login_form(browser, resp.headers["Location"], user)
        resp = browser.get(back.headers["Location"], allow_redirects=False, timeout=T)
    if resp.status_code == 200 and "Consent required" in resp.text:
        resp = submit_consent(srv, browser, resp.text, tick)
    return resp


def submit_consent(srv, browser, page, tick=None):
    state = re.search(r'name="state" value="([^"]+)"', page).group(1)
    boxes = re.findall(r'type="checkbox" name="scope" value="([^"]+)"', page)
    scopes = boxes if tick is None else list(tick)
    return browser.post(f"{srv.url}/oauth2/authorize",
                        data={"client_id": "geologin", "state": state, "scope": scopes},
                        allow_redirects=False, timeout=T)


def new_code(srv, browser=None, **kw):
    resp = new_authorize(srv, browser or requests.Session(), **kw)
    assert resp.status_code == 302, resp.text
    assert resp.headers["Location"].startswith(CALLBACK), resp.headers["Location"]
    return query(resp.headers["Location"])["code"]


def new_token(srv, code, verifier=None, auth=("geologin", SECRET), **data):
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}
    if verifier:
        form["code_verifier"] = verifier
    form.update(data)
    return requests.post(f"{srv.url}/oauth2/token", auth=auth, data=form, timeout=T)


def discovery(srv):
    resp = requests.get(f"{srv.url}/.well-known/openid-configuration", timeout=T)
    assert resp.status_code == 200
    return resp.json()


def keyset(srv):
    return KeySet.import_key_set(requests.get(discovery(srv)["jwks_uri"], timeout=T).json())


def unverified_claims(token):
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def unverified_header(token):
    head = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)))


# ---------------------------------------------------------------------------------------------
# legacy ("uaa") generation
# ---------------------------------------------------------------------------------------------


def test_legacy_full_flow_240(v240):
    assert v240.url.endswith("/dhis")
    browser = requests.Session()
    url = f"{v240.url}/uaa/oauth/authorize"
    resp = browser.get(url, params=authorize_params(), allow_redirects=False, timeout=T)
    assert resp.status_code == 302
    assert resp.headers["Location"] == f"{v240.url}/dhis-web-commons/security/login.action"

    back = submit_login_form(browser, resp.headers["Location"], ALICE)
    assert urlsplit(back.headers["Location"]).path == "/dhis/uaa/oauth/authorize"
    page = browser.get(back.headers["Location"], allow_redirects=False, timeout=T)
    assert page.status_code == 200
    assert "<title>OAuth2 Confirm Access</title>" in page.text
    assert "Do you authorize 'geologin' to access your protected resources?" in page.text
    assert 'name="user_oauth_approval" value="true"' in page.text
    assert 'name="user_oauth_approval" value="false"' in page.text

    resp = browser.post(url, data={"user_oauth_approval": "true"}, allow_redirects=False,
                        timeout=T)
    assert resp.status_code == 303
    location = resp.headers["Location"]
    assert location.startswith(CALLBACK + "?")
    params = query(location)
    assert re.fullmatch(r"[0-9A-Za-z_-]{6}", params["code"])
    assert params["state"] == "st-123"

    tok = legacy_token(v240, params["code"])
    assert tok.status_code == 200
    assert tok.headers["Cache-Control"] == "no-store" and tok.headers["Pragma"] == "no-cache"
    body = tok.json()
    assert list(body) == ["access_token", "token_type", "refresh_token", "expires_in", "scope"]
    assert body["token_type"] == "bearer" and body["scope"] == "ALL"
    assert 43190 < body["expires_in"] <= 43199
    assert re.fullmatch(r"[A-Za-z0-9_-]{27}", body["access_token"])

    me = requests.get(f"{v240.url}/api/me", timeout=T,
                      headers={"Authorization": f"Bearer {body['access_token']}"}).json()
    assert me["id"] == "xE7jOejl9FI" and me["username"] == "alice"
    assert me["email"] == "alice@example.org" and me["firstName"] == "Alice"
    assert me["userCredentials"]["username"] == "alice"
    # GeoPrism Registry's way: the token as a query parameter
    me2 = requests.get(f"{v240.url}/api/me", params={"access_token": body["access_token"]},
                       timeout=T).json()
    assert me2 == me

    info = requests.get(f"{v240.url}/api/system/info", timeout=T,
                        headers={"Authorization": f"Bearer {body['access_token']}"}).json()
    assert info["version"] == "2.40.3"


def test_legacy_me_shape_237_and_uuid_tokens_234(v237, v234):
    tok = legacy_token(v237, legacy_code(v237)).json()
    assert re.fullmatch(r"[A-Za-z0-9_-]{27}", tok["access_token"])
    me = requests.get(f"{v237.url}/api/me", timeout=T,
                      headers={"Authorization": f"Bearer {tok['access_token']}"}).json()
    assert "username" not in me
    assert me["id"] == "xE7jOejl9FI"
    assert me["userCredentials"]["username"] == "alice"

    tok = legacy_token(v234, legacy_code(v234)).json()
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                        tok["access_token"])


def test_me_shape_242_has_no_user_credentials(v242):
    me = requests.get(f"{v242.url}/api/me", auth=ALICE, timeout=T).json()
    assert me["username"] == "alice" and me["id"] == "xE7jOejl9FI"
    assert "userCredentials" not in me
    bob = requests.get(f"{v242.url}/api/me", auth=BOB, timeout=T).json()
    assert "email" not in bob


ME_FIELDS = ("id,username,firstName,surname,email,userGroups[id,name],userRoles[id,name],"
             "organisationUnits[id,name,path],userCredentials[username,userRoles[id,name]]")


def test_me_fields_answers_only_the_fields_asked_for_nested_included(v240, v237, v242):
    me = requests.get(f"{v240.url}/api/me", auth=ALICE, params={"fields": ME_FIELDS}, timeout=T).json()
    assert set(me) == {"id", "username", "firstName", "surname", "email", "userGroups", "userRoles",
                       "organisationUnits", "userCredentials"}
    assert me["userGroups"] == [{"id": "wl5cDMuUhmF", "name": "Malaria programme"},
                                {"id": "Kk12LkEWtXp", "name": "Data managers"}]
    assert me["organisationUnits"][0] == {"id": "O6uvpzGd5pu", "name": "Bo", "path": "/ImspTQPwCqd/O6uvpzGd5pu"}
    assert me["userCredentials"] == {"username": "alice", "userRoles": [{"id": "Euq3XfEIEbx",
                                                                         "name": "Data entry clerk"}]}
    old = requests.get(f"{v237.url}/api/me", auth=ALICE, params={"fields": ME_FIELDS}, timeout=T).json()
    assert "username" not in old and "userRoles" not in old  # up to 2.37: under userCredentials only
    assert old["userCredentials"]["userRoles"][0]["name"] == "Data entry clerk"
    new = requests.get(f"{v242.url}/api/me", auth=ALICE, params={"fields": ME_FIELDS}, timeout=T).json()
    assert "userCredentials" not in new and new["userRoles"][0]["name"] == "Data entry clerk"
    # a list of objects without sub-fields comes as references; "*" and "!x" as DHIS2 reads them
    refs = requests.get(f"{v240.url}/api/me", auth=ALICE, params={"fields": "userGroups"}, timeout=T).json()
    assert refs == {"userGroups": [{"id": "wl5cDMuUhmF"}, {"id": "Kk12LkEWtXp"}]}
    every = requests.get(f"{v240.url}/api/me", auth=ALICE, params={"fields": "*,!settings"}, timeout=T).json()
    assert "settings" not in every and "authorities" in every


def test_memberships_are_set_per_user_and_change_between_calls(v240):
    v240.control("users", {"username": "alice", "userGroups": [{"id": "B6JNeAQ6akX", "name": "HIV programme"}],
                           "userRoles": [{"id": "RoleUid0001", "name": "Viewer"}]})
    me = requests.get(f"{v240.url}/api/me", auth=ALICE, params={"fields": "userGroups[name],userRoles[name]"},
                      timeout=T).json()
    assert me == {"userGroups": [{"name": "HIV programme"}], "userRoles": [{"name": "Viewer"}]}
    with pytest.raises(requests.HTTPError):
        v240.control("users", {"username": "alice", "userGroups": "HIV programme"})


def test_legacy_wrong_password_shows_login_again(v240):
    browser = requests.Session()
    resp = browser.get(f"{v240.url}/uaa/oauth/authorize", params=authorize_params(),
                       allow_redirects=False, timeout=T)
    back = submit_login_form(browser, resp.headers["Location"], ("alice", "wrong"))
    assert "/dhis-web-commons/security/login.action" in back.headers["Location"]
    page = browser.get(back.headers["Location"], timeout=T)
    assert "Wrong username or password" in page.text
    # the saved authorize request survives a failed attempt
    back = submit_login_form(browser, back.headers["Location"], ALICE)
    assert "/uaa/oauth/authorize" in back.headers["Location"]


def test_legacy_deny(v240):
    browser = requests.Session()
    assert legacy_approval_page(v240, browser, state="xyz").status_code == 200
    resp = browser.post(f"{v240.url}/uaa/oauth/authorize", data={"user_oauth_approval": "false"},
                        allow_redirects=False, timeout=T)
    assert resp.status_code == 303
    assert resp.headers["Location"] == (
        CALLBACK + "?error=access_denied&error_description=User%20denied%20access&state=xyz")


def test_legacy_redirect_uri_rules(v240, v237):
    browser = requests.Session()
    for bad in ("http://127.0.0.1:8766/auth/dhis2/callback", CALLBACK + "/x",
                CALLBACK.replace("http:", "https:")):
        resp = legacy_approval_page(v240, browser, redirect_uri=bad)
        assert resp.status_code == 400 and "Location" not in resp.headers
        assert 'error="redirect_uri_mismatch"' in resp.text
        assert "Invalid redirect uri does not match one of the registered values." in resp.text
    resp = legacy_approval_page(v240, browser, client_id="nope")
    assert resp.status_code == 400 and "Location" not in resp.headers
    # omitted redirect_uri: the single registered one is used
    assert legacy_approval_page(v240, browser, redirect_uri=None).status_code == 200
    resp = browser.post(f"{v240.url}/uaa/oauth/authorize", data={"user_oauth_approval": "true"},
                        allow_redirects=False, timeout=T)
    code = query(resp.headers["Location"])["code"]
    assert resp.headers["Location"].startswith(CALLBACK + "?code=")
    assert legacy_token(v240, code, redirect_uri=None).status_code == 200
    # two registered: it must be given
    resp = legacy_approval_page(v237, requests.Session(), redirect_uri=None)
    assert resp.status_code == 400 and "Location" not in resp.headers
    # a redirect_uri given at authorize must be repeated at the token endpoint
    code = legacy_code(v240)
    resp = legacy_token(v240, code, redirect_uri=None)
    assert resp.status_code == 400
    assert resp.json() == {"error": "invalid_grant", "error_description": "Redirect URI mismatch."}


def test_legacy_invalid_scope_redirects(v240):
    resp = legacy_approval_page(v240, requests.Session(), scope="openid")
    assert resp.status_code == 303
    params = query(resp.headers["Location"])
    assert params["error"] == "invalid_scope" and params["state"] == "st-123"
    assert legacy_approval_page(v240, requests.Session(), scope="ALL").status_code == 200


def test_legacy_token_client_authentication(v240):
    code = legacy_code(v240)
    url = f"{v240.url}/uaa/oauth/token"
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK}
    resp = requests.post(url, auth=("geologin", "wrong"), data=form, timeout=T)
    assert resp.status_code == 401
    assert resp.headers["WWW-Authenticate"].startswith('Basic realm="oauth2/client"')
    assert resp.json() == {"error": "unauthorized", "error_description": "Bad credentials"}
    resp = requests.post(url, data=form, timeout=T)
    assert resp.status_code == 401
    assert resp.json()["error_description"] == \
        "Full authentication is required to access this resource"
    # client_secret_post is not accepted on legacy
    resp = requests.post(url, data=dict(form, client_id="geologin", client_secret=SECRET),
                         timeout=T)
    assert resp.status_code == 401
    resp = requests.post(url, auth=("geologin", SECRET), data=dict(form, client_id="other"),
                         timeout=T)
    assert resp.status_code == 401 and resp.json()["error"] == "invalid_client"
    # the code was not consumed by the refused attempts
    resp = requests.post(url, auth=("geologin", SECRET), data=dict(form, client_id="geologin"),
                         timeout=T)
    assert resp.status_code == 200
    # probe: valid client, bogus code
    resp = legacy_token(v240, "bogus1")
    assert resp.status_code == 400 and resp.json()["error"] == "invalid_grant"


def test_legacy_code_is_single_use(v240):
    code = legacy_code(v240)
    assert legacy_token(v240, code).status_code == 200
    resp = legacy_token(v240, code)
    assert resp.status_code == 400
    assert resp.json() == {"error": "invalid_grant",
                           "error_description": "Invalid authorization code"}


def test_legacy_get_token_405(v240):
    resp = requests.get(f"{v240.url}/uaa/oauth/token", auth=("geologin", SECRET), timeout=T)
    assert resp.status_code == 405


def test_legacy_same_token_twice(v240):
    browser = requests.Session()
    first = legacy_token(v240, legacy_code(v240, browser)).json()
    time.sleep(1.05)
    second = legacy_token(v240, legacy_code(v240, browser)).json()
    assert second["access_token"] == first["access_token"]
    assert second["expires_in"] < first["expires_in"]
    other = legacy_token(v240, legacy_code(v240, user=BOB)).json()
    assert other["access_token"] != first["access_token"]
    # refresh grant gives a new access token
    resp = requests.post(f"{v240.url}/uaa/oauth/token", auth=("geologin", SECRET), timeout=T,
                         data={"grant_type": "refresh_token",
                               "refresh_token": first["refresh_token"]})
    assert resp.status_code == 200 and resp.json()["access_token"] != first["access_token"]


def test_legacy_api_me_errors(v240):
    resp = requests.get(f"{v240.url}/api/me", headers={"Authorization": "Bearer nope"},
                        timeout=T)
    assert resp.status_code == 401
    assert resp.json() == {"error": "invalid_token", "error_description": "Invalid access token"}
    assert resp.headers["WWW-Authenticate"] == ('Bearer realm="oauth", error="invalid_token", '
                                                'error_description="Invalid access token"')
    resp = requests.get(f"{v240.url}/api/me", allow_redirects=False, timeout=T)
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith("/dhis/dhis-web-commons/security/login.action")
    resp = requests.get(f"{v240.url}/api/me", headers={"X-Requested-With": "XMLHttpRequest"},
                        allow_redirects=False, timeout=T)
    assert resp.status_code == 401
    assert requests.get(f"{v240.url}/api/me", auth=("alice", "bad"), timeout=T).status_code == 401
    # expired token
    token = legacy_token(v240, legacy_code(v240)).json()["access_token"]
    v240.control("expire-tokens")
    resp = requests.get(f"{v240.url}/api/me", headers={"Authorization": f"Bearer {token}"},
                        timeout=T)
    assert resp.status_code == 401 and resp.json()["error_description"] == "Access token expired"


def test_legacy_has_no_new_endpoints_and_version_probes(v240, v2410):
    v240.control("behaviour", {"discovery": "array", "jwks": "500"})  # still 404, not a fault
    for path in ("/.well-known/openid-configuration", "/oauth2/jwks"):
        assert requests.get(v240.url + path, timeout=T).status_code == 404
    assert requests.get(origin(v240.url) + "/uaa/oauth/authorize", timeout=T).status_code == 404
    resp = requests.get(f"{v240.url}/api/system/info", allow_redirects=False, timeout=T)
    assert resp.status_code == 302
    assert requests.get(f"{v240.url}/api/system/info", auth=ALICE, timeout=T).json()["version"] \
        == "2.40.3"
    assert requests.get(f"{v240.url}/api/loginConfig", timeout=T).status_code == 404
    # 2.41.0: no OAuth at all
    resp = requests.get(f"{v2410.url}/api/loginConfig", timeout=T)
    assert resp.status_code == 200 and resp.json()["apiVersion"] == "2.41.0"
    for path in ("/uaa/oauth/authorize", "/uaa/oauth/token", "/.well-known/openid-configuration",
                 "/oauth2/authorize"):
        assert requests.get(v2410.url + path, allow_redirects=False, timeout=T).status_code == 404
    resp = requests.get(f"{v2410.url}/api/me", allow_redirects=False, timeout=T)
    assert resp.headers["Location"].endswith("/dhis-web-login")


# ---------------------------------------------------------------------------------------------
# new (2.42+) generation
# ---------------------------------------------------------------------------------------------


def test_new_discovery_and_jwks(v242):
    doc = discovery(v242)
    assert doc["issuer"] == v242.url + "/"
    assert doc["authorization_endpoint"] == v242.url + "/oauth2/authorize"
    assert doc["token_endpoint"] == v242.url + "/oauth2/token"
    assert doc["jwks_uri"] == v242.url + "/oauth2/jwks"
    assert doc["userinfo_endpoint"] == v242.url + "/userinfo"
    assert doc["response_types_supported"] == ["code"]
    assert doc["code_challenge_methods_supported"] == ["S256"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert {"client_secret_basic", "client_secret_post"} <= set(
        doc["token_endpoint_auth_methods_supported"])
    keys = requests.get(doc["jwks_uri"], timeout=T).json()["keys"]
    assert len(keys) == 1 and keys[0]["kty"] == "RSA" and keys[0]["kid"]
    assert "d" not in keys[0]
    for path in ("/uaa/oauth/authorize", "/uaa/oauth/token"):
        assert requests.get(v242.url + path, timeout=T).status_code == 404
    assert requests.post(v242.url + "/uaa/oauth/token", timeout=T).status_code == 404


def test_new_full_flow_242(v242):
    browser = requests.Session()
    verifier, challenge = pkce()
    params = authorize_params(scope="openid username", nonce="nonce-1", code_challenge=challenge,
                              code_challenge_method="S256")
    resp = browser.get(f"{v242.url}/oauth2/authorize", params=params, allow_redirects=False,
                       timeout=T)
    assert resp.status_code == 302
    assert resp.headers["Location"] == v242.url + "/dhis-web-login/"
    back = submit_login_form(browser, resp.headers["Location"], ALICE)
    page = browser.get(back.headers["Location"], allow_redirects=False, timeout=T)
    assert page.status_code == 200
    assert "<title>Consent required</title>" in page.text
    assert re.search(r'<input type="checkbox" name="scope" value="username" id="username">',
                     page.text)  # unticked
    assert 'value="openid"' not in page.text
    resp = submit_consent(v242, browser, page.text)
    assert resp.status_code == 302
    params = query(resp.headers["Location"])
    assert params["state"] == "st-123" and len(params["code"]) == 128

    # PKCE enforced because a challenge was sent; a failed attempt does not burn the code
    assert new_token(v242, params["code"]).json() == {"error": "invalid_grant"}
    assert new_token(v242, params["code"], verifier="x" * 43).status_code == 400
    tok = new_token(v242, params["code"], verifier)
    assert tok.status_code == 200, tok.text
    assert tok.headers["Cache-Control"] == "no-store"
    body = tok.json()
    assert body["token_type"] == "Bearer" and 295 <= body["expires_in"] <= 300
    assert set(body["scope"].split()) == {"openid", "username"}
    assert body["refresh_token"]

    keys = keyset(v242)
    id_token = jwt.decode(body["id_token"], keys, algorithms=["RS256"]).claims
    assert id_token["iss"] == v242.url + "/"
    assert id_token["sub"] == "alice"
    assert id_token["aud"] == ["geologin"] and id_token["azp"] == "geologin"
    assert id_token["nonce"] == "nonce-1"
    assert id_token["sid"] and id_token["auth_time"] <= id_token["iat"]
    assert 1790 <= id_token["exp"] - id_token["iat"] <= 1800
    assert "username" not in id_token                    # only 2.42.5+
    access = jwt.decode(body["access_token"], keys, algorithms=["RS256"]).claims
    assert access["sub"] == "alice" and access["aud"] == ["geologin"]
    assert access["exp"] - access["iat"] == 300 and access["jti"]

    info = requests.get(f"{v242.url}/userinfo", timeout=T,
                        headers={"Authorization": f"Bearer {body['access_token']}"})
    assert info.status_code == 200 and info.json()["sub"] == "alice"
    resp = requests.get(f"{v242.url}/api/me", timeout=T,
                        headers={"Authorization": f"Bearer {body['access_token']}"})
    assert resp.status_code == 401 and resp.json()["message"] == "invalid_token"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")

    # code reuse
    assert new_token(v242, params["code"], verifier).json() == {"error": "invalid_grant"}

    # consent is remembered: straight back to the client next time
    resp = browser.get(f"{v242.url}/oauth2/authorize", timeout=T, allow_redirects=False,
                       params=authorize_params(scope="openid username", nonce="n2"))
    assert resp.status_code == 302 and resp.headers["Location"].startswith(CALLBACK + "?code=")


def test_new_pkce_rules(v242):
    browser = requests.Session()
    _, challenge = pkce()
    resp = new_authorize(v242, browser, code_challenge=challenge, code_challenge_method="plain")
    assert resp.status_code == 302
    params = query(resp.headers["Location"])
    assert params["error"] == "invalid_request" and params["state"] == "st-123"
    assert "code_challenge_method" in params["error_description"]
    # no PKCE at all is fine on released 2.42 for a confidential client
    code = new_code(v242, browser)
    assert new_token(v242, code).status_code == 200
    # a verifier without a challenge is refused
    code = new_code(v242, browser)
    assert new_token(v242, code, verifier="a" * 50).json() == {"error": "invalid_grant"}


def test_new_token_endpoint_errors(v242):
    code = new_code(v242)
    resp = new_token(v242, code, auth=("geologin", "wrong"))
    assert resp.status_code == 401 and resp.json() == {"error": "invalid_client"}
    resp = requests.post(f"{v242.url}/oauth2/token", timeout=T,
                         data={"grant_type": "authorization_code", "code": code})
    assert resp.status_code == 401 and resp.json() == {"error": "invalid_client"}
    assert new_token(v242, "nope").json() == {"error": "invalid_grant"}
    resp = new_token(v242, code, redirect_uri=OTHER_CALLBACK)
    assert resp.status_code == 400 and resp.json() == {"error": "invalid_grant"}
    # client_secret_post works too
    resp = requests.post(f"{v242.url}/oauth2/token", timeout=T, data={
        "grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK,
        "client_id": "geologin", "client_secret": SECRET})
    assert resp.status_code == 200 and resp.json()["token_type"] == "Bearer"
    refreshed = requests.post(f"{v242.url}/oauth2/token", auth=("geologin", SECRET), timeout=T,
                              data={"grant_type": "refresh_token",
                                    "refresh_token": resp.json()["refresh_token"]})
    assert refreshed.status_code == 200 and refreshed.json()["id_token"]
    # an admin who stored the secret unhashed (2.42 needs bcrypt): always invalid_client
    v242.control("clients", {"client_id": "geologin", "secret_unhashed": True})
    assert new_token(v242, new_code(v242)).json() == {"error": "invalid_client"}


def test_new_redirect_uri_rules(v242):
    browser = requests.Session()
    new_code(v242, browser)  # logs in
    loopback_other_port = CALLBACK.replace("8765", "9999")
    resp = new_authorize(v242, browser, redirect_uri=loopback_other_port)
    assert resp.status_code == 302 and resp.headers["Location"].startswith(loopback_other_port)
    for bad in (CALLBACK + "/", "http://localhost:8765/auth/dhis2/callback",
                OTHER_CALLBACK.replace("https", "http"), None):
        resp = new_authorize(v242, browser, redirect_uri=bad)
        assert resp.status_code == 400 and "Location" not in resp.headers, bad
    resp = new_authorize(v242, browser, client_id="unknown")
    assert resp.status_code == 400 and "Location" not in resp.headers
    resp = new_authorize(v242, browser, scope="openid write")
    assert query(resp.headers["Location"])["error"] == "invalid_scope"


def test_new_consent_deny_and_login_paths(v243):
    browser = requests.Session()
    resp = browser.get(f"{v243.url}/oauth2/authorize", allow_redirects=False, timeout=T,
                       params=authorize_params(scope="openid profile"))
    assert resp.headers["Location"] == v243.url + "/login/"
    # the login app's JSON API
    resp = browser.post(f"{v243.url}/api/auth/login", json={"username": "bob", "password": "x"},
                        timeout=T)
    assert resp.status_code == 401
    resp = browser.post(f"{v243.url}/api/auth/login", timeout=T,
                        json={"username": "bob", "password": BOB[1], "twoFactorCode": ""})
    assert resp.json()["loginStatus"] == "SUCCESS"
    assert resp.json()["redirectUrl"].startswith("/oauth2/authorize?")
    page = browser.get(v243.url + resp.json()["redirectUrl"], allow_redirects=False, timeout=T)
    assert "Consent required" in page.text
    resp = submit_consent(v243, browser, page.text, tick=[])  # "Cancel"
    assert resp.status_code == 302
    params = query(resp.headers["Location"])
    assert params["error"] == "access_denied" and params["state"] == "st-123"
    # denied: asked again next time; openid alone never needs consent
    resp = new_authorize(v243, browser, scope="openid profile", tick=None)
    assert resp.headers["Location"].startswith(CALLBACK + "?code=")
    resp = browser.get(f"{v243.url}/oauth2/authorize", allow_redirects=False, timeout=T,
                       params=authorize_params(scope="openid", client_id="geologin"))
    assert resp.headers["Location"].startswith(CALLBACK + "?code=")


def test_username_claim_and_api_me_on_2425(v2425):
    browser = requests.Session()
    body = new_token(v2425, new_code(v2425, browser, scope="openid username")).json()
    claims = jwt.decode(body["id_token"], keyset(v2425), algorithms=["RS256"]).claims
    assert claims["username"] == "alice" and claims["sub"] == "alice"
    me = requests.get(f"{v2425.url}/api/me", timeout=T,
                      headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200 and me.json()["username"] == "alice"
    assert "userCredentials" not in me.json()
    body = new_token(v2425, new_code(v2425, browser, scope="openid")).json()
    assert "username" not in unverified_claims(body["id_token"])
    me = requests.get(f"{v2425.url}/api/me", timeout=T,
                      headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 401
    # the user unticks "username" on the consent page: not granted
    resp = new_authorize(v2425, requests.Session(), user=BOB, scope="openid username profile",
                         tick=["profile"])
    body = new_token(v2425, query(resp.headers["Location"])["code"]).json()
    assert set(body["scope"].split()) == {"openid", "profile"}
    assert "username" not in unverified_claims(body["id_token"])


def test_email_scope_without_email_is_a_server_error(v2425):
    body = new_token(v2425, new_code(v2425, scope="openid email")).json()
    assert unverified_claims(body["id_token"])["email"] == "alice@example.org"
    resp = new_token(v2425, new_code(v2425, user=BOB, scope="openid email"))
    assert resp.status_code == 500


def test_renamed_user_keeps_uid(v2425):
    v2425.control("users", {"uid": "xE7jOejl9FI", "username": "alice2"})
    code = new_code(v2425, user=("alice2", ALICE[1]), scope="openid username")
    body = new_token(v2425, code).json()
    me = requests.get(f"{v2425.url}/api/me", timeout=T,
                      headers={"Authorization": f"Bearer {body['access_token']}"}).json()
    assert me["username"] == "alice2" and me["id"] == "xE7jOejl9FI"
    created = v2425.control("users", {"username": "alice2", "password": "p", "uid": "NewUid12345"})
    assert created["uid"] == "NewUid12345"
    users = {u["username"]: u["uid"] for u in v2425.control("state", method="GET")["users"]}
    assert users["alice2"] == "NewUid12345"


# ---------------------------------------------------------------------------------------------
# behaviour switches and the request log
# ---------------------------------------------------------------------------------------------


def test_token_behaviours(v240):
    code = legacy_code(v240)
    expected = {
        "500": lambda r: r.status_code == 500,
        "html": lambda r: r.status_code == 200 and r.headers["Content-Type"].startswith("text/html"),
        "array": lambda r: r.status_code == 200 and r.json() == [],
    }
    for mode, check in expected.items():
        v240.control("behaviour", {"token": mode})
        assert check(legacy_token(v240, code)), mode
    v240.control("behaviour", {"token": "missing_access_token"})
    body = legacy_token(v240, code).json()   # the code is still unused
    assert "access_token" not in body and body["token_type"] == "bearer"
    v240.control("behaviour", {"token": "wrong_token_type", "once": True})
    assert legacy_token(v240, legacy_code(v240)).json()["token_type"] == "mac"
    assert legacy_token(v240, legacy_code(v240)).json()["token_type"] == "bearer"
    v240.control("behaviour", {"token": "refuse-nothing"})
    assert legacy_token(v240, legacy_code(v240)).status_code == 200


def test_me_discovery_stall_and_huge(v240, v242):
    token = legacy_token(v240, legacy_code(v240)).json()["access_token"]
    headers = {"Authorization": f"Bearer {token}"}
    v240.control("behaviour", {"me": "huge", "huge_bytes": 3_000_000})
    with requests.get(f"{v240.url}/api/me", headers=headers, stream=True, timeout=T) as resp:
        assert sum(len(chunk) for chunk in resp.iter_content(65536)) >= 3_000_000
    v240.control("behaviour", {"me": "missing_access_token"})
    me = requests.get(f"{v240.url}/api/me", headers=headers, timeout=T).json()
    assert "username" not in me and "userCredentials" not in me
    v240.control("behaviour", {"me": "stall", "stall_seconds": 3})
    with pytest.raises(requests.exceptions.ReadTimeout):
        requests.get(f"{v240.url}/api/me", headers=headers, timeout=0.5)
    v240.control("behaviour", {"me": None})
    assert requests.get(f"{v240.url}/api/me", headers=headers, timeout=T).json()["username"] \
        == "alice"

    v242.control("behaviour", {"discovery": "array"})
    assert requests.get(f"{v242.url}/.well-known/openid-configuration", timeout=T).json() == []
    v242.control("behaviour", {"discovery": "wrong_token_type"})
    assert requests.get(f"{v242.url}/.well-known/openid-configuration",
                        timeout=T).json()["issuer"] == 12345
    resp = requests.post(f"{v242.url}/__fake__/behaviour", json={"token": "bogus"}, timeout=T)
    assert resp.status_code == 400


def test_id_token_behaviours(v242):
    browser = requests.Session()
    new_code(v242, browser, scope="openid profile")    # login + consent once
    keys = keyset(v242)

    def id_token(mode):
        v242.control("behaviour", {"id_token": mode})
        code = new_code(v242, browser, scope="openid profile", nonce="nonce-x")
        return new_token(v242, code).json()["id_token"]

    for mode in ("bad_sig", "alg_none", "hs256_pubkey", "unknown_kid"):
        token = id_token(mode)
        with pytest.raises((JoseError, ValueError)):
            jwt.decode(token, keys, algorithms=["RS256"])
    assert unverified_header(id_token("alg_none"))["alg"] == "none"
    assert unverified_header(id_token("hs256_pubkey"))["alg"] == "HS256"
    token = id_token("no_kid")
    assert "kid" not in unverified_header(token)
    jwk = requests.get(f"{v242.url}/oauth2/jwks", timeout=T).json()["keys"][0]
    assert jwt.decode(token, KeySet.import_key_set({"keys": [jwk]}).keys[0],
                      algorithms=["RS256"]).claims["sub"] == "alice"
    checks = {
        "wrong_iss": lambda c: c["iss"] != v242.url + "/",
        "wrong_aud": lambda c: "geologin" not in c["aud"],
        "no_sub": lambda c: "sub" not in c,
        "expired": lambda c: c["exp"] < time.time(),
        "wrong_nonce": lambda c: c["nonce"] != "nonce-x",
    }
    for mode, check in checks.items():
        claims = jwt.decode(id_token(mode), keys, algorithms=["RS256"]).claims
        assert check(claims), mode
    v242.control("behaviour", {"id_token": None})
    claims = jwt.decode(id_token(None), keys, algorithms=["RS256"]).claims
    assert claims["nonce"] == "nonce-x" and claims["aud"] == ["geologin"]


def test_request_log_has_no_secret_values(v240):
    legacy_token(v240, legacy_code(v240))
    log = v240.control("log", method="GET")
    token_calls = [e for e in log if e["path"] == "/dhis/uaa/oauth/token"]
    assert token_calls and token_calls[-1]["method"] == "POST"
    assert token_calls[-1]["auth_scheme"] == "Basic" and token_calls[-1]["auth_user"] == "geologin"
    assert set(token_calls[-1]["form_keys"]) == {"code", "grant_type", "redirect_uri"}
    assert SECRET not in json.dumps(log) and "Alice-pass-123" not in json.dumps(log)
    authorize = [e for e in log if e["path"] == "/dhis/uaa/oauth/authorize"]
    assert authorize[0]["args"]["state"] == "st-123"


def test_fake_login_and_cli_users(start_fake):
    srv = start_fake("--version", "2.39.1", "--user", "carol:Carol-pw:CaRoLuid001:carol@x.org",
                     "--client", f"gpr:{'s' * 36}:http://127.0.0.1:1/api/session/ologin")
    browser = requests.Session()
    resp = browser.post(f"{srv.url}/__fake__/login", timeout=T,
                        json={"username": "carol", "password": "Carol-pw"})
    assert resp.status_code == 200
    page = browser.get(f"{srv.url}/uaa/oauth/authorize", allow_redirects=False, timeout=T,
                       params={"client_id": "gpr", "response_type": "code"})
    assert "Do you authorize 'gpr'" in page.text
    assert requests.get(f"{srv.url}/api/me", auth=("admin", "district"),
                        timeout=T).status_code == 401  # default users replaced
    me = requests.get(f"{srv.url}/api/me", auth=("carol", "Carol-pw"), timeout=T).json()
    assert me["id"] == "CaRoLuid001" and me["email"] == "carol@x.org"
