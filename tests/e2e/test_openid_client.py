"""An application using panva's certified openid-client (npm), a relying party this project did not write,
signs people in through geologin: discovery, the code flow with PKCE, state and nonce (openid-client checks
the response's iss and the ID token's signature, iss, aud, exp and nonce), login by password and through
DHIS2, the claims, userinfo, refresh, and RP-initiated logout ending the geologin session."""
import pytest

from tests.e2e.conftest import ALICE_EMAIL, ALICE_NAME, ALICE_PASSWORD, DHIS2_ALICE, DHIS2_SLUG
from tests.e2e.relying_parties import (Browser, OpenIDClient, RPError, free_port, query,
                                       register_application, require_openid_client)
from tests.fakes import Dhis2User

pytestmark = pytest.mark.e2e

APP_URL = f"http://127.0.0.1:{free_port()}"  # nobody listens: the browser stops at the redirect to it
REDIRECT_URI, LOGGED_OUT = APP_URL + "/callback", APP_URL + "/logged-out"


@pytest.fixture(scope="module")
def apps(world):
    """The applications registered at geologin: a confidential one with refresh tokens, a public one."""
    require_openid_client()
    geologin = world[0]
    return {
        "confidential": register_application(geologin, "Registry (openid-client)", [REDIRECT_URI], [LOGGED_OUT],
                                             refresh_tokens=True),
        "public": register_application(geologin, "Field app (openid-client, public)", [REDIRECT_URI], [LOGGED_OUT],
                                       public=True),
        "denied": register_application(geologin, "Survey tool (openid-client)", [REDIRECT_URI]),
    }


@pytest.fixture
def make_rp(world, apps):
    made = []

    def make(kind="confidential", auth="client_secret_basic", scope="openid profile email"):
        client_id, secret = apps[kind]
        made.append(OpenIDClient(world[0].url, client_id, secret, redirect_uri=REDIRECT_URI, scope=scope,
                                 auth=auth, post_logout_redirect_uri=LOGGED_OUT))
        return made[-1]

    yield make
    for rp in made:
        rp.close()


def log_in(rp, browser):
    """The person clicks "Sign in" in the application and does what geologin asks; the application gets
    the redirect back and finishes: what openid-client reports (claims, userinfo)."""
    authorization_url = rp.authorization_url()
    response = browser.visit(authorization_url, stop_at=REDIRECT_URI)
    assert response.is_redirect, f"{response.status_code} {response.url}\n{response.text[:1000]}\n{browser.trail}"
    back = response.headers["Location"]
    assert "code" in query(back), back
    return rp.callback(back)


def test_openid_client_discovers_geologin(world, make_rp):
    geologin = world[0]
    metadata = make_rp().discover()
    assert metadata["issuer"] == geologin.url
    for name, path in (("authorization_endpoint", "/oauth/authorize"), ("token_endpoint", "/oauth/token"),
                       ("userinfo_endpoint", "/oauth/userinfo"), ("jwks_uri", "/oauth/jwks"),
                       ("end_session_endpoint", "/oauth/logout")):
        assert metadata[name] == geologin.url + path
    assert metadata["response_types_supported"] == ["code"]
    assert "S256" in metadata["code_challenge_methods_supported"]
    assert "HS256" not in metadata["id_token_signing_alg_values_supported"]
    assert {"openid", "profile", "email", "offline_access"} <= set(metadata["scopes_supported"])
    # So openid-client requires and checks iss in every redirect back (RFC 9207) in the tests below.
    assert metadata["authorization_response_iss_parameter_supported"] is True


@pytest.mark.parametrize("kind, auth", [("confidential", "client_secret_basic"),
                                        ("confidential", "client_secret_post"), ("public", "none")])
def test_openid_client_password_login_gives_the_claims_and_userinfo(world, make_rp, kind, auth):
    geologin = world[0]
    browser = Browser(geologin.url, "alice", ALICE_PASSWORD)
    result = log_in(make_rp(kind, auth), browser)
    assert browser.pages[0] == "login"
    claims, userinfo = result["id_token_claims"], result["userinfo"]
    assert claims["iss"] == geologin.url and claims["sub"] not in ("", "alice")
    assert userinfo["sub"] == claims["sub"]
    assert userinfo["preferred_username"] == "alice" and userinfo["name"] == ALICE_NAME
    assert userinfo["email"] == ALICE_EMAIL
    assert claims["sid"] and claims["amr"]
    assert "idp" not in claims


