"""Journey 7: the login page and the admin screens have no serious or critical accessibility violations,
as axe-core (from the npm registry, `make browser-deps`) finds them in headless Chromium."""
import json
from types import SimpleNamespace

import pytest

from tests.browser.conftest import (ADMIN, LEGACY_VERSION, MALARIA, MOH, OIDC_VERSION, VIEWPORT, axe_script,
                                    log_in_with_password)

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips (or, in CI, fails) these tests first
    expect = None

pytestmark = pytest.mark.browser

BLOCKING = ("serious", "critical")


@pytest.fixture(scope="module")
def axe_js(browser):
    return axe_script()  # skips (fails in CI) before any server starts when axe-core is not installed


@pytest.fixture(scope="module")
def site(axe_js, browser, start_geologin, start_dhis2):
    """One geologin with two DHIS2 servers (so the login page has its server select) and a few users;
    the administrator logs in once and every admin page reuses that session."""
    geologin = start_geologin("accessibility")
    geologin.flask("users", "create", ADMIN[0], "--admin", "--password-stdin", stdin=ADMIN[1] + "\n")
    geologin.flask("users", "create", "alice", "--no-password", "--display-name", "Alice Banda")
    geologin.add_dhis2("moh", MOH, start_dhis2(LEGACY_VERSION, geologin, "moh"), allow=["alice"])
    geologin.add_dhis2("malaria", MALARIA, start_dhis2(OIDC_VERSION, geologin, "malaria"))
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    log_in_with_password(page, geologin, *ADMIN)
    expect(page.locator(".logged-in-as")).to_be_visible()
    state = context.storage_state()
    context.close()
    return SimpleNamespace(geologin=geologin, admin_state=state)


def click(name, role="link"):
    return lambda page: page.get_by_role(role, name=name, exact=True).first.click()


# name -> (logged in as the administrator?, path, what to do there before the check)
PAGES = {
    "login": (False, "/login", None),
    "login-failed": (False, "/login", lambda page: (page.get_by_label("Username").fill("nobody"),
                                                    page.get_by_label("Password", exact=True).fill("wrong-password"),
                                                    click("Log in", "button")(page))),
    "home": (True, "/", None),
    "account-password": (True, "/account/password", None),
    "admin-users": (True, "/admin/users", None),
    "admin-user-new-with-errors": (True, "/admin/users/new", click("Create user", "button")),
    "admin-user-edit": (True, "/admin/users", click("alice")),
    "admin-user-password": (True, "/admin/users", lambda page: (click("alice")(page),
                                                                click("Set or reset password")(page))),
    "admin-providers": (True, "/admin/providers", None),
    "admin-provider-types": (True, "/admin/providers/new", None),
    "admin-provider-new": (True, "/admin/providers/new?type=dhis2", None),
    "admin-provider-edit": (True, "/admin/providers/moh/edit", None),
    "admin-provider-setup-tested": (True, "/admin/providers/malaria/setup", click("Test connection", "button")),
    "admin-provider-users": (True, "/admin/providers/moh/users", None),
    "admin-provider-delete": (True, "/admin/providers/malaria/delete", None),
    "admin-audit": (True, "/admin/audit", None),
}


@pytest.mark.parametrize("name", PAGES)
def test_7_no_serious_accessibility_violations(axe_js, site, open_page, name):
    as_admin, path, action = PAGES[name]
    # The pages' Content-Security-Policy forbids injected scripts; only this checking browser ignores it.
    page = open_page(bypass_csp=True, **({"storage_state": site.admin_state} if as_admin else {}))
    response = page.goto(site.geologin.url + path)
    assert response.status == 200, (response.status, page.url)
    if action:
        action(page)
        page.wait_for_load_state()
    if as_admin:
        expect(page.get_by_role("button", name="Log out", exact=True)).to_be_visible()  # not bounced to a login page
    page.add_script_tag(path=str(axe_js))
    results = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    blocking = [v for v in results["violations"] if v["impact"] in BLOCKING]
    assert not blocking, f"{page.url}: " + json.dumps(
        [{"rule": v["id"], "impact": v["impact"], "help": v["help"], "url": v["helpUrl"],
          "where": [node["target"] for node in v["nodes"]][:5]} for v in blocking], indent=2)
