"""An administrator's Test login (dry run) on a provider's screen (issue 18): the real flow against the fake
DHIS2 of both generations and the OpenID Connect plugin's canned server, the answer and the decision shown,
and nothing stored: no session, no binding, no account, the administrator's own session unchanged."""
import html
from urllib.parse import parse_qs, urlsplit

import pytest
import requests_mock
from sqlalchemy import func, select

from geologin.apps import clients
from geologin.extensions import db
from geologin.idp import attributes
from geologin.models import (AuditEvent, ExternalIdentity, IdentityProvider, LoginTransaction, User, UserSession)
from geologin.providers import Identity
from geologin.providers.testing import Account
from geologin.providers.testing.app import Login
from tests.conftest import csrf_from
from tests.fakes import Dhis2User
from tests.test_dhis2_login import (ALICE, PUBLIC, back_to_geologin, dhis2_servers, legacy, logged_in_as,  # noqa: F401
                                    oidc, register, start)
from tests.test_oidc_plugin import Server, register as register_oidc

BOB = ("bob", "Bob-pass-123")


@pytest.fixture
def app(app_factory):
    return app_factory(ALLOW_INSECURE_HTTP=True, PUBLIC_URL=PUBLIC)


@pytest.fixture(params=["legacy", "oidc"])
def dhis2(request, legacy, oidc):  # noqa: F811
    """The fake DHIS2 of each generation, as (slug, server)."""
    return request.param, {"legacy": legacy, "oidc": oidc}[request.param]


def test_start(client, slug):
    """Click Test login on the provider's setup page: where geologin sends the browser."""
    token = csrf_from(client.get(f"/admin/providers/{slug}/setup"))
    response = client.post(f"/auth/test/{slug}", data={"csrf_token": token})
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    return response.headers["Location"]


test_start.__test__ = False


def dhis2_test_login(client, slug, user=ALICE, approve=True):
    location = Dhis2User(*user).authorize(test_start(client, slug), approve=approve)
    return back_to_geologin(client, location)


def counts(app):
    with app.app_context():
        return {model.__name__: db.session.scalar(select(func.count()).select_from(model))
                for model in (User, ExternalIdentity, UserSession, LoginTransaction)}


def text_of(response):
    return html.unescape(response.get_data(as_text=True))


def test_events(app):
    with app.app_context():
        return [(e.outcome, e.actor, e.reason_code, e.detail) for e in db.session.scalars(
            select(AuditEvent).where(AuditEvent.event_type == "provider.test_login").order_by(AuditEvent.id))]


test_events.__test__ = False


def admin_session(app):
    with app.app_context():
        return sorted(db.session.scalars(select(UserSession.id).join(User).where(User.username == "root")))


# -- what the page shows ------------------------------------------------------------------------------------
def test_allowed_user_shows_the_answer_groups_attributes_decision_and_applications(app, admin_client, dhis2,
                                                                                   make_user):
    slug, server = dhis2
    make_user("alice", password=None)
    register(app, server, slug, allow=["alice"])
    with app.app_context():
        IdentityProvider.by_slug(slug).groups_prefixed = True
        db.session.commit()
        clients.create("Malaria dashboards", ["https://dash.example.org/cb"], all_users=False, actor="test")
        clients.create("Wiki", ["https://wiki.example.org/cb"], actor="test")
    before, own = counts(app), admin_session(app)
    response = dhis2_test_login(admin_client, slug)
    page = text_of(response)
    assert response.status_code == 200 and "Test login through DHIS2 " + slug in page
    assert "would log in as alice" in page and "(first login through this provider" in page
    assert f"{slug}:Malaria programme" in page and f"{slug}:Data managers" in page  # groups in geologin
    assert "Bombali" in page and "/ImspTQPwCqd/fdc6uOvgoji" in page  # org units as cleaned
    raw = page.split('id="test-login-raw"', 1)[1]
    assert '"api/me"' in raw and '"organisationUnits"' in raw and '"Malaria programme"' in raw
    if slug == "oidc":
        assert '"id_token"' in raw and '"sub"' in raw and '"nonce"' not in raw
    assert "access_token" not in page and "code=" not in page
    apps = page.split("test-login-apps", 1)[1]
    assert apps.index("Malaria dashboards") < apps.index("not_allowed") < apps.index("Wiki")
    # Nothing stored, the administrator still themselves with the same session.
    assert counts(app) == {**before, "LoginTransaction": 0} and admin_session(app) == own
    assert logged_in_as(admin_client) == "root"
    with app.app_context():
        assert db.session.scalars(select(ExternalIdentity)).first() is None
    [event] = test_events(app)
    assert event[:3] == ("success", "root", None) and "would log in as alice" in event[3]


