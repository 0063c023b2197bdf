"""``users import-from SLUG --group ID`` (issue 18): the members of a DHIS2 user group, listed with the
administrator's own credentials against fake DHIS2 processes of both generations, shown, and with --yes
created as local accounts allowed for that provider. Credentials are never stored or shown."""
import pytest
from sqlalchemy import select

from geologin import idp
from geologin.extensions import db
from geologin.models import AuditEvent, IdentityProvider, User
from tests.fakes import SECRET, FakeServer

MALARIA = "wl5cDMuUhmF"
TOKEN = "d2pat_abcdefghijklmnopqrstuvwxyz0123456789"


@pytest.fixture(scope="module", params=["2.36.0", "2.42.5"])
def dhis2(request):
    """DHIS2 2.36 (usernames only under userCredentials, legacy OAuth) and 2.42 (OpenID Connect)."""
    server = FakeServer("--version", request.param, "--client", f"geologin:{SECRET}:http://127.0.0.1/cb")
    yield server
    server.stop()


@pytest.fixture
def server(dhis2):
    dhis2.reset()
    group = [{"id": MALARIA, "name": "Malaria programme"}]
    dhis2.control("users", [
        {"username": "admin", "password": "district", "api_tokens": [TOKEN]},
        {"username": "carol", "password": "Carol-pass-123", "firstName": "Carol", "surname": "Diallo",
         "email": "carol@example.org", "userGroups": group},
        {"username": "dan", "password": "Dan-pass-123", "userGroups": group},
        {"username": "bad name", "password": "Bad-pass-123", "userGroups": group}])
    return dhis2


@pytest.fixture
def app(app_factory, server):
    app = app_factory(ALLOW_INSECURE_HTTP=True)
    with app.app_context():
        idp.create_provider("dhis2", slug="moh", label="MoH DHIS2", actor="test",
                            settings={"base_url": server.url + "/", "client_id": "geologin"},
                            secrets={"client_secret": SECRET})
    return app


def run(app, *args, input="admin\ndistrict\n"):
    return app.test_cli_runner().invoke(args=["users", "import-from", "moh", "--group", MALARIA, *args],
                                         input=input)


def local_users(app):
    with app.app_context():
        return sorted(db.session.scalars(select(User.username)))


def audit_rows(app):
    with app.app_context():
        return [(e.event_type, e.target, e.detail) for e in db.session.scalars(select(AuditEvent)
                                                                               .order_by(AuditEvent.id))]


def test_without_yes_it_shows_who_would_be_created_and_creates_nobody(app, make_user):
    make_user("dan")
    result = run(app)
    assert result.exit_code == 0, result.output
    assert "Group wl5cDMuUhmF at MoH DHIS2: 4 user(s)." in result.output
    assert "Would create (2):\n  alice (Alice Example)\n  carol (Carol Diallo)\n" in result.output
    assert "Already exist here (1):\n  dan\n" in result.output
    assert "Refused (1):\n  bad name: Use only letters" in result.output
    assert "Run again with --yes" in result.output and "district" not in result.output
    assert local_users(app) == ["dan"]


def test_with_yes_it_creates_allowed_accounts_without_password_and_audits_them(app, make_user):
    make_user("dan")
    result = run(app, "--yes")
    assert result.exit_code == 0, result.output
    assert "Created 2 user(s), allowed to log in through moh." in result.output
    assert local_users(app) == ["alice", "carol", "dan"]
    with app.app_context():
        carol = User.by_username("carol")
        assert (carol.display_name, carol.email, carol.password_hash, carol.is_admin,
                carol.password_login_allowed) == ("Carol Diallo", "carol@example.org", None, False, False)
        assert sorted(u.username for u in idp.allowed_users(IdentityProvider.by_slug("moh"))) == ["alice", "carol"]
    rows = audit_rows(app)
    assert [r for r in rows if r[0] == "user.create"][1:] == [
        ("user.create", name, f"imported from group {MALARIA} at moh") for name in ("alice", "carol")]
    assert ("users.import", "moh", f"group {MALARIA}: 2 created, 1 already here, 1 refused") in rows
    assert "district" not in repr(rows)
    assert "Nobody to create." in run(app, "--yes").output  # again: nothing new


def test_a_personal_access_token_from_stdin_works_and_is_never_shown(app):
    result = run(app, "--token", "--yes", input=f"ApiToken {TOKEN}\n")
    assert result.exit_code == 0, result.output
    assert local_users(app) == ["alice", "carol", "dan"]
    assert TOKEN not in result.output and TOKEN not in repr(audit_rows(app))


@pytest.mark.parametrize("args, input", [((), "admin\nwrong\n"), (("--token",), "d2pat_wrong\n")],
                         ids=["password", "token"])
def test_bad_credentials_are_one_line_and_create_nothing(app, args, input):
    result = run(app, "--yes", *args, input=input)
    assert result.exit_code == 1
    assert result.output.strip().splitlines()[-1] == (
        "Error: moh: DHIS2 refused these credentials for /api/users (HTTP 401); nothing created.")
    assert local_users(app) == [] and "wrong" not in result.output.splitlines()[-1]


def test_an_unreachable_server_is_one_line_and_creates_nothing(app):
    with app.app_context():
        provider = IdentityProvider.by_slug("moh")
        idp.update_provider(provider, settings={"base_url": "http://127.0.0.1:9/"}, actor="test")
    result = run(app, "--yes")
    assert result.exit_code == 1 and result.output.strip().splitlines()[-1].startswith("Error: moh: ")
    assert "nothing created" in result.output and local_users(app) == []


def test_a_group_id_that_is_not_one_is_refused_before_any_call(app):
    result = app.test_cli_runner().invoke(args=["users", "import-from", "moh", "--group", "x&filter=id:ne:1"],
                                          input="admin\ndistrict\n")
    assert result.exit_code == 1 and "is not a DHIS2 user group id" in result.output


def test_a_plugin_that_cannot_list_users_says_so(app, make_user):
    with app.app_context():
        idp.create_provider("oidc", slug="id", label="ID", actor="test", secrets={"client_secret": "s" * 32},
                            settings={"issuer": "https://id.example.org", "client_id": "geologin"})
    result = app.test_cli_runner().invoke(args=["users", "import-from", "id", "--group", "x"])
    assert result.exit_code == 1 and "The oidc plugin of id cannot list users." in result.output
