"""The generic OpenID Connect plugin's own behaviour beyond the shared contract: its settings and CLI
options, the username claim, RP-initiated logout, and its Setup page and connection test."""
import json

import pytest
import requests
import requests_mock
from sqlalchemy import select

from geologin import idp as instances
from geologin.extensions import db
from geologin.models import AuditEvent
from geologin.providers.testing import JSON, Account, OIDCContract
from tests.conftest import post_form

ISSUER = "https://id.example.org/realms/health"
PUBLIC = "https://login.example.org"
SECRET = "oidc-secret-0123456789"


class Server(OIDCContract):
    """The kit's canned OpenID provider, used here as a helper rather than as a contract."""

    provider_type, issuer = "oidc", ISSUER
    settings = {"issuer": ISSUER, "client_id": "geologin"}

    def __init__(self, mock, **metadata_changes):
        self.mock, self.metadata_changes = mock, metadata_changes
        self.id_token_changes, self.userinfo_changes = {}, {}
        self.claims = {}
        self.answer_start(mock)

    def discovery_url(self):
        return ISSUER + "/.well-known/openid-configuration"

    def claims_for(self, account):
        return {"preferred_username": account.username, "email": account.email, **self.claims}


@pytest.fixture
def app(app_factory):
    return app_factory(PUBLIC_URL=PUBLIC)


@pytest.fixture
def server():
    with requests_mock.Mocker() as mock:
        yield Server(mock, end_session_endpoint=ISSUER + "/logout")


def register(app, slug="health", allow_all=True, **settings):
    with app.app_context():
        instances.create_provider("oidc", slug=slug, label="Health ID", allow_all_users=allow_all,
                                  settings={"issuer": ISSUER, "client_id": "geologin", **settings},
                                  secrets={"client_secret": SECRET}, actor="test")


def oidc_login(client, server, account=Account(), slug="health"):
    """A whole login at the canned server; the callback's response."""
    return server.login(client, slug=slug, account=account)[0]


# -- settings --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("values, field, message", [
    ({"scopes": "profile email"}, "scopes", "must include openid"),
    ({"scopes": 'openid "x"'}, "scopes", "cannot contain quotes"),
    ({"username_claim": "user name"}, "username_claim", "without spaces"),
    ({"groups_claim": "my groups"}, "groups_claim", "without spaces"),
    ({"issuer": "http://id.example.org"}, "issuer", "Use https://"),
    ({"issuer": ""}, "issuer", "required"),
])
def test_bad_settings_get_a_clear_message_and_create_nothing(app, values, field, message):
    with app.app_context():
        with pytest.raises(instances.ProviderChangeError) as error:
            instances.create_provider("oidc", slug="bad", label="Bad", actor="test", secrets={"client_secret": "s"},
                                      settings={"issuer": ISSUER, "client_id": "geologin", **values})
        assert message in str(error.value.errors[field])
        assert instances.IdentityProvider.by_slug("bad") is None


def test_scopes_are_normalised_and_defaults_apply(app):
    register(app, scopes="openid, profile  openid email")
    with app.app_context():
        settings = instances.settings_of(instances.IdentityProvider.by_slug("health"))
    assert settings["scopes"] == "openid profile email"
    assert settings["username_claim"] == "preferred_username" and settings["rp_logout"] is True
    assert settings["groups_claim"] == "groups"


def test_cli_add_takes_the_plugin_options_and_reads_the_secret_from_stdin(app):
    result = app.test_cli_runner().invoke(args=[
        "providers", "add", "oidc", "--slug", "staff", "--label", "Staff ID", "--issuer", ISSUER,
        "--client-id", "geologin", "--client-secret-stdin", "--username-claim", "email",
        "--scopes", "openid email", "--no-rp-logout"], input=SECRET + "\n")
    assert result.exit_code == 0, result.output
    shown = app.test_cli_runner().invoke(args=["providers", "show", "staff", "--json"])
    data = json.loads(shown.output)
    assert SECRET not in shown.output
    assert data["settings"]["username_claim"] == "email" and data["settings"]["scopes"] == "openid email"
    assert data["settings"]["rp_logout"] is False


def test_login_button_reads_log_in_with_the_label(app, client):
    register(app)
    assert "Log in with Health ID" in client.get("/login").get_data(as_text=True)


# -- the username claim ------------------------------------------------------------------------------
def test_username_from_a_custom_claim(app, client, server, make_user):
    make_user("EMP-0042", password=None)
    register(app, username_claim="employee_id")
    server.claims = {"employee_id": "EMP-0042"}
    oidc_login(client, server)
    assert client.get("/").status_code == 200


