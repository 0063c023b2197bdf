"""An application behind Apache httpd with mod_auth_openidc signs a person in through geologin, in headless
Chromium: the protected page sends her to geologin's login, "Log in with DHIS2" (a fake DHIS2 2.40),
Authorize at DHIS2, Allow at geologin, and the page greets her by name; its Log out link ends the geologin
session too (RP-initiated logout with the ID token as hint). The Apache setup is tests/e2e/relying_parties.py's."""
import re

import pytest

from tests.browser.conftest import ADMIN, ALICE, LEGACY_VERSION, MOH, free_port, step_screenshot
from tests.browser.test_journeys import authorize_at_legacy_dhis2, expect_nobody_logged_in, sign_in_at_dhis2
from tests.e2e.relying_parties import Apache, register_application, require_apache

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips (or, in CI, fails) these tests first
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.e2e]
APP = "Intranet (Apache)"


@pytest.fixture(scope="module")
def world(start_geologin, start_dhis2):
    """geologin with alice, who has no password and may log in through the MoH DHIS2 (fake, 2.40), and an
    Apache protecting /protected/ as one of geologin's applications (not first-party: consent is asked)."""
    require_apache()
    geologin = start_geologin("apps")
    # An administrator exists, so the login page shows no first-run notice (the screenshots show real use).
    geologin.flask("users", "create", ADMIN[0], "--admin", "--password-stdin", stdin=ADMIN[1] + "\n")
    geologin.flask("users", "create", "alice", "--no-password", "--display-name", "Alice Banda")
    dhis2 = start_dhis2(LEGACY_VERSION, geologin, "moh")
    geologin.add_dhis2("moh", MOH, dhis2, allow=["alice"])
    port = free_port()
    _, redirect_uri, logged_out = Apache.urls(port)
    client_id, secret = register_application(geologin, APP, [redirect_uri], [logged_out])
    apache = Apache(geologin.url, client_id, secret, port)
    yield geologin, dhis2, apache
    apache.stop()


def test_an_apache_application_signs_in_through_dhis2_and_its_logout_ends_the_geologin_session(world, page):
    geologin, dhis2, apache = world
    protected = apache.url + "/protected/hello"
    page.goto(protected)
    expect(page).to_have_url(re.compile("^" + re.escape(geologin.url) + r"/login\?"))
    expect(page.get_by_role("heading", name="Log in", exact=True)).to_be_visible()
    step_screenshot(page, "apps-1-login")
    page.get_by_role("button", name="Log in with DHIS2").click()

    sign_in_at_dhis2(page, dhis2, ALICE)
    authorize_at_legacy_dhis2(page, screenshot="apps-2-dhis2-authorize")

    expect(page).to_have_url(re.compile("^" + re.escape(geologin.url) + "/oauth/authorize"))
    expect(page.get_by_role("heading", name=f"Allow {APP}?")).to_be_visible()
    expect(page.get_by_text("your username and name")).to_be_visible()
    step_screenshot(page, "apps-3-consent")
    page.get_by_role("button", name="Allow", exact=True).click()

    expect(page).to_have_url(protected)
    expect(page.locator("#name")).to_have_text("Alice Banda")
    expect(page.locator("#username")).to_have_text("alice")
    step_screenshot(page, "apps-4-signed-in")

    page.get_by_role("link", name="Log out").click()
    expect(page).to_have_url(apache.logged_out_url)
    expect(page.get_by_text("You left the application.")).to_be_visible()
    expect_nobody_logged_in(page, geologin)  # geologin's home page asks for a login
    expect(page.get_by_role("button", name="Log in with DHIS2")).to_be_visible()
    # Neither session is left: the application sends her to geologin's login page again.
    page.goto(protected)
    expect(page).to_have_url(re.compile("^" + re.escape(geologin.url) + r"/login\?"))
    expect(page.get_by_role("button", name="Log in", exact=True)).to_be_visible()