def test_unknown_user_shows_the_reason_and_the_message_the_person_would_read(app, admin_client, dhis2):
    slug, server = dhis2
    register(app, server, slug, allow_all=True)
    before = counts(app)
    page = text_of(dhis2_test_login(admin_client, slug, BOB))
    assert "none: no local account has this username" in page and "unknown_user" in page
    assert "User bob does not exist here." in page and "HIV programme" in page
    assert counts(app) == {**before, "LoginTransaction": 0}
    assert "refused (unknown_user)" in test_events(app)[0][3]


def test_not_allowed_user_shows_the_reason_and_their_groups(app, admin_client, legacy, make_user):  # noqa: F811
    make_user("bob", password=None)
    register(app, legacy, "legacy")
    with app.app_context():
        IdentityProvider.by_slug("legacy").groups_prefixed = True
        db.session.commit()
    before = counts(app)
    page = text_of(dhis2_test_login(admin_client, "legacy", BOB))
    assert "not_allowed" in page and "User bob is not allowed to log in through DHIS2 legacy." in page
    assert "<code>bob</code>" in page and "legacy:HIV programme" in page
    assert counts(app) == {**before, "LoginTransaction": 0}


def test_a_refusal_at_the_server_is_shown_and_audited_as_a_failed_test(app, admin_client, legacy):  # noqa: F811
    register(app, legacy, "legacy", allow_all=True)
    page = text_of(dhis2_test_login(admin_client, "legacy", approve=False))
    assert "The login failed" in page and "access_denied" in page
    assert test_events(app)[0][:3] == ("failure", "root", "access_denied")


def test_an_existing_binding_is_not_touched(app, admin_client, client, legacy, make_user):  # noqa: F811
    """A user who logged in before: the test neither rebinds nor restamps the binding or its groups."""
    make_user("alice", password=None)
    register(app, legacy, "legacy", allow=["alice"])
    other = app.test_client()
    assert back_to_geologin(other, Dhis2User(*ALICE).authorize(start(other, "legacy"))).status_code == 302
    with app.app_context():
        binding = db.session.scalars(select(ExternalIdentity)).one()
        stamp = (binding.last_login_at, binding.attributes_seen_at, binding.groups_json)
    legacy.control("users", {"username": "alice", "password": ALICE[1], "uid": "xE7jOejl9FI", "userGroups": []})
    page = text_of(dhis2_test_login(admin_client, "legacy"))
    assert "would log in as alice" in page and "first login through this provider" not in page
    with app.app_context():
        binding = db.session.scalars(select(ExternalIdentity)).one()
        assert (binding.last_login_at, binding.attributes_seen_at, binding.groups_json) == stamp


# -- who may run it, and what it can never become -----------------------------------------------------------
def test_sec_42_a_test_callback_in_a_browser_no_longer_an_admins_shows_nothing(app, client, auth, admin,
                                                                                         legacy, make_user):  # noqa: F811
    make_user("alice", password=None)
    make_user("carol")
    register(app, legacy, "legacy", allow=["alice"])
    auth.login(admin)
    location = Dhis2User(*ALICE).authorize(test_start(client, "legacy"))
    auth.logout()
    auth.login("carol")  # the same browser, now a plain user
    before = counts(app)
    response = back_to_geologin(client, location)
    assert response.status_code == 302 and "Test login" not in text_of(response)
    assert "xE7jOejl9FI" not in text_of(client.get(response.headers["Location"], follow_redirects=True))
    assert logged_in_as(client) == "carol" and counts(app) == {**before, "LoginTransaction": 0}
    with app.app_context():
        event = db.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "login")
                                   .order_by(AuditEvent.id.desc())).first()
        assert (event.outcome, event.reason_code) == ("failure", "state_invalid") and "administrator" in event.detail
    assert test_events(app) == []


