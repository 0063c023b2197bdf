"""An administrator's Test login in headless Chromium (issue 18): from the provider's Setup screen through the
fake DHIS2 (2.40) and back to the result page, still logged in as themselves, nobody else logged in."""
import json
import re

import pytest

from tests.browser.conftest import ADMIN, ALICE, LEGACY_VERSION, MOH, log_in_with_password, step_screenshot
from tests.browser.test_journeys import authorize_at_legacy_dhis2, sign_in_at_dhis2

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips (or, in CI, fails) these tests first
    expect = None

pytestmark = pytest.mark.browser


def test_admin_clicks_test_login_and_reads_what_dhis2_said_and_the_decision(start_geologin, start_dhis2, page):
    geologin = start_geologin("test-login")
    geologin.flask("users", "create", ADMIN[0], "--admin", "--password-stdin", stdin=ADMIN[1] + "\n")
    geologin.flask("users", "create", "alice", "--no-password")
    dhis2 = start_dhis2(LEGACY_VERSION, geologin, "moh")
    geologin.add_dhis2("moh", MOH, dhis2, allow=["alice"])

    log_in_with_password(page, geologin, *ADMIN)
    page.goto(geologin.url + "/admin/providers/moh/setup")
    page.get_by_role("button", name="Test login", exact=True).click()

    sign_in_at_dhis2(page, dhis2, ALICE)
    authorize_at_legacy_dhis2(page)

    expect(page.get_by_role("heading", name=f"Test login through {MOH}")).to_be_visible()
    expect(page.locator("#test-login-decision")).to_contain_text("would log in as alice")
    expect(page.locator("#test-login-identity")).to_contain_text("dhis2-uid:xE7jOejl9FI")
    expect(page.locator("#test-login-identity")).to_contain_text("Malaria programme")
    expect(page.locator("#test-login-identity")).to_contain_text("Bombali")
    raw = json.loads(page.locator("#test-login-raw").inner_text())
    assert raw["api/me"]["username"] == "alice" and raw["api/me"]["id"] == "xE7jOejl9FI"
    step_screenshot(page, "test-login-result")

    # Still the administrator, and alice was not logged in or bound.
    page.goto(geologin.url + "/")
    expect(page.locator(".logged-in-as")).to_have_text(f"Logged in as {ADMIN[0]}")
    shown = json.loads(geologin.flask("users", "show", "alice", "--json"))
    assert shown["identities"] == [] and shown["last_login_at"] is None, shown
    events = json.loads(geologin.flask("audit", "list", "--json", "--event", "provider.test_login"))
    assert [(e["outcome"], e["actor"]) for e in events] == [("success", ADMIN[0])], events
    assert re.search(r"would log in as alice", events[0]["detail"])
