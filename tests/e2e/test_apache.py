"""An application behind Apache httpd with mod_auth_openidc, a relying party this project did not write,
signs people in through geologin: discovery, login by password and through DHIS2, the claims the
application sees, and logout from the application ending the geologin session."""
import html
import re

import pytest

from tests.e2e.conftest import ALICE_EMAIL, ALICE_NAME, ALICE_PASSWORD, DHIS2_ALICE, DHIS2_SLUG
from tests.e2e.relying_parties import (Apache, Browser, claims_page, free_port, origin, query,
                                       register_application, require_apache)
from tests.fakes import Dhis2User

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def apache(world):
    require_apache()
    geologin = world[0]
    port = free_port()
    _, redirect_uri, logged_out = Apache.urls(port)
    # As docs/applications.md registers it: mod_auth_openidc's back-channel logout URI too.
    client_id, secret = register_application(geologin, "Intranet (Apache)", [redirect_uri], [logged_out],
                                             backchannel_logout_uri=redirect_uri + "?logout=backchannel")
    server = Apache(geologin.url, client_id, secret, port)
    server.client_id = client_id
    yield server
    server.stop()


def protected_page(browser, apache):
    """The person opens the application; returns what it shows them (the claims) after whatever
    geologin asked of them (``browser.pages``)."""
    response = browser.visit(apache.url + "/protected/")
    assert response.status_code == 200 and response.url == apache.url + "/protected/", (
        f"{response.status_code} {response.url}\n{response.text[:1000]}\ntrail: {browser.trail}\n"
        f"Apache's log:\n{apache.log()[-3000:]}")
    return claims_page(response.text)


def test_apache_discovers_geologin_and_sends_the_person_to_its_authorization_endpoint(world, apache):
    geologin = world[0]
    browser = Browser(geologin.url, "alice", ALICE_PASSWORD)
    response = browser.get(apache.url + "/protected/")
    assert response.status_code == 302, apache.log()[-3000:]
    location = response.headers["Location"]
    assert location.startswith(geologin.url + "/oauth/authorize?")
    request = query(location)
    assert request["client_id"] == apache.client_id and request["redirect_uri"] == apache.redirect_uri
    assert request["response_type"] == "code" and request["code_challenge_method"] == "S256"
    assert set(request["scope"].split()) == {"openid", "profile", "email"}


def test_apache_password_login_shows_the_application_who_logged_in(world, apache):
    geologin = world[0]
    browser = Browser(geologin.url, "alice", ALICE_PASSWORD)
    seen = protected_page(browser, apache)
    assert browser.pages == ["login", "consent"]
    assert seen["REMOTE_USER"] == seen["sub"] and seen["sub"] not in ("", "alice")
    assert seen["preferred_username"] == "alice"
    assert seen["email"] == ALICE_EMAIL and seen["name"] == ALICE_NAME
    assert seen["iss"] == geologin.url
    assert "idp" not in seen  # a password login names no identity provider
    # Back in the application later: Apache's session, nothing asked at geologin.
    assert protected_page(browser, apache)["sub"] == seen["sub"] and browser.pages == []
    # Apache's session gone (it expired): geologin's session signs her in again without a page (SSO), and
    # her consent is remembered.
    for cookie in [c for c in browser.http.cookies if c.name.startswith("mod_auth_openidc")]:
        browser.http.cookies.clear(cookie.domain, cookie.path, cookie.name)
    assert protected_page(browser, apache)["sub"] == seen["sub"] and browser.pages == []
    assert any(step.startswith(geologin.url + "/oauth/authorize") for step in browser.trail)


def test_apache_dhis2_login_is_the_same_person_with_the_identity_provider_named(world, apache):
    geologin = world[0]
    by_password = protected_page(Browser(geologin.url, "alice", ALICE_PASSWORD), apache)
    browser = Browser(geologin.url, "alice", dhis2=(DHIS2_SLUG, Dhis2User(*DHIS2_ALICE)))
    seen = protected_page(browser, apache)
    assert browser.pages[:2] == ["login", "dhis2"]  # "Log in with DHIS2", then DHIS2's own pages
    assert seen["sub"] == by_password["sub"]  # the same geologin user, however she logged in
    assert seen["preferred_username"] == "alice"
    assert seen["idp"] == DHIS2_SLUG