def test_sec_42_a_logged_out_browser_at_a_test_callback_is_not_logged_in(app, client, auth, admin, legacy,  # noqa: F811
                                                                       make_user):
    make_user("alice", password=None)
    register(app, legacy, "legacy", allow=["alice"])
    auth.login(admin)
    location = Dhis2User(*ALICE).authorize(test_start(client, "legacy"))
    auth.logout()
    before = counts(app)
    response = back_to_geologin(client, location)
    assert response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/login"
    assert client.get("/").status_code == 302 and counts(app) == {**before, "LoginTransaction": 0}


def test_sec_10_sec_42_only_an_administrator_starts_a_test_login_with_a_post(app, client, auth, make_user, legacy):  # noqa: F811
    make_user("carol")
    register(app, legacy, "legacy", allow_all=True)
    token = csrf_from(client.get("/login"))
    assert urlsplit(client.post("/auth/test/legacy", data={"csrf_token": token}).headers["Location"]).path == "/login"
    auth.login("carol")
    token = csrf_from(client.get("/"))
    assert client.post("/auth/test/legacy", data={"csrf_token": token}).status_code == 403
    assert client.post("/auth/test/legacy").status_code == 400  # no CSRF token
    assert counts(app)["LoginTransaction"] == 0


def test_a_normal_login_transaction_is_never_a_test_and_a_test_never_a_login(app, admin_client, legacy,  # noqa: F811
                                                                             make_user):
    make_user("alice", password=None)
    register(app, legacy, "legacy", allow=["alice"])
    # A test: alice logs in at DHIS2, nobody but root is logged in here.
    assert "would log in as alice" in text_of(dhis2_test_login(admin_client, "legacy"))
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(UserSession)
                                 .join(User).where(User.username == "alice")) == 0
    # A login the administrator's browser starts from the login page stays a login.
    token = csrf_from(admin_client.get("/admin/providers/legacy/setup"))
    location = admin_client.post("/auth/start", data={"csrf_token": token, "provider": "legacy"}).headers["Location"]
    response = back_to_geologin(admin_client, Dhis2User(*ALICE).authorize(location))
    assert response.status_code == 302 and logged_in_as(admin_client) == "alice"
    assert len(test_events(app)) == 1


def test_a_disabled_provider_cannot_be_test_logged(app, admin_client, legacy):  # noqa: F811
    register(app, legacy, "legacy", allow_all=True)
    with app.app_context():
        IdentityProvider.by_slug("legacy").enabled = False
        db.session.commit()
    page = admin_client.get("/admin/providers/legacy/setup").get_data(as_text=True)
    assert "Enable the provider to test a login through it." in page
    response = admin_client.post("/auth/test/legacy", data={"csrf_token": csrf_from(page)})
    assert response.status_code == 302 and counts(app)["LoginTransaction"] == 0


# -- the OpenID Connect plugin ------------------------------------------------------------------------------
@pytest.fixture
def op():
    with requests_mock.Mocker(real_http=True) as mock:
        yield Server(mock)


def test_oidc_plugin_shows_the_id_token_claims_and_groups(app, admin_client, op, make_user):
    make_user("alice", password=None)
    register_oidc(app)
    op.claims = {"groups": ["Malaria programme"]}
    location = test_start(admin_client, "health")
    request = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
    login = Login(Account(), request)
    before = counts(app)
    response = op.callback(admin_client, login, op.answer_login(op.mock, login) or {})
    page = text_of(response)
    assert response.status_code == 200 and "would log in as alice" in page
    raw = page.split('id="test-login-raw"', 1)[1]
    assert '"id_token"' in raw and '"preferred_username": "alice"' in raw and '"Malaria programme"' in raw
    assert '"nonce"' not in raw and login.code not in page
    assert counts(app) == {**before, "LoginTransaction": 0} and logged_in_as(admin_client) == "root"


