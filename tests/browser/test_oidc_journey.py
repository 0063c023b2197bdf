"""A person logs in to geologin through a real OpenID provider (the npm oidc-provider, tests/realop) in
headless Chromium, then logs out of both: the OpenID Connect plugin's journey as a user sees it."""
import re

import pytest

from tests.browser.conftest import step_screenshot
from tests.realop import ALICE_PASSWORD, CLIENT_SECRET, RealOP, op_config, require_realop

pytestmark = [pytest.mark.browser, pytest.mark.real_op]

try:
    from playwright.sync_api import expect
except ImportError:  # the browser fixture skips (or fails under CI) with the reason
    expect = None


@pytest.fixture(scope="module")
def world(start_geologin):
    require_realop()
    geologin = start_geologin("oidc")
    op = RealOP(op_config([geologin.url + "/auth/health/callback"], [geologin.url + "/login"]),
                path="/realms/health")
    geologin.flask("users", "create", "alice", "--no-password")
    geologin.flask("providers", "add", "oidc", "--slug", "health", "--label", "Health ID", "--issuer", op.issuer,
                   "--client-id", "geologin", "--client-secret-stdin", stdin=CLIENT_SECRET + "\n")
    geologin.flask("users", "allow", "alice", "health")
    yield geologin, op
    op.stop()


def test_log_in_through_an_openid_provider_and_log_out_of_both(world, page):
    geologin, op = world
    page.goto(geologin.url + "/login")
    page.get_by_role("button", name="Log in with Health ID").click()
    expect(page).to_have_url(re.compile("^" + re.escape(op.issuer) + "/interaction/"))
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password").fill(ALICE_PASSWORD)
    step_screenshot(page, "13-oidc-sign-in")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Authorize").click()
    expect(page).to_have_url(geologin.url + "/")
    expect(page.locator(".logged-in-as")).to_have_text("Logged in as alice")

    page.get_by_role("button", name="Log out", exact=True).click()
    expect(page).to_have_url(re.compile("^" + re.escape(op.issuer) + "/session/end"))
    page.get_by_role("button", name="Yes, log me out").click()
    expect(page).to_have_url(re.compile("^" + re.escape(geologin.url) + "/login"))
    expect(page.locator(".flash-info")).to_have_text("You have been logged out.")
    # The provider forgot the person too: logging in again asks for the password.
    page.get_by_role("button", name="Log in with Health ID").click()
    expect(page.get_by_label("Password")).to_be_visible()
