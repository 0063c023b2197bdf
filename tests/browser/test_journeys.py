"""What people do with geologin, done in headless Chromium against real processes on loopback: geologin
(`flask run`) and fake DHIS2 servers of both OAuth generations (tests/fakes/dhis2).

Journeys (issue 6): 1-3 are one ordered scenario on one instance (first run, the admin's setup, the user's
DHIS2 login); 4, 5 and 6 each start their own geologin instance folder."""
import json
import re
from types import SimpleNamespace

import pytest

from tests.browser.conftest import (ADMIN, ALICE, ALICE_UID, BOB, DHIS2_ADMIN, LEGACY_VERSION, MALARIA, MOH,
                                    OIDC_VERSION, SECRET, free_port, log_in_with_password, step_screenshot)

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips (or, in CI, fails) these tests first
    expect = None

pytestmark = pytest.mark.browser


# -- what a person does, step by step ----------------------------------------------------------------
def sign_in_at_dhis2(page, server, user, screenshot=None):
    """On the (fake) DHIS2 login page: type the DHIS2 username and password, click Sign in."""
    expect(page).to_have_url(re.compile("^" + re.escape(server.origin) + "/"))
    expect(page).to_have_title(re.compile(r"DHIS 2 \(fake\) - Log in"))
    page.get_by_label("Username").fill(user[0])
    page.get_by_label("Password").fill(user[1])
    if screenshot:
        step_screenshot(page, screenshot)
    page.get_by_role("button", name="Sign in").click()


def authorize_at_legacy_dhis2(page, approve=True, screenshot=None):
    """DHIS2 2.30-2.41 asks once per login: Authorize or Deny."""
    expect(page.get_by_role("heading", name="OAuth2 Confirm Access")).to_be_visible()
    if screenshot:
        step_screenshot(page, screenshot)
    page.get_by_role("button", name="Authorize" if approve else "Deny").click()


def consent_at_oidc_dhis2(page, screenshot=None):
    """DHIS2 2.42+ (Spring Authorization Server) asks for consent the first time: tick, submit."""
    expect(page.get_by_role("heading", name="Consent required")).to_be_visible()
    boxes = page.locator("#consent_form input[type=checkbox][name=scope]")
    expect(boxes).to_have_count(1)  # geologin asks "openid username"; openid needs no consent
    expect(page.get_by_label("username")).to_be_visible()
    for index in range(boxes.count()):
        boxes.nth(index).check()
    if screenshot:
        step_screenshot(page, screenshot)
    page.get_by_role("button", name="Submit Consent").click()


def expect_logged_in(page, geologin, username):
    expect(page).to_have_url(geologin.url + "/")
    expect(page.locator(".logged-in-as")).to_have_text(f"Logged in as {username}")
    expect(page.get_by_role("button", name="Log out", exact=True)).to_be_visible()


def expect_login_error(page, geologin, message):
    expect(page).to_have_url(re.compile("^" + re.escape(geologin.url) + r"/login(\?|$)"))
    expect(page.locator(".flash-error")).to_contain_text(message)
    expect(page.get_by_role("button", name="Log out", exact=True)).to_have_count(0)


def expect_nobody_logged_in(page, geologin):
    page.goto(geologin.url + "/")
    expect(page).to_have_url(re.compile("^" + re.escape(geologin.url) + r"/login(\?|$)"))
    expect(page.get_by_role("button", name="Log out", exact=True)).to_have_count(0)


def log_out_and_check_the_old_cookie_is_dead(page, open_page, geologin):
    """Log out with the header's button; replaying the cookie from before gets nobody logged in."""
    before = [c for c in page.context.cookies() if c["name"] == "geologin_session"]
    assert before, page.context.cookies()
    username = page.locator(".logged-in-as").inner_text().removeprefix("Logged in as ")
    copy = open_page()  # first, the control: the cookie alone logs another browser in
    copy.context.add_cookies(before)
    copy.goto(geologin.url + "/")
    expect_logged_in(copy, geologin, username)
    page.get_by_role("button", name="Log out", exact=True).click()
    expect(page).to_have_url(re.compile("^" + re.escape(geologin.url) + "/login"))
    expect(page.locator(".flash-info")).to_have_text("You have been logged out.")
    expect_nobody_logged_in(page, geologin)
    replay = open_page()
    replay.context.add_cookies(before)
    expect_nobody_logged_in(replay, geologin)


def last_login_event(geologin):
    events = json.loads(geologin.flask("audit", "list", "--json", "--event", "login", "--limit", "1"))
    return events[-1]


