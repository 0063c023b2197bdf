"""The application `make demo` adds (examples/flask-app, the docs' Authlib recipe) signs people in through
geologin for real: the demo runs as it does for a person (geologin, the fake DHIS2 servers and the app, each
a process on loopback), and a browser (requests.Session) clicks through what the demo prints."""
import contextlib
import os
import re
import select
import socket
import subprocess
import sys
import threading
import time
from html import unescape
from pathlib import Path
from urllib.parse import urljoin

import pytest
import requests

from tests.conftest import TEST_DB, extra_postgres_database
from tests.fakes import Dhis2User

ROOT = Path(__file__).resolve().parent.parent


def _free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Demo:
    """What `make demo` printed: geologin's and the application's URLs, and the administrator's password."""

    def __init__(self, output):
        self.output = output
        self.geologin = re.search(r"geologin demo: open (http://127\.0\.0\.1:\d+)/login", output).group(1)
        self.app = re.search(r"open (http://127\.0\.0\.1:\d+) -> Sign in with geologin", output).group(1)
        self.malaria_app = re.search(r"open (http://127\.0\.0\.1:\d+) -> Sign in with geologin -> Log in with DHIS2 -> "
                                     r"alice -> in", output).group(1)
        self.admin_password = re.search(r"demo-admin / (\S+)", output).group(1)