def test_openid_client_dhis2_login_is_the_same_sub_with_the_identity_provider_named(world, make_rp):
    geologin = world[0]
    by_password = log_in(make_rp(), Browser(geologin.url, "alice", ALICE_PASSWORD))["id_token_claims"]
    browser = Browser(geologin.url, "alice", dhis2=(DHIS2_SLUG, Dhis2User(*DHIS2_ALICE)))
    result = log_in(make_rp(), browser)
    assert browser.pages[:2] == ["login", "dhis2"]
    assert result["id_token_claims"]["sub"] == by_password["sub"]
    assert result["id_token_claims"]["idp"] == DHIS2_SLUG
    assert result["userinfo"]["preferred_username"] == "alice"


def test_openid_client_gets_access_denied_when_the_person_clicks_deny(world, make_rp):
    geologin = world[0]
    rp = make_rp("denied")
    browser = Browser(geologin.url, "alice", ALICE_PASSWORD, approve=False)
    response = browser.visit(rp.authorization_url(), stop_at=REDIRECT_URI)
    assert browser.pages == ["login", "consent"] and response.is_redirect
    with pytest.raises(RPError) as refused:  # a conformant error response: state and iss checked first
        rp.callback(response.headers["Location"])
    assert refused.value.error["step"] == "callback" and refused.value.error.get("oauth_error") == "access_denied"


def test_openid_client_refresh_gives_a_new_working_access_token(world, make_rp):
    geologin = world[0]
    rp = make_rp(scope="openid profile email offline_access")
    first = log_in(rp, Browser(geologin.url, "alice", ALICE_PASSWORD))
    assert first["refresh_token"] is True
    before = rp.session()["access_token"]
    refreshed = rp.refresh()
    assert rp.session()["access_token"] != before
    assert refreshed["refresh_token_rotated"] is True
    assert refreshed["userinfo"]["sub"] == first["id_token_claims"]["sub"]
    assert refreshed["userinfo"]["preferred_username"] == "alice"
    assert rp.refresh()["userinfo"]["sub"] == first["id_token_claims"]["sub"]  # the rotated one works too


def test_openid_client_offline_access_outlives_the_geologin_session(world, make_rp):
    geologin = world[0]
    rp = make_rp(scope="openid profile email offline_access")
    browser = Browser(geologin.url, "alice", ALICE_PASSWORD)
    sub = log_in(rp, browser)["id_token_claims"]["sub"]
    assert browser.visit(rp.end_session_url(), stop_at=LOGGED_OUT).is_redirect
    assert browser.logged_in_as() is None
    assert rp.refresh()["userinfo"]["sub"] == sub  # what she allowed: access while she is logged out


def test_openid_client_logout_ends_the_geologin_session_and_what_it_issued(world, make_rp):
    geologin = world[0]
    rp = make_rp()
    browser = Browser(geologin.url, "alice", ALICE_PASSWORD)
    log_in(rp, browser)
    assert browser.logged_in_as() == "alice"
    end_session_url = rp.end_session_url()
    assert end_session_url.startswith(geologin.url + "/oauth/logout?")
    response = browser.visit(end_session_url, stop_at=LOGGED_OUT)
    assert response.is_redirect, f"{response.status_code} {response.url}\n{response.text[:1000]}\n{browser.trail}"
    assert query(response.headers["Location"])["state"] == rp.session()["logout_state"]
    assert browser.logged_in_as() is None
    # What the application was given died with the session it was bound to: it cannot keep her signed in.
    with pytest.raises(RPError) as refused:
        rp.userinfo()
    assert refused.value.error["step"] == "userinfo" and refused.value.error.get("status") == 401
    with pytest.raises(RPError) as refused:
        rp.refresh()
    assert refused.value.error["step"] == "refresh" and refused.value.error.get("oauth_error") == "invalid_grant"
    # Signing in to the application again asks for the password again.
    log_in(rp, browser)
    assert browser.pages[0] == "login"
