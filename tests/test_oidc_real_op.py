"""The OpenID Connect plugin end to end against a real OpenID provider we did not write: the npm
oidc-provider (tests/realop) as a process on loopback. geologin talks to it over real HTTP; a person's
browser (OPUser) signs in and clicks Authorize or Deny there."""
from urllib.parse import parse_qs, urlsplit

import pytest
from sqlalchemy import select

from geologin import idp as instances
from geologin.extensions import db
from geologin.models import ExternalIdentity, User
from geologin.providers.testing import ProviderContract
from tests.conftest import csrf_from, post_form
from tests.realop import ACCOUNTS, ALICE_PASSWORD, BOB_PASSWORD, CLIENT_SECRET, OPUser, RealOP, op_config, require_realop

pytestmark = pytest.mark.real_op

PUBLIC = "http://127.0.0.1:8080"
SLUGS = ("health", "staff", "es", "other")
CALLBACKS = [f"{PUBLIC}/auth/{slug}/callback" for slug in SLUGS]
ALICE = ("alice", ALICE_PASSWORD)
ALICE_SUB = ACCOUNTS[0]["sub"]


def _config(**top):
    config = op_config(CALLBACKS, [PUBLIC + "/login"])
    config["clients"].append({"client_id": "geologin-es", "client_secret": CLIENT_SECRET, "redirect_uris": CALLBACKS,
                              "id_token_signed_response_alg": "ES256"})
    config["accounts"][0]["employee_id"] = "EMP-0042"
    config["accounts"][0]["groups"] = ["Malaria programme", "Data managers"]
    return {**config, **top}


@pytest.fixture(scope="module")
def op():
    """oidc-provider as most servers behave: only sub in the id_token, the rest from userinfo."""
    require_realop()
    with RealOP(_config(), path="/realms/health") as server:
        yield server


@pytest.fixture(scope="module")
def op_full_id_token():
    """oidc-provider putting every granted claim in the id_token (no userinfo call needed)."""
    require_realop()
    with RealOP(_config(conformIdTokenClaims=False)) as server:
        yield server


@pytest.fixture
def app(app_factory):
    return app_factory(ALLOW_INSECURE_HTTP=True, PUBLIC_URL=PUBLIC)


def register(app, op, slug="health", *, allow=(), allow_all=False, client_id="geologin", secret=CLIENT_SECRET,
             **settings):
    with app.app_context():
        instance = instances.create_provider(
            "oidc", slug=slug, label=f"ID {slug}", allow_all_users=allow_all, actor="test",
            settings={"issuer": op.issuer, "client_id": client_id, **settings}, secrets={"client_secret": secret})
        if allow:
            instances.allow([User.by_username(name) for name in allow], instance, actor="test")


def start(client, slug="health"):
    response = client.post("/auth/start", data={"csrf_token": csrf_from(client.get("/login")), "provider": slug})
    assert response.status_code == 302, response.get_data(as_text=True)[:300]
    return response.headers["Location"]


def back_to_geologin(client, location):
    parts = urlsplit(location)
    assert f"{parts.scheme}://{parts.netloc}" == PUBLIC, location
    return client.get(parts.path + "?" + parts.query)


def login(client, slug="health", user=ALICE, approve=True, person=None):
    person = person or OPUser(*user)
    return back_to_geologin(client, person.authorize(start(client, slug), approve=approve)), person


last_login = ProviderContract.last_login  # (outcome, reason, provider, target) of the newest login event


def logged_in_as(client):
    response = client.get("/")
    return response.status_code == 200 and response.get_data(as_text=True).split("Logged in as ")[1].split("<")[0]


def test_sec_16_real_op_login_logs_in_the_matching_user_and_binds_sub(app, client, op, make_user):
    make_user("alice", password=None)
    register(app, op, allow=["alice"])
    authorization = start(client)
    request = {k: v[0] for k, v in parse_qs(urlsplit(authorization).query).items()}
    assert authorization.startswith(op.issuer + "/auth?")
    assert request["scope"] == "openid profile email" and request["code_challenge_method"] == "S256"
    assert request["redirect_uri"] == PUBLIC + "/auth/health/callback" and request["nonce"]
    location = OPUser(*ALICE).authorize(authorization)
    assert parse_qs(urlsplit(location).query)["iss"] == [op.issuer]  # RFC 9207, checked by geologin
    response = back_to_geologin(client, location)
    assert response.status_code == 302 and response.headers["Location"] == "/"
    assert logged_in_as(client) == "alice"
    assert last_login(app) == ("success", None, "health", "alice")
    with app.app_context():
        binding = db.session.scalars(select(ExternalIdentity)).one()
        assert (binding.subject, binding.subject_scheme, binding.external_username) == (ALICE_SUB, "oidc-sub", "alice")


