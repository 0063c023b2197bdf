"""A NUL byte (or another control character) is bad input wherever input reaches SQL: a clear 400 or
message, never a 500 (PostgreSQL refuses NUL in text), and nothing changes (issue 14, item 11)."""
import pytest
from sqlalchemy import func, select

from geologin import idp as instances
from geologin.extensions import db
from geologin.login.matching import match_identity
from geologin.models import AuditEvent, IdentityProvider, User
from geologin.providers.base import Identity
from tests.conftest import STRONG_PASSWORD, csrf_from

BAD_INPUT = "not valid text"  # from the 400 page's message


def _count(app, model):
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(model))


def _audit_events(app):
    return _count(app, AuditEvent)


def _refused(response):
    return response.status_code == 400 and BAD_INPUT in response.get_data(as_text=True)


def _provider(app, slug="moh"):
    with app.app_context():
        return instances.create_provider(
            "dhis2", slug=slug, label=slug.upper(), actor="test",
            settings={"base_url": "https://dhis2.example.org/", "client_id": "geologin", "generation": "legacy"},
            secrets={"client_secret": "Zq8-not-shown-anywhere-0123456789abcd"}).id


def test_reg_nul_byte_login_post(app, client, make_user):
    make_user("root", is_admin=True)
    events = _audit_events(app)
    token = csrf_from(client.get("/login"))
    for username in ("ro\x00ot", "root\x1b", "\x00"):
        response = client.post("/login", data={"csrf_token": token, "username": username,
                                               "password": STRONG_PASSWORD})
        assert _refused(response), username
    response = client.post("/login", data={"csrf_token": token, "username": "root", "password": "x\x00y"})
    assert _refused(response)
    assert _audit_events(app) == events  # no failed login counted or recorded
    assert client.get("/").status_code == 302  # not logged in


def test_reg_nul_byte_admin_search_get(app, admin_client):
    for url in ("/admin/users?q=%00", "/admin/users?q=ro%00ot", "/admin/users?q=%01", "/admin/users?page=%00",
                "/admin/providers/moh/users?q=%00"):
        assert _refused(admin_client.get(url)), url
    assert admin_client.get("/admin/users?q=ro").status_code == 200


def test_reg_nul_byte_audit_filter_get(app, admin_client):
    for query in ("user=%00", "provider=a%00", "event=login%00", "outcome=%00", "since=2026-01-01%00"):
        for path in ("/admin/audit", "/admin/audit.csv"):
            assert _refused(admin_client.get(f"{path}?{query}")), f"{path}?{query}"


def test_reg_nul_byte_in_the_path(app, admin_client):
    _provider(app)
    for url in ("/admin/providers/mo%00h/edit", "/admin/providers/%00/setup", "/setup/abc%00def", "/%00"):
        assert _refused(admin_client.get(url)), url


def test_reg_nul_byte_admin_forms_change_nothing(app, admin_client, make_user):
    uid = make_user("amina")
    _provider(app)
    page = admin_client.get("/admin/users/new")
    response = admin_client.post("/admin/users/new", data={
        "csrf_token": csrf_from(page), "username": "bo\x00b", "password": STRONG_PASSWORD,
        "confirm": STRONG_PASSWORD})
    assert _refused(response)
    response = admin_client.post(f"/admin/users/{uid}", data={
        "csrf_token": csrf_from(page), "display_name": "Amina\x00", "email": "", "active": "y"})
    assert _refused(response)
    response = admin_client.post("/admin/providers/moh/edit", data={
        "csrf_token": csrf_from(page), "label": "M\x00H", "description": "", "enabled": "y"})
    assert _refused(response)
    response = admin_client.post("/admin/providers/moh/users/allow", data={
        "csrf_token": csrf_from(page), "usernames": "amina\n\x00"})
    assert _refused(response)
    with app.app_context():
        assert User.by_username("bo\x00b") is None and User.by_username("bob") is None
        assert db.session.get(User, uid).display_name == ""
        assert IdentityProvider.by_slug("moh").label == "MOH"
        assert instances.allowed_users(IdentityProvider.by_slug("moh")) == []
    # Line breaks and tabs where text may have them still work.
    page = admin_client.get("/admin/providers/moh/edit")
    response = admin_client.post("/admin/providers/moh/edit", data={
        "csrf_token": csrf_from(page), "label": "MOH", "description": "Line one\r\n\tline two", "enabled": "y"})
    assert response.status_code == 302


def test_reg_nul_byte_callback_state(app, client):
    _provider(app)
    events = _audit_events(app)
    for url in ("/auth/moh/callback?state=%00&code=abc", "/auth/moh/callback?state=abc&code=%00",
                "/auth/moh/callback?state=abc&error=%00"):
        assert _refused(client.get(url)), url
    assert _audit_events(app) == events