# -- journeys 1, 2, 3: first run, the admin sets things up, a user logs in with DHIS2 --------------------
class TestFirstRunToDhis2Login:
    """One ordered scenario on one geologin instance: each journey starts where the one before ended."""

    @pytest.fixture(scope="class")
    @classmethod
    def world(cls, start_geologin, start_dhis2):
        geologin = start_geologin("first-run")
        return SimpleNamespace(
            geologin=geologin,
            legacy=start_dhis2(LEGACY_VERSION, geologin, "moh", "malaria", base_path="/dhis"),
            oidc=start_dhis2(OIDC_VERSION, geologin, "moh", "malaria"),
            done=set(),
        )

    @staticmethod
    def needs(world, journey):
        if journey not in world.done:
            pytest.skip(f"journey {journey} did not finish, and this one continues from it")

    def test_1_setup_link_creates_the_first_admin(self, world, page):
        geologin = world.geologin
        page.goto(geologin.url + "/login")
        expect(page.locator(".notice")).to_contain_text("geologin has no administrator yet")
        output = geologin.flask("setup-link", "--base-url", geologin.url)
        link = re.search(re.escape(geologin.url) + r"/setup/[\w-]+", output).group(0)

        page.goto(link)
        expect(page.get_by_role("heading", name="Create the first administrator")).to_be_visible()
        page.get_by_label("Username").fill(ADMIN[0])
        page.get_by_label("Display name").fill("Operations team")
        page.get_by_label("Password", exact=True).fill(ADMIN[1])
        page.get_by_label("Repeat the password").fill(ADMIN[1])
        step_screenshot(page, "01-setup")
        page.get_by_role("button", name="Create administrator").click()

        expect(page).to_have_url(geologin.url + "/admin/users")
        expect(page.locator(".flash-info")).to_have_text("Welcome! You are the first administrator.")
        row = page.get_by_role("row").filter(has=page.get_by_role("link", name=ADMIN[0], exact=True))
        expect(row).to_contain_text("Administrator")
        # The link works once: now there is an administrator, it leads nowhere.
        assert page.goto(link).status == 404
        expect(page.get_by_role("heading", name="Create the first administrator")).to_have_count(0)
        page.goto(geologin.url + "/login")
        expect(page.locator(".notice")).to_have_count(0)
        world.done.add(1)

    def test_2_admin_creates_a_user_registers_two_dhis2_servers_and_allows_the_user(self, world, page):
        self.needs(world, 1)
        geologin = world.geologin
        log_in_with_password(page, geologin, *ADMIN)
        expect_logged_in(page, geologin, ADMIN[0])

        # A user who logs in through DHIS2 only.
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Users").click()
        page.get_by_role("link", name="New user").click()
        page.get_by_label("Username").fill("alice")
        page.get_by_label("Display name").fill("Alice Banda")
        page.get_by_label("Email").fill("alice@moh.example.org")
        page.get_by_label("Password login allowed").uncheck()
        page.get_by_role("button", name="Create user").click()
        expect(page.locator(".flash-info")).to_contain_text("alice")
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Users").click()
        alice_row = page.get_by_role("row").filter(has=page.get_by_role("link", name="alice", exact=True))
        expect(alice_row).to_contain_text("Alice Banda")
        expect(alice_row).to_contain_text("No password login")
        step_screenshot(page, "02-admin-users")

        # Two DHIS2 servers, one of each OAuth generation, through Identity providers -> Add -> DHIS2.
        servers = (("moh", MOH, world.legacy, "DHIS2 answers at", "legacy (/uaa)"),  # < 2.41: no loginConfig
                   ("malaria", MALARIA, world.oidc, f"DHIS2 {OIDC_VERSION} answers at", "2.42+ (OpenID Connect)"))
        for slug, label, server, version, generation in servers:
            page.get_by_role("navigation", name="Main").get_by_role("link", name="Identity providers").click()
            page.get_by_role("link", name="Add identity provider").click()
            page.get_by_role("link", name="DHIS2").click()
            page.get_by_label("Slug").fill(slug)
            page.get_by_label("Label").fill(label)
            page.get_by_label("Description").fill("A fake DHIS2 on this machine, for the browser tests")
            page.get_by_label("DHIS2 address").fill(server.url + "/")
            expect(page.get_by_label("OAuth2 client ID")).to_have_value("geologin")
            page.get_by_label("OAuth2 client secret").fill(SECRET)
            expect(page.locator(".redirect-uri code.uri")).to_have_text(f"{geologin.url}/auth/slug/callback")
            if slug == "malaria":
                page.locator("#redirect-uri-heading").evaluate("heading => heading.scrollIntoView()")
                step_screenshot(page, "03-admin-provider-new")
            page.get_by_role("button", name="Add identity provider").click()

            # Its Setup page: what to register in DHIS2, and "Test connection".
            expect(page.get_by_role("heading", name=f"Setup of {label}")).to_be_visible()
            expect(page.locator(".flash-info", has_text=f"Identity provider {label} created")).to_be_visible()
            # Created enabled because its connection test passed (a provider that fails it starts disabled).
            expect(page.locator(".flash-info", has_text="The connection test passed")).to_be_visible()
            expect(page.locator("dd code.uri")).to_have_text(f"{geologin.url}/auth/{slug}/callback")
            page.get_by_role("button", name="Test connection").click()
            results = page.locator("table.checks tbody tr")
            expect(results.first).to_be_visible()
            assert results.count() >= 2, results.all_inner_texts()
            expect(page.locator("table.checks .tag-off")).to_have_count(0)  # no "failed"
            expect(page.locator("table.checks")).to_contain_text(version)
            expect(page.locator("table.checks")).to_contain_text(generation)
            expect(page.locator("table.checks")).to_contain_text("DHIS2 accepts the client ID and secret.")
            if slug == "malaria":
                step_screenshot(page, "04-admin-provider-test")

        page.get_by_role("navigation", name="Main").get_by_role("link", name="Identity providers").click()
        rows = page.locator("table.list tbody tr")
        expect(rows).to_have_count(2)
        expect(rows.nth(0)).to_contain_text(MOH)
        expect(rows.nth(1)).to_contain_text(MALARIA)
        expect(rows.nth(0)).to_contain_text("0 allowed users")
        step_screenshot(page, "05-admin-providers")

        # Allow alice for the 2.40 server only, on her user screen.
        page.get_by_role("navigation", name="Main").get_by_role("link", name="Users").click()
        page.get_by_role("link", name="alice", exact=True).click()
        page.get_by_role("checkbox", name=re.compile(re.escape(MOH))).check()
        expect(page.get_by_role("checkbox", name=re.compile(re.escape(MALARIA)))).not_to_be_checked()
        page.get_by_role("button", name="Save identity providers").click()
        expect(page.locator(".flash-info")).to_be_visible()
        expect(page.get_by_role("checkbox", name=re.compile(re.escape(MOH)))).to_be_checked()
        expect(page.get_by_role("checkbox", name=re.compile(re.escape(MALARIA)))).not_to_be_checked()
        page.locator("#identity-providers").evaluate("heading => heading.scrollIntoView()")
        step_screenshot(page, "06-admin-user")

        page.get_by_role("navigation", name="Main").get_by_role("link", name="Identity providers").click()
        expect(rows.nth(0)).to_contain_text("1 allowed user")
        expect(rows.nth(1)).to_contain_text("0 allowed users")
        world.done.add(2)

    def test_3_user_logs_in_with_dhis2_then_logs_out(self, world, open_page):
        self.needs(world, 2)
        geologin, page = world.geologin, open_page()
        page.goto(geologin.url + "/login")
        server = page.get_by_label("DHIS2 server")
        expect(server.locator("option")).to_have_text([MOH, MALARIA])  # in the admins' order
        server.select_option(label=MOH)
        step_screenshot(page, "07-login")
        page.get_by_role("button", name="Log in with DHIS2").click()

        sign_in_at_dhis2(page, world.legacy, ALICE, screenshot="08-dhis2-sign-in")
        authorize_at_legacy_dhis2(page, screenshot="09-dhis2-authorize")
        expect_logged_in(page, geologin, "alice")
        expect(page.get_by_text("Alice Banda")).to_be_visible()
        step_screenshot(page, "10-logged-in")
        event = last_login_event(geologin)
        assert (event["outcome"], event["provider"], event["target"]) == ("success", "moh", "alice"), event

        log_out_and_check_the_old_cookie_is_dead(page, open_page, geologin)
        # The login page remembers the server chosen last time.
        page.goto(geologin.url + "/login")
        expect(page.get_by_label("DHIS2 server")).to_have_value("moh")

        # The admin sees the DHIS2 account now linked to alice.
        admin = open_page()
        log_in_with_password(admin, geologin, *ADMIN)
        admin.goto(geologin.url + "/admin/users")
        admin.get_by_role("link", name="alice", exact=True).click()
        expect(admin.locator("#linked-accounts + p + table")).to_contain_text(ALICE_UID)