def test_apache_logout_ends_the_geologin_session(world, apache):
    geologin = world[0]
    browser = Browser(geologin.url, "alice", ALICE_PASSWORD)
    protected_page(browser, apache)
    assert browser.logged_in_as() == "alice"
    response = browser.visit(apache.logout_url())
    assert response.status_code == 200 and response.url == apache.logged_out_url, (
        f"{response.status_code} {response.url}\n{response.text[:1000]}\ntrail: {browser.trail}")
    assert any(step.split(" ")[-1].startswith(geologin.url + "/oauth/logout") for step in browser.trail)
    assert browser.logged_in_as() is None
    # Opening the application again asks for the password again.
    protected_page(browser, apache)
    assert browser.pages[0] == "login"
    assert origin(browser.trail[1]) == geologin.url


def test_apache_session_ends_when_the_person_logs_out_of_geologin_itself(world, apache):
    """geologin's own Log out button: its back-channel logout token (signed, with sid) reaches Apache,
    which ends its session, so the application no longer lets her in."""
    geologin = world[0]
    browser = Browser(geologin.url, "alice", ALICE_PASSWORD)
    protected_page(browser, apache)
    home = browser.http.get(geologin.url + "/", timeout=10)
    csrf = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', home.text).group(1)
    assert browser.http.post(geologin.url + "/logout", data={"csrf_token": csrf}, allow_redirects=False,
                             timeout=20).status_code == 302
    assert browser.logged_in_as() is None
    again = browser.get(apache.url + "/protected/")
    assert again.status_code == 302 and again.headers["Location"].startswith(geologin.url + "/oauth/authorize"), (
        f"Apache still let her in:\n{again.text[:500]}\nApache's log:\n{apache.log()[-3000:]}")


def test_apache_application_open_only_through_dhis2_refuses_a_password_login_clearly(world):
    """An application admitting only people who logged in through the MoH DHIS2: with a password, geologin
    says so in a page of its own, whose way back to the application carries access_denied; through DHIS2,
    she is in."""
    require_apache()
    geologin = world[0]
    port = free_port()
    _, redirect_uri, _ = Apache.urls(port)
    client_id, secret = register_application(geologin, "Health dashboard (Apache)", [redirect_uri],
                                             providers=[DHIS2_SLUG])
    apache = Apache(geologin.url, client_id, secret, port)
    try:
        browser = Browser(geologin.url, "alice", ALICE_PASSWORD)
        refused = browser.visit(apache.url + "/protected/")
        assert refused.status_code == 403 and refused.url.startswith(geologin.url + "/oauth/authorize")
        assert "No access to Health dashboard (Apache)" in refused.text
        back = html.unescape(re.search(r'<a href="([^"]+)">Back to Health dashboard', refused.text).group(1))
        assert back.startswith(redirect_uri + "?") and query(back)["error"] == "access_denied"
        assert query(back)["iss"] == geologin.url  # RFC 9207: in error responses too
        # mod_auth_openidc 2.4 reads a redirect with iss and no code as a third-party-initiated login, so it
        # shows its own error page rather than access_denied; either way she is not let in.
        at_apache = browser.visit(back)
        assert at_apache.url == back and "Error" in at_apache.text and "REMOTE_USER" not in at_apache.text
        assert browser.visit(apache.url + "/protected/").status_code == 403  # and geologin still refuses

        through_dhis2 = Browser(geologin.url, "alice", dhis2=(DHIS2_SLUG, Dhis2User(*DHIS2_ALICE)))
        assert protected_page(through_dhis2, apache)["idp"] == DHIS2_SLUG
    finally:
        apache.stop()