def test_reg_nul_byte_in_the_user_agent(app, client, make_user):
    make_user("amina")
    token = csrf_from(client.get("/login"))
    response = client.post("/login", data={"csrf_token": token, "username": "amina", "password": STRONG_PASSWORD},
                           headers={"User-Agent": "Mozilla\x00"})
    assert _refused(response)


def test_reg_nul_byte_cli_users_create(app, runner):
    for args in (["users", "create", "bo\x00b", "--no-password"],
                 ["users", "create", "bob", "--no-password", "--display-name", "B\x00b"],
                 ["users", "create", "bob\x1b", "--no-password"]):
        result = runner.invoke(args=args)
        assert result.exit_code == 1, result.output
        assert "control character" in result.output and "Traceback" not in result.output
    assert _count(app, User) == 0


@pytest.mark.parametrize("args", [
    ["users", "list", "--search", "a\x00"],
    ["users", "delete", "ro\x00ot", "--yes"],
    ["audit", "list", "--user", "\x00"],
    ["audit", "list", "--provider", "\x00"],
    ["providers", "show", "mo\x00h"],
    ["setup-link", "--base-url", "http://x\x00"],
])
def test_reg_nul_byte_cli_arguments(app, runner, make_user, args):
    make_user("root", is_admin=True)
    result = runner.invoke(args=args)
    assert result.exit_code == 1 and "control character" in result.output, result.output
    with app.app_context():
        assert User.by_username("root") is not None


def test_reg_nul_byte_cli_names_from_a_file(app, runner, make_user, tmp_path):
    make_user("amina")
    _provider(app)
    names = tmp_path / "names.txt"
    names.write_text("amina\nbo\x00b\n", encoding="utf-8")
    result = runner.invoke(args=["users", "allow", "--from-file", str(names), "moh"])
    assert result.exit_code == 1 and "No user named 'bo\\x00b'" in result.output, result.output
    with app.app_context():
        assert [u.username for u in instances.allowed_users(IdentityProvider.by_slug("moh"))] == ["amina"]


def test_reg_nul_byte_from_the_identity_provider(app, make_user):
    """A server that answers with a NUL in the username or the account id gets 'provider_error'."""
    make_user("amina")
    moh = _provider(app)
    with app.app_context():
        instance = db.session.get(IdentityProvider, moh)
        instance.allow_all_users = True
        db.session.commit()
        for identity in (Identity(subject="uid1", username="ami\x00na"), Identity(subject="u\x00id", username="amina")):
            assert match_identity(identity, instance) == (None, "provider_error")
        assert instances.identities_of(User.by_username("amina")) == []


def test_reg_trailing_newline_is_not_part_of_a_valid_name(app, runner):
    """``$`` in a pattern also matches before a final newline: a username or slug ending in one is refused
    (and the same command without it works)."""
    provider = ["providers", "add", "dhis2", "--label", "MOH", "--base-url", "https://dhis2.example.org",
                "--client-secret-stdin", "--slug"]
    for args, end in ((["users", "create", "--no-password", "bob"], "\n"),
                      (provider + ["moh"], "\n")):
        result = runner.invoke(args=args[:-1] + [args[-1] + end], input="Zq8-secret-0123456789abcdef\n")
        assert result.exit_code == 1, (args, result.output)
        assert "Traceback" not in result.output
        result = runner.invoke(args=args, input="Zq8-secret-0123456789abcdef\n")
        assert result.exit_code == 0, (args, result.output)
    assert _count(app, User) == 1 and _count(app, IdentityProvider) == 1


def test_reg_huge_ids_are_no_such_thing(app, admin_client, make_user):
    """A number beyond any id (PostgreSQL's integer; SQLite overflows past 2**63) is a 404 in a URL and an
    invalid choice in a form, never a database error."""
    uid = make_user("amina")
    _provider(app)
    for url in ("/admin/users/2147483648", "/admin/users/9223372036854775808",
                "/admin/users/99999999999999999999/password"):
        assert admin_client.get(url).status_code == 404, url
    page = admin_client.get(f"/admin/users/{uid}")
    response = admin_client.post(f"/admin/users/{uid}/identities/99999999999999999999/unlink",
                                 data={"csrf_token": csrf_from(page)})
    assert response.status_code == 404
    response = admin_client.post(f"/admin/users/{uid}/providers",
                                 data={"csrf_token": csrf_from(page), "provider_ids": ["99999999999999999999"]})
    assert response.status_code == 400
    response = admin_client.post("/admin/providers/moh/users/disallow",
                                 data={"csrf_token": csrf_from(page), "user_ids": ["99999999999999999999"]})
    assert response.status_code == 302
    assert admin_client.get(f"/admin/users/{uid}").status_code == 200
