"""Forward-auth through a real nginx (``pytest -m nginx``): Debian's nginx runs docs/forward-auth.md's server
block in front of a small site that echoes the headers it receives, and geologin and a fake DHIS2 run as
processes, all on loopback under invented host names (tests/forward_proxy.py). A requests.Session is the
browser: it follows the redirects and keeps geologin's cookie for .geologin.test, as a browser would.
Without nginx these tests skip and say how to install it; with CI set they fail instead."""
import re
import shutil
import tempfile
from pathlib import Path

import pytest
import requests

from tests.conftest import TEST_DB
from tests.fakes import SECRET, Dhis2User, FakeServer
from tests.forward_proxy import IN_CI, ProtectedSite, loopback_names, nginx_missing
from tests.test_demo_app import _form

pytestmark = [pytest.mark.nginx,
              pytest.mark.skipif(TEST_DB != "sqlite", reason="runs once, in the SQLite pass of make test (the geologin "
                                                             "process under test keeps its own SQLite database)")]
ALICE_PASSWORD, BOB_PASSWORD = "Alice-local-pass-42", "Bob-local-pass-42"
WANTED = "/reports/2024?region=north&tab=map"


@pytest.fixture(scope="module")
def world():
    """geologin, nginx and the site "Reports" that only alice may use; bob has an account but no access;
    alice may also log in through the fake DHIS2 2.40 "moh"."""
    why = nginx_missing()
    if why:
        if IN_CI:
            pytest.fail(f"{why} (CI is set, so the nginx tests must run)", pytrace=False)
        pytest.skip(why)
    folder = Path(tempfile.mkdtemp(prefix="geologin-nginx-"))
    world = dhis2 = None
    try:
        with loopback_names():
            world = ProtectedSite(folder, "--allowed-users-only")
            geologin = world.geologin
            geologin.flask("users", "create", "alice", "--password-stdin", "--email", "alice@example.org",
                           "--display-name", "Alice Banda", stdin=ALICE_PASSWORD + "\n")
            geologin.flask("users", "create", "bob", "--password-stdin", stdin=BOB_PASSWORD + "\n")
            geologin.flask("apps", "allow", "Reports", "alice")
            dhis2 = FakeServer("--version", "2.40.3", "--client",
                               f"geologin:{SECRET}:{geologin.url}/auth/moh/callback")
            geologin.flask("providers", "add", "dhis2", "--slug", "moh", "--label", "Ministry of Health",
                           "--base-url", dhis2.url + "/", "--client-id", "geologin", "--client-secret-stdin",
                           "--enabled", stdin=SECRET + "\n")
            geologin.flask("users", "allow", "alice", "moh")
            yield world
    finally:
        if world:
            world.stop()
        if dhis2:
            dhis2.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def browser(world):
    with loopback_names():
        yield requests.Session()


def _log_in(browser, page, username, password):
    action, fields = _form(page, "Log in")
    return browser.post(action, data={**fields, "username": username, "password": password}, timeout=15)


def _echoed(response):
    """What the site received: the path and its headers by lower-case name (each name once, or a list)."""
    assert response.headers.get("Content-Type") == "application/json", (response.url, response.text[:500])
    seen = {}
    for name, value in response.json()["headers"]:
        seen.setdefault(name.lower(), []).append(value)
    return response.json()["path"], seen


def _asked_to_log_in(world, browser):
    """The site's answer to a visitor nobody is logged in as: a redirect to geologin, never the page."""
    response = browser.get(world.url + "/", allow_redirects=False, timeout=10)
    return response.status_code == 302 and response.headers["Location"].startswith(
        world.geologin.url + "/forward-auth/back?")


def test_password_login_through_nginx_lands_on_the_page_asked_for_with_the_identity_headers(world, browser):
    first = browser.get(world.url + WANTED, timeout=15)
    assert first.url.startswith(world.geologin.url + "/login?"), first.url  # nginx -> geologin's login page
    landed = _log_in(browser, first, "alice", ALICE_PASSWORD)
    assert landed.url == world.url + WANTED, landed.url
    path, headers = _echoed(landed)
    assert path == WANTED
    assert headers["remote-user"] == ["alice"] and headers["x-forwarded-user"] == ["alice"]
    assert headers["remote-name"] == ["Alice Banda"] and headers["remote-email"] == ["alice@example.org"]
    assert "remote-groups" not in headers  # alice is in no group: an empty answer, which nginx does not pass on
    # Logged in once at geologin's host, recognised on the site's host: the cookie is for .geologin.test.
    assert {cookie.domain for cookie in browser.cookies} == {".geologin.test"}
    assert browser.get(world.url + "/other", allow_redirects=False, timeout=10).status_code == 200