# -- journey 4: only one DHIS2 server (2.42+): no selector, straight to DHIS2 ---------------------------
def test_4_one_dhis2_server_the_button_goes_straight_there(start_geologin, start_dhis2, open_page):
    geologin = start_geologin("one-server")
    oidc = start_dhis2(OIDC_VERSION, geologin, "malaria")
    geologin.flask("users", "create", "alice", "--no-password")
    geologin.add_dhis2("malaria", MALARIA, oidc, allow=["alice"])

    page = open_page()
    page.goto(geologin.url + "/login")
    expect(page.get_by_role("button", name="Log in with DHIS2")).to_be_visible()
    expect(page.locator("main select")).to_have_count(0)  # the header has the language picker
    expect(page.get_by_label("DHIS2 server")).to_have_count(0)
    page.get_by_role("button", name="Log in with DHIS2").click()

    sign_in_at_dhis2(page, oidc, ALICE)
    consent_at_oidc_dhis2(page, screenshot="11-dhis2-consent")
    expect_logged_in(page, geologin, "alice")
    event = last_login_event(geologin)
    assert (event["outcome"], event["provider"], event["target"]) == ("success", "malaria", "alice"), event
    log_out_and_check_the_old_cookie_is_dead(page, open_page, geologin)

    # Logging out of geologin does not log out of DHIS2, which also remembers the consent: one click, no
    # DHIS2 page, logged in again.
    page.get_by_role("button", name="Log in with DHIS2").click()
    expect_logged_in(page, geologin, "alice")