def _wait_until_serving(url, process, deadline):
    while True:
        try:
            return requests.get(url, timeout=2)
        except requests.ConnectionError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise
            time.sleep(0.2)


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """`scripts/demo.py` on free ports (SQLite, or DEMO_DATABASE_URL in the PostgreSQL pass)."""
    tmp = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOLOGIN_") and k != "DATABASE_URL"}
    env.update({"DEMO_INSTANCE": str(tmp / "instance"), "PORT": str(_free_port())})
    with contextlib.ExitStack() as stack:
        if TEST_DB == "postgresql":
            env["DEMO_DATABASE_URL"] = stack.enter_context(extra_postgres_database())
        process = subprocess.Popen([sys.executable, "scripts/demo.py"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        try:
            output, deadline = "", time.monotonic() + 40
            while "Press Ctrl-C" not in output and time.monotonic() < deadline and process.poll() is None:
                if select.select([process.stdout], [], [], 0.5)[0]:
                    output += process.stdout.readline()
            assert "Press Ctrl-C" in output, output
            # Keep reading what the servers log, so a full pipe never blocks them.
            threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
            running = Demo(output)
            _wait_until_serving(running.geologin + "/login", process, deadline)
            _wait_until_serving(running.app + "/", process, deadline)
            yield running
        finally:
            process.terminate()
            process.wait(20)


def _form(page, button_text):
    """The action and fields of the form on ``page`` whose submit button reads ``button_text``, as a browser
    would send them when that button is clicked."""
    for match in re.finditer(r"<form\b([^>]*)>(.*?)</form>", page.text, re.S):
        attributes, body = match.groups()
        button = next((b for b in re.finditer(r"<button\b([^>]*)>(.*?)</button>", body, re.S)
                       if button_text in unescape(re.sub(r"<[^>]+>", "", b.group(2)))), None)
        if button is None:
            continue
        fields = {}
        for tag in re.finditer(r"<input\b([^>]*)>", body):
            name = re.search(r'name="([^"]*)"', tag.group(1))
            value = re.search(r'value="([^"]*)"', tag.group(1))
            kind = re.search(r'type="([^"]*)"', tag.group(1))
            if name and (not kind or kind.group(1) not in ("checkbox", "radio") or "checked" in tag.group(1)):
                fields[unescape(name.group(1))] = unescape(value.group(1)) if value else ""
        name, value = (re.search(rf'{attr}="([^"]*)"', button.group(1)) for attr in ("name", "value"))
        if name:
            fields[unescape(name.group(1))] = unescape(value.group(1)) if value else ""
        action = re.search(r'action="([^"]*)"', attributes)
        return urljoin(page.url, unescape(action.group(1)) if action else page.url), fields
    raise AssertionError(f"no form with a {button_text!r} button on {page.url}:\n{page.text[:2000]}")


def _submit(browser, page, button_text, **values):
    action, fields = _form(page, button_text)
    return browser.post(action, data={**fields, **values}, timeout=15)


def _authorize_if_asked(browser, page):
    """geologin's consent screen, when it shows one, answered with Allow."""
    if "/oauth/authorize" in page.url and page.status_code == 200:
        return _submit(browser, page, "Allow")
    return page


def _signed_in_as(page):
    found = re.search(r'<strong id="user">([^<]*)</strong>', page.text)
    return found and unescape(found.group(1))


def _logged_in_at_geologin(browser, demo):
    return browser.get(demo.geologin + "/", allow_redirects=False, timeout=10).status_code == 200


def _log_out_from_the_app(browser, demo):
    back = _submit(browser, browser.get(demo.app + "/", timeout=10), "Log out")
    assert back.url == demo.app + "/", back.url  # through geologin's end_session_endpoint and back
    assert "You are not signed in" in back.text
    assert not _logged_in_at_geologin(browser, demo)


def test_the_demo_app_signs_in_with_a_geologin_password_and_its_logout_ends_the_geologin_session(demo):
    browser = requests.Session()
    assert "You are not signed in" in browser.get(demo.app + "/", timeout=10).text
    login_page = browser.get(demo.app + "/login", timeout=15)
    assert login_page.url.startswith(demo.geologin + "/login"), login_page.url
    landed = _authorize_if_asked(browser, _submit(browser, login_page, "Log in", username="demo-admin",
                                                  password=demo.admin_password))
    assert landed.url == demo.app + "/", landed.url
    assert _signed_in_as(landed) == "demo-admin"
    assert "<th>sub</th>" in landed.text and "Demo administrator" in landed.text  # the claims geologin sent
    assert _logged_in_at_geologin(browser, demo)
    _log_out_from_the_app(browser, demo)


def test_the_demo_app_signs_in_through_dhis2_as_the_demo_prints_it(demo):
    """open the app -> geologin's login page -> Log in with DHIS2 -> alice at the fake DHIS2 -> Authorize."""
    browser = requests.Session()
    login_page = browser.get(demo.app + "/login", timeout=15)
    start = _submit_without_following(browser, login_page, "Log in with DHIS2", provider="moh-legacy")
    back = Dhis2User("alice", "Alice-pass-123").authorize(start.headers["Location"])
    landed = _authorize_if_asked(browser, browser.get(back, timeout=15))
    assert landed.url == demo.app + "/", landed.url
    assert _signed_in_as(landed) == "alice"
    assert "moh-legacy" in landed.text  # idp: the identity provider alice came through
    _log_out_from_the_app(browser, demo)


def _through_dhis2_into(browser, app_url, user, server="malaria"):
    login_page = browser.get(app_url + "/login", timeout=15)
    start = _submit_without_following(browser, login_page, "Log in with DHIS2", provider=server)
    back = Dhis2User(*user).authorize(start.headers["Location"])
    return _authorize_if_asked(browser, browser.get(back, timeout=15))


def test_the_demo_malaria_application_admits_the_malaria_programme_group_only(demo):
    """alice (in DHIS2's Malaria programme group) gets in with her groups and DHIS2 attributes as claims;
    carol, in the group at the 2.42 server but without an account, gets one at her first login; bob (HIV
    programme) is refused by geologin before the application sees anything."""
    browser = requests.Session()
    landed = _through_dhis2_into(browser, demo.malaria_app, ("alice", "Alice-pass-123"))
    assert landed.url == demo.malaria_app + "/", landed.url
    assert _signed_in_as(landed) == "alice" and "Malaria dashboards" in landed.text
    assert "Malaria programme" in landed.text and "dhis2_org_units" in landed.text and "Bombali" in landed.text
    # Asked of DHIS2 with alice's own kept token, through geologin's proxy.
    org_units = re.search(r'<p id="dhis2-org-units">([^<]*)</p>', landed.text)
    assert org_units and "Bo, Bombali" in unescape(org_units.group(1)), landed.text[:2000]

    carol = requests.Session()
    landed = _through_dhis2_into(carol, demo.malaria_app, ("carol", "Carol-pass-123"))
    assert _signed_in_as(landed) == "carol", landed.text[:1000]

    bob = requests.Session()
    refused = _through_dhis2_into(bob, demo.malaria_app, ("bob", "Bob-pass-123"), server="moh-legacy")
    assert _signed_in_as(refused) is None
    assert refused.status_code == 403 and "access_denied" in refused.text, refused.text[:1000]


def test_the_demo_protects_a_site_behind_nginx_or_says_how_to_get_nginx(demo):
    """With nginx: the site the demo prints asks for a login at geologin, then shows who logged in; without
    it, the demo says how to install it (and CI, which installs nginx, must get the site)."""
    from tests.forward_proxy import IN_CI, nginx_missing

    site = re.search(r"open (http://127\.0\.0\.1:\d+)/ -> geologin's login page", demo.output)
    if nginx_missing():
        assert site is None and "No site behind nginx: nginx is not installed (apt-get install nginx" in demo.output
        if IN_CI:
            pytest.fail("nginx is missing (CI is set, so the demo must protect its site behind nginx)")
        return
    assert site, demo.output
    browser = requests.Session()
    login_page = browser.get(site.group(1) + "/reports?year=2024", timeout=15)
    assert login_page.url.startswith(demo.geologin + "/login?"), login_page.url
    landed = _submit(browser, login_page, "Log in", username="demo-admin", password=demo.admin_password)
    assert landed.url == site.group(1) + "/reports?year=2024", landed.url
    assert ["Remote-User", "demo-admin"] in landed.json()["headers"]


def _submit_without_following(browser, page, button_text, **values):
    action, fields = _form(page, button_text)
    response = browser.post(action, data={**fields, **values}, allow_redirects=False, timeout=15)
    assert response.status_code in (302, 303), (response.status_code, response.text[:500])
    return response