def test_log_in_with_dhis2_through_nginx(world, browser):
    """Also the groups DHIS2 stated, given as "moh:<name>", reaching the site in Remote-Groups."""
    world.geologin.flask("shell", stdin="from geologin.extensions import db\nfrom geologin.models import "
                                        "IdentityProvider\nIdentityProvider.by_slug('moh').groups_prefixed = True\n"
                                        "db.session.commit()\n")
    login_page = browser.get(world.url + WANTED, timeout=15)
    action, fields = _form(login_page, "Log in with DHIS2")
    start = browser.post(action, data={**fields, "provider": "moh"}, allow_redirects=False, timeout=15)
    assert start.status_code in (302, 303), start.text[:500]
    back = Dhis2User("alice", "Alice-pass-123").authorize(start.headers["Location"])
    assert back.startswith(world.geologin.url + "/auth/moh/callback?")
    landed = browser.get(back, timeout=15)
    assert landed.url == world.url + WANTED, landed.url
    assert _echoed(landed)[1]["remote-user"] == ["alice"]
    assert _echoed(landed)[1]["remote-groups"] == ["moh:Data managers,moh:Malaria programme"]


def test_a_user_not_allowed_gets_geologins_403_page_and_the_site_sees_nothing(world, browser):
    received = len(world.site.received)
    refused = _log_in(browser, browser.get(world.url + WANTED, timeout=15), "bob", BOB_PASSWORD)
    assert refused.status_code == 403 and "No access to Reports" in refused.text
    direct = browser.get(world.url + WANTED, allow_redirects=False, timeout=10)
    assert direct.status_code == 403 and "No access to Reports" in direct.text  # through nginx's error_page
    assert "bob" in direct.text and "Remote-User" not in direct.headers
    assert len(world.site.received) == received


def test_sec_69_identity_headers_sent_by_the_client_never_reach_the_upstream(world, browser):
    forged = {"Remote-User": "root", "X-Forwarded-User": "root", "Remote-Name": "Root", "Remote-Email":
              "root@evil.example", "Remote-Groups": "admins", "Remote_User": "root", "X-Forwarded_User": "root"}
    received = len(world.site.received)
    # Nobody logged in: forged headers do not open the site.
    response = browser.get(world.url + WANTED, headers=forged, allow_redirects=False, timeout=10)
    assert response.status_code == 302 and len(world.site.received) == received

    _log_in(browser, browser.get(world.url + "/", timeout=15), "alice", ALICE_PASSWORD)
    path, headers = _echoed(browser.get(world.url + WANTED, headers=forged, timeout=10))
    assert path == WANTED
    assert headers["remote-user"] == ["alice"] and headers["x-forwarded-user"] == ["alice"]
    assert headers["remote-name"] == ["Alice Banda"] and headers["remote-email"] == ["alice@example.org"]
    # geologin's answer (the groups of her DHIS2 login when that test ran first), never the client's "admins"
    assert headers.get("remote-groups", []) in ([], ["moh:Data managers,moh:Malaria programme"])
    # A framework reading Remote_User as REMOTE_USER would be fooled: nginx drops names with an underscore.
    assert not [name for name in headers if "_" in name]
    assert "root" not in repr(headers)


def test_logout_from_the_site_asks_for_a_login_at_the_next_request(world, browser):
    _log_in(browser, browser.get(world.url + "/", timeout=15), "alice", ALICE_PASSWORD)
    assert not _asked_to_log_in(world, browser)
    page = browser.get(world.url + "/", headers={"Accept": "text/html"}, timeout=10)
    logout = re.search(r'<a id="logout" href="([^"]+)"', page.text).group(1).replace("&amp;", "&")
    assert logout == world.logout_url
    stolen = browser.cookies.copy()
    after = browser.get(logout, timeout=15)
    assert after.url.startswith(world.geologin.url + "/login?"), after.url  # back at the site: log in first
    assert _asked_to_log_in(world, browser)
    replay = requests.Session()  # the cookie from before the logout is dead, not just forgotten by the browser
    replay.cookies = stolen
    assert _asked_to_log_in(world, replay)