# -- journey 5: every way a DHIS2 login ends on the login page, nobody logged in -------------------------
class TestDhis2LoginFailures:
    DOWN = "Regional DHIS2 (switched off)"

    @pytest.fixture(scope="class")
    @classmethod
    def world(cls, start_geologin, start_dhis2):
        geologin = start_geologin("failures")
        legacy = start_dhis2(LEGACY_VERSION, geologin, "moh")
        geologin.flask("users", "create", ADMIN[0], "--admin", "--password-stdin", stdin=ADMIN[1] + "\n")
        geologin.flask("users", "create", "alice", "--no-password")
        geologin.flask("users", "create", "bob", "--no-password")
        geologin.add_dhis2("moh", MOH, legacy, allow=["alice"])
        # A DHIS2 server that is down: nothing listens at its address.
        down = SimpleNamespace(url=f"http://127.0.0.1:{free_port()}")
        geologin.add_dhis2("regional", cls.DOWN, down, allow=["alice"])
        return SimpleNamespace(geologin=geologin, legacy=legacy)

    @pytest.mark.parametrize("case", ["deny", "not-allowed", "unknown-user", "server-down"])
    def test_5_failed_dhis2_login_ends_on_the_login_page_with_its_message(self, world, open_page, case):
        geologin, page = world.geologin, open_page()
        page.goto(geologin.url + "/login")
        page.get_by_label("DHIS2 server").select_option(label=self.DOWN if case == "server-down" else MOH)
        page.get_by_role("button", name="Log in with DHIS2").click()
        if case == "deny":
            sign_in_at_dhis2(page, world.legacy, ALICE)
            authorize_at_legacy_dhis2(page, approve=False)
            expected = (f"You did not authorize the login at {MOH}, so you are not logged in.", "access_denied",
                        None)
        elif case == "not-allowed":
            sign_in_at_dhis2(page, world.legacy, BOB)
            authorize_at_legacy_dhis2(page)
            expected = (f"User bob is not allowed to log in through {MOH}. Ask an administrator to enable it.",
                        "not_allowed", "bob")
        elif case == "unknown-user":
            sign_in_at_dhis2(page, world.legacy, DHIS2_ADMIN)
            authorize_at_legacy_dhis2(page)
            expected = ("User admin does not exist here.", "unknown_user", "admin")
        else:
            expected = (f"{self.DOWN} cannot be reached right now.", "provider_unavailable", None)

        message, reason, target = expected
        expect_login_error(page, world.geologin, message)
        if case == "not-allowed":
            step_screenshot(page, "12-login-refused")
        event = last_login_event(geologin)
        assert (event["outcome"], event["reason_code"], event["target"]) == ("failure", reason, target), event
        assert event["provider"] == ("regional" if case == "server-down" else "moh"), event
        expect_nobody_logged_in(page, geologin)