def test_claims_in_the_id_token_need_no_userinfo(app, client, op_full_id_token, make_user):
    make_user("EMP-0042", password=None)
    register(app, op_full_id_token, allow=["EMP-0042"], username_claim="employee_id")
    login(client)
    assert logged_in_as(client) == "EMP-0042"


@pytest.mark.parametrize("server", ["op", "op_full_id_token"])
def test_groups_claim_from_the_id_token_or_userinfo_is_stored(app, client, make_user, request, server):
    """The groups claim, whether the server puts it in the id_token or only in userinfo (issue 18)."""
    from geologin.idp import attributes

    make_user("alice", password=None)
    register(app, request.getfixturevalue(server), allow=["alice"])
    login(client)
    assert logged_in_as(client) == "alice"
    with app.app_context():
        said = attributes.as_dict(db.session.scalars(select(ExternalIdentity)).one())
    assert [g["name"] for g in said["groups"]] == ["Malaria programme", "Data managers"] and said["seen_at"]


def test_reason_access_denied_when_the_person_clicks_deny(app, client, op, make_user):
    make_user("alice", password=None)
    register(app, op, allow=["alice"])
    login(client, approve=False)
    assert client.get("/").status_code == 302
    assert last_login(app)[:2] == ("failure", "access_denied")
    assert "You did not authorize the login at ID health" in client.get("/login").get_data(as_text=True)


def test_reasons_unknown_user_and_not_allowed(app, client, op, make_user):
    register(app, op, allow_all=True)
    login(client)
    assert last_login(app) == ("failure", "unknown_user", "health", "alice")
    make_user("alice", password=None)
    register(app, op, "staff")
    login(client, "staff")
    assert last_login(app) == ("failure", "not_allowed", "staff", "alice")
    assert client.get("/").status_code == 302


def test_email_as_username_only_when_verified(app, client, op, make_user):
    make_user("alice@example.org", password=None)
    make_user("bob@example.org", password=None)
    register(app, op, allow_all=True, username_claim="email")
    login(client, user=("bob", BOB_PASSWORD))  # the OP says bob's address is not verified
    assert last_login(app)[:2] == ("failure", "provider_error")
    login(client)
    assert logged_in_as(client) == "alice@example.org"


def test_es256_signed_id_tokens(app, client, op, make_user):
    make_user("alice", password=None)
    register(app, op, "es", allow=["alice"], client_id="geologin-es")
    login(client, "es")
    assert logged_in_as(client) == "alice"


def test_sec_23_keys_rotated_at_the_server_are_fetched_once(app, client, op, make_user):
    make_user("alice", password=None)
    register(app, op, allow=["alice"])
    person = OPUser(*ALICE)
    login(client, person=person)
    post_form(client, "/logout", {}, page="/")
    op.rotate_keys()  # the next id_token is signed with a kid geologin has not seen
    login(client, person=person)
    assert logged_in_as(client) == "alice"


def test_sec_01_sec_52_a_replayed_callback_logs_nobody_in(app, client, op, make_user):
    make_user("alice", password=None)
    register(app, op, allow=["alice"])
    location = OPUser(*ALICE).authorize(start(client))
    back_to_geologin(client, location)
    post_form(client, "/logout", {}, page="/")
    back_to_geologin(client, location)
    assert client.get("/").status_code == 302
    assert last_login(app)[:2] == ("failure", "state_invalid")


def test_rp_initiated_logout_ends_the_login_at_the_server(app, client, op, make_user):
    make_user("alice", password=None)
    register(app, op, allow=["alice"])
    _, person = login(client)
    response = post_form(client, "/logout", {}, page="/")
    end_session = response.headers["Location"]
    assert end_session.startswith(op.discovery()["end_session_endpoint"] + "?")
    assert client.get("/").status_code == 302
    back = person.logout(end_session)
    assert urlsplit(back)._replace(query="").geturl() == PUBLIC + "/login"
    # The server forgot the person: the next login asks for the password again.
    login(client, person=person)
    assert "login" in person.pages and logged_in_as(client) == "alice"


def test_connection_test_and_cli_against_the_real_server(app, op):
    register(app, op)
    register(app, op, "other", secret="not-the-secret")
    runner = app.test_cli_runner()
    good = runner.invoke(args=["providers", "test", "health"])
    assert good.exit_code == 0, good.output
    assert "ok      Client credentials: ID health accepts the client ID and secret." in good.output
    bad = runner.invoke(args=["providers", "test", "other"])
    assert bad.exit_code == 1 and "FAILED  Client credentials:" in bad.output


def test_sec_25_an_issuer_that_differs_from_the_servers_is_refused(app, client, op, make_user):
    make_user("alice", password=None)
    register(app, op, allow=["alice"], issuer=op.issuer + "/")
    response = client.post("/auth/start", data={"csrf_token": csrf_from(client.get("/login")), "provider": "health"})
    assert response.headers["Location"] == "/login"
    assert last_login(app)[:2] == ("failure", "provider_error")