def test_username_from_email_needs_a_verified_address(app, client, server, make_user):
    make_user("alice@example.org", password=None)
    register(app, username_claim="email")
    server.claims = {"email_verified": False}
    oidc_login(client, server)
    assert client.get("/").status_code == 302
    server.claims = {"email_verified": True}
    oidc_login(client, server)
    assert client.get("/").status_code == 200


@pytest.mark.parametrize("verified", [None, False, "false", "true", 0, 1, "yes", [True]])
def test_reg_username_from_email_needs_email_verified_exactly_true(app, client, server, make_user, verified):
    """docs/oidc.md: only an address the server marks ``email_verified: true`` (the JSON boolean) names the
    user; absent, false, text or numbers are refused."""
    make_user("alice@example.org", password=None)
    register(app, username_claim="email")
    server.claims = {} if verified is None else {"email_verified": verified}
    oidc_login(client, server)
    assert client.get("/").status_code == 302
    assert "sent an answer geologin cannot use" in client.get("/login").get_data(as_text=True)


def test_reg_email_verified_only_in_userinfo_is_read_there(app, client, server, make_user):
    """A server that puts the address in the id_token but says it is verified only at userinfo."""
    make_user("alice@example.org", password=None)
    register(app, username_claim="email")
    server.claims = {"email_verified": True}
    server.id_token_changes = {"email_verified": None}
    oidc_login(client, server)
    assert client.get("/").status_code == 200


def test_a_missing_username_claim_is_a_clear_failure(app, client, server, make_user):
    make_user("alice", password=None)
    register(app, username_claim="employee_id")
    oidc_login(client, server)
    assert client.get("/").status_code == 302
    assert "sent an answer geologin cannot use" in client.get("/login").get_data(as_text=True)


# -- RP-initiated logout -------------------------------------------------------------------------------
def _logout(client):
    return post_form(client, "/logout", {}, page="/")


def test_logout_ends_the_session_at_the_server_too(app, client, server, make_user):
    make_user("alice", password=None)
    register(app)
    oidc_login(client, server)
    response = _logout(client)
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(ISSUER + "/logout?")
    assert "client_id=geologin" in location and "post_logout_redirect_uri=https%3A%2F%2Flogin.example.org%2Flogin" in location
    assert client.get("/").status_code == 302
    assert "You have been logged out." in client.get("/login").get_data(as_text=True)


def test_logout_stays_local_when_switched_off_or_not_offered(app, client, make_user):
    make_user("alice", password=None)
    register(app, "off", rp_logout=False)
    register(app, "none")
    with requests_mock.Mocker() as mock:
        offered = Server(mock, end_session_endpoint=ISSUER + "/logout")
        oidc_login(client, offered, slug="off")
        assert _logout(client).headers["Location"] == "/login"
    with requests_mock.Mocker() as mock:
        oidc_login(client, Server(mock), slug="none")
        assert _logout(client).headers["Location"] == "/login"


def test_logout_when_the_server_is_down_still_logs_out_locally(app, client, server, make_user):
    make_user("alice", password=None)
    register(app)
    oidc_login(client, server)
    with app.app_context():  # a later request with nothing cached: discovery fails
        instances.update_provider(instances.IdentityProvider.by_slug("health"), description="changed")
    server.mock.get(server.discovery_url(), exc=requests.exceptions.ConnectionError)
    response = _logout(client)
    assert response.headers["Location"] == "/login"
    assert client.get("/").status_code == 302


def test_password_sessions_log_out_locally(app, client, auth, server, make_user):
    make_user("bob")
    register(app)
    auth.login("bob")
    assert _logout(client).headers["Location"] == "/login"


# -- administration ---------------------------------------------------------------------------------------
def test_setup_page_shows_what_to_register_and_never_the_secret(app, admin_client, server):
    register(app)
    html = admin_client.get("/admin/providers/health/setup").get_data(as_text=True)
    assert PUBLIC + "/auth/health/callback" in html and PUBLIC + "/login" in html
    assert "client_secret_basic" in html and SECRET not in html


def test_connection_test_reports_discovery_pkce_scopes_and_credentials(app, server):
    register(app)
    server.mock.post(server.token_endpoint(), status_code=400, json={"error": "invalid_grant"}, headers=JSON)
    with app.test_request_context():
        checks = instances.plugin_object(instances.IdentityProvider.by_slug("health")).test_connection()
    assert [(c.name, c.ok) for c in checks] == [("Discovery", True), ("PKCE", True), ("Scopes", True),
                                                 ("Client credentials", True)]
    server.mock.post(server.token_endpoint(), status_code=401, json={"error": "invalid_client"}, headers=JSON)
    with app.test_request_context():
        checks = instances.plugin_object(instances.IdentityProvider.by_slug("health")).test_connection()
    assert not checks[-1].ok and "rejected the client ID or secret" in checks[-1].message