# -- the core's bounds on the raw answer --------------------------------------------------------------------
def test_sec_49_sec_54_the_raw_answer_is_bounded_plain_data_without_tokens():
    deep = {"a": {"b": {"c": {"d": {"e": {"f": {"g": "too deep"}}}}}}}
    raw = attributes.clean_raw(Identity(subject="s", username="u", raw={
        "id_token": {"sub": "s", "nonce": "n", "access_token": "t", "name": "x\x00\x1b[31my\nz", "n": 7,
                     "list": list(range(1000)), "object": object(), **deep},
        "big": "x" * 70000}))
    claims = raw["id_token"]
    assert "nonce" not in claims and "access_token" not in claims
    assert claims["name"] == "x[31my\nz" and claims["n"] == 7 and claims["object"] == "object"
    assert len(claims["list"]) == attributes.RAW_ITEMS
    assert claims["a"]["b"]["c"]["d"]["e"] == "…"
    assert raw["big"] == "x" * attributes.RAW_TEXT
    assert attributes.clean_raw(Identity(subject="s", username="u", raw="not a mapping")) == {}
    huge = attributes.clean_raw(Identity(subject="s", username="u", raw={
        "one": ["y" * 1500] * 40, "two": ["z" * 1500] * 40}))
    assert huge["one"] == ["y" * 1500] * 40 and huge["two"].startswith("(left out")


def test_a_commit_inside_the_dry_run_is_refused_and_nothing_stays(app, admin_client, legacy, make_user,  # noqa: F811
                                                                  monkeypatch):
    """Should what a login runs (matching, accounts on first login) ever commit, a Test login stores nothing."""
    from geologin.login import dry_run

    def committing(identity, provider):
        db.session.add(User(username="intruder"))
        db.session.commit()

    register(app, legacy, "legacy", allow_all=True)
    monkeypatch.setattr(dry_run, "match_identity", committing)
    before = counts(app)
    with pytest.raises(dry_run.DryRunCommit):
        dhis2_test_login(admin_client, "legacy")
    assert counts(app) == {**before, "LoginTransaction": 0}


def test_a_test_login_that_cannot_start_says_why_on_the_setup_page(app, admin_client, legacy):  # noqa: F811
    register(app, legacy, "legacy", allow_all=True)
    with app.app_context():
        IdentityProvider.by_slug("legacy").settings_json = IdentityProvider.by_slug("legacy").settings_json.replace(
            legacy.url, "http://127.0.0.1:9")
        db.session.commit()
    token = csrf_from(admin_client.get("/admin/providers/legacy/setup"))
    response = admin_client.post("/auth/test/legacy", data={"csrf_token": token}, follow_redirects=True)
    page = text_of(response)
    assert "The test login could not start: DHIS2 legacy cannot be reached right now." in page
    assert counts(app)["LoginTransaction"] == 0
    assert test_events(app)[0][:3] == ("failure", "root", "provider_unavailable")


def test_a_person_who_would_get_an_account_at_the_first_login_is_shown_so_and_none_is_created(
        app, admin_client, legacy):  # noqa: F811
    """Accounts on first login: bob has no account here but is in the provider's account group;
    the test says an account would be created, and afterwards there is still none."""
    from geologin.groups import service as groups
    from geologin.idp import permissions
    register(app, legacy, "legacy")
    with app.app_context():
        provider = IdentityProvider.by_slug("legacy")
        group = groups.create("HIV", actor="test")
        groups.add_mapping(group, provider, "B6JNeAQ6akX", "HIV programme", actor="test")
        permissions.set_create_groups(provider, [group], actor="test")
        permissions.set_account_creation(provider, create_accounts=True, actor="test")
    before = counts(app)
    page = text_of(dhis2_test_login(admin_client, "legacy", BOB))
    assert "an account would be created" in page and "HIV" in page
    assert counts(app) == {**before, "LoginTransaction": 0}
    with app.app_context():
        assert User.by_username("bob") is None
    assert "an account bob would be created" in test_events(app)[0][3]
