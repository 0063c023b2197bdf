"""Token exchange (RFC 8693, issue 19): an application trades an access token geologin issued it for the
person's current DHIS2 access token, when an administrator allowed it that provider's tokens. Driven through
real logins at the fake DHIS2 of both generations and geologin's own OpenID provider flow."""
import base64

import pytest
from sqlalchemy import select

from geologin.accounts import users
from geologin.apps import clients
from geologin.extensions import db
from geologin.models import AuditEvent, KeptToken, User
from tests.oidc_rp import RelyingParty, query_of
from tests.oidc_rp import register as register_app
from tests.test_dhis2_login import PUBLIC, app, dhis2_servers, legacy, login_via_dhis2, oidc, register  # noqa: F401
from tests.test_kept_tokens import keep, me

pytestmark = pytest.mark.usefixtures("dhis2_servers")

EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS = "urn:ietf:params:oauth:token-type:access_token"


@pytest.fixture(params=["legacy", "oidc"])
def dhis2(request, app, make_user):
    """A DHIS2 server of each generation that keeps tokens, alice allowed on it."""
    server = request.getfixturevalue(request.param)
    make_user("alice", password=None)
    register(app, server, request.param, allow=["alice"])
    keep(app, request.param)
    return request.param, server


def application(app, name="Reports", **kwargs):
    """A first-party confidential application; returns a RelyingParty for it (client id and secret)."""
    client_id, secret = register_app(app, name, first_party=True, **kwargs)
    return client_id, secret


def sign_in(client, client_id, secret, scope="openid profile"):
    """The application signs the logged-in browser in; returns its access token."""
    rp = RelyingParty(client, client_id, secret)
    response = rp.authorize(scope=scope)
    assert response.status_code == 302, response.get_data(as_text=True)[:500]
    answer = rp.redeem(query_of(response.headers["Location"])["code"])
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.get_json()["access_token"]