# -- journey 6: the local password login and the admin screens with JavaScript disabled -----------------
class TestWithoutJavaScript:
    @pytest.fixture(scope="class")
    @classmethod
    def world(cls, start_geologin, start_dhis2):
        geologin = start_geologin("no-javascript")
        legacy = start_dhis2(LEGACY_VERSION, geologin, "moh")
        geologin.flask("users", "create", ADMIN[0], "--admin", "--password-stdin", stdin=ADMIN[1] + "\n")
        geologin.flask("users", "create", "alice", "--no-password")
        geologin.add_dhis2("moh", MOH, legacy)
        return SimpleNamespace(geologin=geologin, legacy=legacy)

    @pytest.fixture
    def page(self, open_page):
        page = open_page(java_script_enabled=False)
        page.set_content('<p id="canary">static</p><script>canary.textContent = "scripted"</script>')
        expect(page.locator("#canary")).to_have_text("static")  # scripts really do not run here
        return page

    def test_6_password_login_and_logout_without_javascript(self, world, page):
        geologin = world.geologin
        log_in_with_password(page, geologin, ADMIN[0], "not-the-password-at-all")
        expect_login_error(page, geologin, "Invalid username or password.")
        log_in_with_password(page, geologin, *ADMIN)
        expect_logged_in(page, geologin, ADMIN[0])
        page.get_by_role("button", name="Log out", exact=True).click()
        expect(page.locator(".flash-info")).to_have_text("You have been logged out.")
        expect_nobody_logged_in(page, geologin)

    def test_6_admin_screens_without_javascript(self, world, page):
        geologin = world.geologin
        log_in_with_password(page, geologin, *ADMIN)
        nav = page.get_by_role("navigation", name="Main")

        # Create a user: a mistake first (the form says what is wrong), then right.
        nav.get_by_role("link", name="Users").click()
        page.get_by_role("link", name="New user").click()
        page.get_by_label("Username").fill("carol")
        page.get_by_label("Password", exact=True).fill("Stoat-lantern-orbit-42")
        page.get_by_label("Repeat the password").fill("something else entirely")
        page.get_by_role("button", name="Create user").click()
        expect(page.locator("#confirm-error")).to_be_visible()
        expect(page.get_by_label("Repeat the password")).to_have_attribute("aria-invalid", "true")
        page.get_by_label("Password", exact=True).fill("Stoat-lantern-orbit-42")
        page.get_by_label("Repeat the password").fill("Stoat-lantern-orbit-42")
        page.get_by_role("button", name="Create user").click()
        expect(page.locator(".flash-info")).to_contain_text("carol")

        # Search, open, deactivate, activate, allow for a DHIS2 server.
        nav.get_by_role("link", name="Users").click()
        page.get_by_label("Search users").fill("car")
        page.get_by_role("button", name="Search").click()
        expect(page.locator("table.list tbody tr")).to_have_count(1)
        page.get_by_role("link", name="carol", exact=True).click()
        page.get_by_role("button", name="Deactivate").click()
        expect(page.get_by_role("button", name="Activate")).to_be_visible()
        page.get_by_role("button", name="Activate").click()
        expect(page.get_by_role("button", name="Deactivate")).to_be_visible()
        page.get_by_role("checkbox", name=re.compile(re.escape(MOH))).check()
        page.get_by_role("button", name="Save identity providers").click()
        expect(page.get_by_role("checkbox", name=re.compile(re.escape(MOH)))).to_be_checked()

        # A provider's Setup page, its connection test, and its Users screen (bulk allow).
        nav.get_by_role("link", name="Identity providers").click()
        page.get_by_role("link", name=f"Setup of {MOH}").click()
        page.get_by_role("button", name="Test connection").click()
        expect(page.locator("table.checks tbody tr").first).to_be_visible()
        expect(page.locator("table.checks .tag-off")).to_have_count(0)
        nav.get_by_role("link", name="Identity providers").click()
        page.get_by_role("link", name=f"Users of {MOH}").click()
        page.get_by_role("textbox").first.fill("alice")
        page.get_by_role("button", name="Allow these users").click()
        allowed = page.locator("table.list tbody tr")
        expect(allowed).to_have_count(2)
        expect(allowed).to_contain_text(["alice", "carol"])

        # The audit trail, filtered.
        nav.get_by_role("link", name="Audit").click()
        page.get_by_label("User").fill("carol")
        page.get_by_role("button", name="Filter").click()
        expect(page.locator("table.audit tbody tr").first).to_be_visible()
        expect(page.locator("table.audit")).to_contain_text("user.create")