def test_connection_test_names_the_issuer_the_server_reports(app, server):
    register(app, issuer=ISSUER + "/")
    server.mock.get(ISSUER + "/.well-known/openid-configuration", json=server.metadata(), headers=JSON)
    with app.test_request_context():
        checks = instances.plugin_object(instances.IdentityProvider.by_slug("health")).test_connection()
    assert not checks[0].ok and ISSUER in checks[0].message


def test_admin_adds_an_oidc_provider_through_the_form(app, admin_client):
    page = admin_client.get("/admin/providers/new?type=oidc").get_data(as_text=True)
    for name in ("setting_issuer", "setting_client_id", "setting_client_secret", "setting_scopes",
                 "setting_username_claim", "setting_groups_claim", "setting_rp_logout"):
        assert f'name="{name}"' in page, name
    form = {"slug": "staff", "label": "Staff ID", "enabled": "y", "setting_issuer": ISSUER,
            "setting_client_id": "geologin", "setting_client_secret": SECRET, "setting_scopes": "openid email",
            "setting_username_claim": "email"}
    response = post_form(admin_client, "/admin/providers/new?type=oidc", {**form, "setting_scopes": "email"})
    assert response.status_code == 400 and "The scopes must include openid." in response.get_data(as_text=True)
    with app.app_context():
        assert instances.IdentityProvider.by_slug("staff") is None
    response = post_form(admin_client, "/admin/providers/new?type=oidc", form)
    assert response.headers["Location"] == "/admin/providers/staff/setup"
    with app.app_context():
        settings = instances.settings_of(instances.IdentityProvider.by_slug("staff"))
    assert settings == {"issuer": ISSUER, "client_id": "geologin", "scopes": "openid email",
                        "username_claim": "email", "groups_claim": "groups", "rp_logout": False}


# -- a plugin bug during a login step (issue 15) ----------------------------------------------------------
@pytest.mark.parametrize("error", [KeyError("sub"), TypeError("'NoneType' object is not subscriptable")])
def test_whatever_a_plugin_raises_in_a_login_step_is_a_provider_error_not_a_500(app, client, server, monkeypatch,
                                                                                 caplog, error):
    """After the login transaction is spent, a plugin's bug (not a LoginFailure) shows the provider_error
    page and is audited with the exception's type; the traceback goes to the log."""
    register(app)

    def broken(self, callback):
        raise error

    monkeypatch.setattr(app.extensions["geologin.plugins"].get("oidc"), "complete_login", broken)
    with caplog.at_level("ERROR", logger="geologin.external"):
        response = oidc_login(client, server)
    assert response.status_code == 302 and response.headers["Location"].endswith("/login")
    page = client.get("/login").get_data(as_text=True)
    assert "Health ID sent an answer geologin cannot use" in page
    assert not server.logged_in(client)
    with app.app_context():
        event = db.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "login")
                                   .order_by(AuditEvent.id.desc())).first()
    assert (event.outcome, event.reason_code, event.provider) == ("failure", "provider_error", "health")
    assert type(error).__name__ in event.detail
    logged = "\n".join(record.getMessage() for record in caplog.records if record.name == "geologin.external")
    assert type(error).__name__ in logged and "in broken" in logged  # the type and where, for the operator


def test_sec_54_a_plugin_errors_message_stays_out_of_the_audit_trail(app, client, server, monkeypatch, caplog):
    """A plugin bug's message may quote what the server sent (a token, a code): the audit row and the log
    name the exception's type and where it was raised, never its message."""
    register(app)
    secret = "eyJleaked-token-0123456789"

    def broken(self, callback):
        raise ValueError(f"unexpected answer: {{'access_token': '{secret}'}}")

    monkeypatch.setattr(app.extensions["geologin.plugins"].get("oidc"), "complete_login", broken)
    oidc_login(client, server)
    with app.app_context():
        event = db.session.scalars(select(AuditEvent).where(AuditEvent.event_type == "login")
                                   .order_by(AuditEvent.id.desc())).first()
    assert event.reason_code == "provider_error" and "ValueError" in event.detail
    assert secret not in event.detail
    assert "ValueError" in caplog.text and secret not in caplog.text