def exchange(client, client_id, secret, subject_token, issuer, **extra):
    headers = {"Authorization": "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()}
    data = {"grant_type": EXCHANGE, "subject_token": subject_token, "subject_token_type": ACCESS,
            "requested_issuer": issuer} | extra
    return client.post("/oauth/token", data=data, headers=headers)


def ready(app, client, dhis2, **kwargs):
    """alice logged in through DHIS2 (tokens kept), an application allowed that provider's tokens, signed in."""
    slug, _ = dhis2
    login_via_dhis2(client, slug)
    kwargs.setdefault("token_providers", [slug])
    client_id, secret = application(app, **kwargs)
    return client_id, secret, sign_in(client, client_id, secret)


def events(app, outcome=None):
    with app.app_context():
        query = select(AuditEvent).where(AuditEvent.event_type == "tokens.exchange").order_by(AuditEvent.id)
        if outcome:
            query = query.where(AuditEvent.outcome == outcome)
        return [(e.outcome, e.reason_code, e.provider, e.target, e.detail) for e in db.session.scalars(query)]


def test_exchange_hands_out_the_persons_dhis2_token_that_works_at_dhis2(app, client, dhis2, caplog):
    slug, server = dhis2
    client_id, secret, token = ready(app, client, dhis2)
    response = exchange(client, client_id, secret, token, slug)
    assert response.status_code == 200, response.get_data(as_text=True)
    body = response.get_json()
    assert body["issued_token_type"] == ACCESS and body["token_type"] == "Bearer"
    assert 0 < body["expires_in"] <= 3600 * 24
    assert response.headers["Cache-Control"] == "no-store"
    assert me(server, body["access_token"]) == (200, "alice")
    assert events(app) == [("success", None, slug, "alice", "application Reports")]
    assert body["access_token"] not in caplog.text


def test_discovery_advertises_the_grant_and_the_dhis2_scope(client):
    document = client.get("/.well-known/openid-configuration").get_json()
    assert EXCHANGE in document["grant_types_supported"] and "dhis2" in document["scopes_supported"]


def test_sec_75_exchange_refuses_an_application_not_allowed_for_that_provider(app, client, dhis2):
    slug, _ = dhis2
    client_id, secret, token = ready(app, client, dhis2, token_providers=[])
    response = exchange(client, client_id, secret, token, slug)
    assert response.status_code == 400 and response.get_json()["error"] == "unauthorized_client"
    assert "access_token" not in response.get_json()
    assert events(app) == [("failure", "application_not_allowed", slug, None, "application Reports")]


def test_sec_75_exchange_refuses_a_subject_token_issued_to_another_application(app, client, dhis2):
    slug, _ = dhis2
    client_id, secret, _ = ready(app, client, dhis2)
    other_id, other_secret = application(app, "Other")
    other_token = sign_in(client, other_id, other_secret)
    response = exchange(client, client_id, secret, other_token, slug)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"
    for unknown in ("not-a-token", "x" * 5000):
        response = exchange(client, client_id, secret, unknown, slug)
        assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"


def test_sec_75_exchange_refuses_a_public_client_and_a_wrong_secret(app, client, dhis2):
    slug, _ = dhis2
    confidential_id, secret, token = ready(app, client, dhis2)
    client_id, _ = register_app(app, "Browser app", public=True, first_party=True, token_providers=[slug])
    data = {"grant_type": EXCHANGE, "subject_token": token, "subject_token_type": ACCESS, "requested_issuer": slug,
            "client_id": client_id}
    response = client.post("/oauth/token", data=data)
    assert response.status_code in (400, 401) and "access_token" not in response.get_json()
    response = exchange(client, confidential_id, "wrong", token, slug)
    assert response.status_code == 401 and response.get_json()["error"] == "invalid_client"


def test_sec_75_exchange_refuses_once_the_user_is_deactivated(app, client, dhis2):
    slug, _ = dhis2
    client_id, secret, token = ready(app, client, dhis2)
    with app.app_context():
        users.update_user(User.by_username("alice"), active=False, actor="test")
    response = exchange(client, client_id, secret, token, slug)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_grant"
    assert "access_token" not in response.get_json()


def test_sec_75_exchange_says_log_in_again_when_nothing_is_kept(app, client, dhis2):
    slug, _ = dhis2
    client_id, secret, token = ready(app, client, dhis2)
    with app.app_context():
        db.session.query(KeptToken).delete()
        db.session.commit()
    response = exchange(client, client_id, secret, token, slug)
    body = response.get_json()
    assert response.status_code == 400 and body["error"] == "invalid_grant"
    assert body["error_description"].startswith("log in again") and "not_kept" in body["error_description"]
    assert events(app, "failure")[-1][:3] == ("failure", "not_kept", slug)


def test_exchange_says_retry_later_when_dhis2_cannot_refresh_now(app, client, dhis2):
    """The kept token expired and DHIS2 fails the refresh: the tokens stay kept, so the application is told
    to retry (503 temporarily_unavailable), not to send the person through a new login."""
    from tests.test_kept_tokens_refresh import behave
    slug, server = dhis2
    client_id, secret, token = ready(app, client, dhis2)
    with app.app_context():
        row = db.session.scalars(select(KeptToken)).one()
        row.access_expires_at = row.obtained_at
        db.session.commit()
    behave(server, token="500")
    response = exchange(client, client_id, secret, token, slug)
    assert response.status_code == 503 and response.get_json()["error"] == "temporarily_unavailable"
    assert response.headers.get("Retry-After")
    assert events(app, "failure")[-1][:3] == ("failure", "refresh_unavailable", slug)


def test_sec_75_exchange_refuses_an_unknown_provider_and_a_bad_request(app, client, dhis2):
    slug, _ = dhis2
    client_id, secret, token = ready(app, client, dhis2)
    response = exchange(client, client_id, secret, token, "nowhere")
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_target"
    response = exchange(client, client_id, secret, token, slug, subject_token_type="urn:x:id_token")
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"
    response = exchange(client, client_id, secret, token, slug, requested_token_type="urn:x:refresh_token")
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_request"


def test_token_providers_are_set_from_the_service_and_the_cli(app, runner, legacy):
    register(app, legacy, "legacy")
    with app.app_context():
        with pytest.raises(clients.ApplicationError, match="does not keep tokens"):
            clients.create("Reports", ["https://app.example.org/cb"], token_providers=["legacy"], actor="test")
        assert clients.find("Reports") is None  # nothing saved
    keep(app, "legacy")
    result = runner.invoke(args=["apps", "add", "Reports", "--redirect-uri", "https://app.example.org/cb",
                                 "--token-provider", "legacy"])
    assert result.exit_code == 0, result.output
    assert "may receive the kept tokens of: legacy" in runner.invoke(args=["apps", "show", "Reports"]).output
    result = runner.invoke(args=["apps", "edit", "Reports", "--token-provider", "nowhere"])
    assert result.exit_code != 0 and "There is no identity provider “nowhere”" in result.output
    result = runner.invoke(args=["apps", "edit", "Reports", "--no-token-providers"])
    assert result.exit_code == 0 and "token_providers" in result.output
    assert "may receive the kept tokens of: -" in runner.invoke(args=["apps", "show", "Reports"]).output
    with app.app_context():
        details = [e.detail for e in db.session.scalars(select(AuditEvent).where(
            AuditEvent.event_type.in_(["app.create", "app.update"])))]
    assert any("may receive the tokens of legacy" in d for d in details)
    assert any("token_providers" in d for d in details)


def test_a_provider_that_stops_keeping_tokens_hands_out_nothing_and_the_application_can_still_be_edited(
        app, client, dhis2):
    slug, _ = dhis2
    client_id, secret, token = ready(app, client, dhis2)
    keep(app, slug, on=False)
    response = exchange(client, client_id, secret, token, slug)
    assert response.status_code == 400 and response.get_json()["error"] == "invalid_target"
    with app.app_context():
        reports = clients.find("Reports")
        assert clients.edit(reports, token_providers=[slug], first_party=False, actor="test") == ["first_party"]
        assert clients.token_provider_slugs(reports) == [slug]
