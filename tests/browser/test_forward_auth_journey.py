"""A protected site behind a real nginx, in headless Chromium: open the site, log in at geologin, be back on
the page asked for as yourself; log out from the site, and the site asks for a login again. The setup is
tests/forward_proxy.py's (docs/forward-auth.md's nginx block); Chromium maps *.geologin.test to loopback."""
import re
import shutil
import tempfile
from pathlib import Path

import pytest

from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS, VIEWPORT, _failed, _save_artifacts, step_screenshot
from tests.forward_proxy import CHROMIUM_RESOLVER_RULES, IN_CI, ProtectedSite, nginx_missing

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips (or, in CI, fails) these tests first
    expect = None

pytestmark = [pytest.mark.browser, pytest.mark.nginx]
PASSWORD = "Alice-local-pass-42"


@pytest.fixture(scope="module")
def world(browser):
    why = nginx_missing()
    if why:
        if IN_CI:
            pytest.fail(f"{why} (CI is set, so the nginx tests must run)", pytrace=False)
        pytest.skip(why)
    folder = Path(tempfile.mkdtemp(prefix="geologin-browser-nginx-"))
    world = ProtectedSite(folder, "--all-users")
    try:
        world.geologin.flask("users", "create", "alice", "--password-stdin", "--display-name", "Alice Banda",
                             stdin=PASSWORD + "\n")
        # A second Chromium from the same Playwright, which resolves the invented host names to loopback.
        chromium = browser.browser_type.launch(executable_path=CHROMIUM,
                                               args=[*CHROMIUM_ARGS, CHROMIUM_RESOLVER_RULES])
        try:
            world.browser = chromium
            yield world
        finally:
            chromium.close()
    finally:
        world.stop()
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def site_page(world, request):
    context = world.browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(15_000)
    page = context.new_page()
    yield page
    if _failed(request.node):
        _save_artifacts(request.node, context.pages)
    context.close()


def test_a_site_behind_nginx_logs_in_at_geologin_and_out_again(world, site_page):
    page, geologin = site_page, world.geologin
    wanted = world.url + "/reports/2024?tab=map"
    page.goto(wanted)
    expect(page).to_have_url(re.compile("^" + re.escape(geologin.url) + r"/login\?"))
    page.get_by_label("Username").fill("alice")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    step_screenshot(page, "forward-auth-1-login")
    page.get_by_role("button", name="Log in", exact=True).click()

    expect(page).to_have_url(wanted)
    expect(page.locator("#user")).to_have_text("alice")
    expect(page.locator("#path")).to_have_text("/reports/2024?tab=map")
    step_screenshot(page, "forward-auth-2-site")

    page.get_by_role("link", name="Log out").click()
    expect(page).to_have_url(re.compile("^" + re.escape(geologin.url) + r"/login\?"))
    page.goto(world.url + "/")
    expect(page).to_have_url(re.compile("^" + re.escape(geologin.url) + r"/login\?"))
    expect(page.get_by_role("button", name="Log in", exact=True)).to_be_visible()
