"""The ``flask --app wsgi apps ...`` commands: the contract first-party tooling scripts against (options, the
--json shapes), secrets shown once and stored only as a hash, and bad input refused with one line and
nothing changed."""
import hashlib
import json

import pytest
from sqlalchemy import func, select

from geologin import idp
from geologin.apps import clients
from geologin.extensions import db
from geologin.models import Application, ApplicationProvider, ApplicationUser, AuditEvent, User

REDIRECT = "https://superset.example.org/oauth-authorized/geologin"


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


def _run(runner, *args):
    return runner.invoke(args=["apps", *args])


def _ok(runner, *args):
    result = _run(runner, *args)
    assert result.exit_code == 0, result.output
    return result.output


def _add(runner, name="Superset", *extra):
    return json.loads(_ok(runner, "add", name, "--redirect-uri", REDIRECT, "--json", *extra))


def _show(runner, name):
    return json.loads(_ok(runner, "show", name, "--json"))


def _snapshot(app):
    """Everything the commands can change, to assert that a refused one changed nothing."""
    with app.app_context():
        db.session.expire_all()
        return ([clients.as_dict(a) | {"secret_hash": a.secret_hash} for a in clients.all_applications()],
                db.session.scalar(select(func.count()).select_from(ApplicationUser)),
                db.session.scalar(select(func.count()).select_from(ApplicationProvider)))


def _provider(app, slug):
    with app.app_context():
        idp.create_provider("dhis2", slug=slug, label=slug.upper(), actor="test",
                            settings={"base_url": "https://dhis2.example.org/", "client_id": "geologin",
                                      "generation": "legacy"},
                            secrets={"client_secret": "Zq8-not-shown-anywhere-0123456789abcd"})


def test_add_confidential_prints_id_and_secret_once(runner):
    output = _ok(runner, "add", "Superset", "--redirect-uri", REDIRECT)
    lines = dict(line.split(": ", 1) for line in output.splitlines() if line.startswith("client_"))
    assert set(lines) == {"client_id", "client_secret"}
    assert "not shown again" in output
    shown = _show(runner, "Superset")
    assert shown["client_id"] == lines["client_id"] and shown["public"] is False
    assert lines["client_secret"] not in json.dumps(shown) + _ok(runner, "list") + _ok(runner, "show", "Superset")


def test_add_json_is_exactly_id_and_secret(runner, app):
    confidential = _add(runner, "Superset")
    public = _add(runner, "Spa", "--public")
    assert set(confidential) == {"client_id", "client_secret"} and isinstance(confidential["client_secret"], str)
    assert set(public) == {"client_id", "client_secret"} and public["client_secret"] is None
    with app.app_context():
        assert clients.verify_secret(clients.find(confidential["client_id"]), confidential["client_secret"])
        assert clients.find(public["client_id"]).is_public


def test_sec_65_client_secret_stored_hashed_shown_once(runner, app):
    """The secret is printed by `add` and `rotate-secret` only; the database and the audit trail hold a hash."""
    first = _add(runner)
    with app.app_context():
        application = clients.find("Superset")
        assert application.secret_hash == hashlib.sha256(first["client_secret"].encode()).hexdigest()
        assert first["client_secret"] not in json.dumps(clients.as_dict(application))
        trail = " ".join(f"{e.target} {e.detail}" for e in db.session.scalars(select(AuditEvent)))
        assert "client_id" in trail and first["client_secret"] not in trail
    for listing in (_ok(runner, "list"), _ok(runner, "list", "--json"), _ok(runner, "show", "Superset"),
                    _ok(runner, "show", "Superset", "--json")):
        assert first["client_secret"] not in listing

    rotated = json.loads(_ok(runner, "rotate-secret", "Superset", "--json"))
    assert set(rotated) == {"client_id", "client_secret"} and rotated["client_id"] == first["client_id"]
    assert rotated["client_secret"] != first["client_secret"]
    with app.app_context():
        application = clients.find("Superset")
        assert not clients.verify_secret(application, first["client_secret"])
        assert clients.verify_secret(application, rotated["client_secret"])
        assert rotated["client_secret"] not in application.secret_hash
    text = _ok(runner, "rotate-secret", "Superset")
    assert "client_secret: " in text and "not shown again" in text


def test_add_with_every_option(runner, app):
    _provider(app, "moh")
    _add(runner, "Grafana", "--redirect-uri", "https://grafana.example.org/login/generic_oauth",
         "--post-logout-uri", "https://grafana.example.org/", "--post-logout-uri", "https://grafana.example.org/bye",
         "--backchannel-logout-uri", "https://grafana.example.org/backchannel", "--first-party",
         "--allowed-users-only", "--refresh-tokens", "--provider", "moh", "--id-token-alg", "ES256")
    shown = _show(runner, "Grafana")
    assert shown["id_token_alg"] == "ES256"
    assert shown["redirect_uris"] == [REDIRECT, "https://grafana.example.org/login/generic_oauth"]
    assert shown["post_logout_uris"] == ["https://grafana.example.org/", "https://grafana.example.org/bye"]
    assert shown["backchannel_logout_uri"] == "https://grafana.example.org/backchannel"
    assert (shown["first_party"], shown["all_users"], shown["refresh_tokens"]) == (True, False, True)
    assert (shown["providers_only"], shown["allowed_providers"]) == (True, ["moh"])
    plain = _show(runner, "Superset") if _add(runner, "Superset") else None
    assert (plain["first_party"], plain["all_users"], plain["refresh_tokens"], plain["providers_only"]) == \
        (False, True, False, False)
    assert plain["id_token_alg"] == "RS256"
    _ok(runner, "edit", "Superset", "--id-token-alg", "ES256")
    assert _show(runner, "Superset")["id_token_alg"] == "ES256"


def test_list_and_show(runner):
    assert _ok(runner, "list").strip() == "No applications."
    assert json.loads(_ok(runner, "list", "--json")) == []
    superset = _add(runner, "Superset")
    _add(runner, "Jupyter", "--public", "--allowed-users-only")
    rows = json.loads(_ok(runner, "list", "--json"))
    assert [row["name"] for row in rows] == ["Jupyter", "Superset"]
    assert rows[0]["public"] is True and rows[0]["all_users"] is False
    table = _ok(runner, "list").splitlines()
    assert table[0].split()[0] == "Jupyter" and "public" in table[0] and "allowed-users-only" in table[0]
    assert table[1].split()[:2] == ["Superset", superset["client_id"]]
    # show finds an application by name or by client_id
    assert _show(runner, superset["client_id"])["name"] == "Superset"
    text = _ok(runner, "show", "Superset")
    assert f"client_id: {superset['client_id']}" in text and f"redirect URI: {REDIRECT}" in text


def test_edit_changes_only_what_is_given(runner, app):
    _provider(app, "moh")
    _provider(app, "edu")
    _add(runner, "Superset", "--post-logout-uri", "https://superset.example.org/")
    output = _ok(runner, "edit", "Superset", "--name", "Superset BI", "--redirect-uri", "https://bi.example.org/a",
                 "--redirect-uri", "https://bi.example.org/b", "--first-party", "--allowed-users-only",
                 "--refresh-tokens", "--provider", "moh", "--provider", "edu",
                 "--backchannel-logout-uri", "https://bi.example.org/bc")
    assert output.startswith("Updated Superset BI:")
    shown = _show(runner, "Superset BI")
    assert shown["redirect_uris"] == ["https://bi.example.org/a", "https://bi.example.org/b"]  # replaced
    assert shown["post_logout_uris"] == ["https://superset.example.org/"]  # not given: unchanged
    assert shown["backchannel_logout_uri"] == "https://bi.example.org/bc"
    assert (shown["first_party"], shown["all_users"], shown["refresh_tokens"]) == (True, False, True)
    assert shown["allowed_providers"] == ["edu", "moh"] and shown["providers_only"] is True

    _ok(runner, "edit", "Superset BI", "--not-first-party", "--all-users", "--no-refresh-tokens", "--any-provider",
        "--backchannel-logout-uri", "", "--post-logout-uri", "")
    shown = _show(runner, "Superset BI")
    assert (shown["first_party"], shown["all_users"], shown["refresh_tokens"]) == (False, True, False)
    assert (shown["providers_only"], shown["allowed_providers"]) == (False, [])
    assert shown["backchannel_logout_uri"] is None and shown["post_logout_uris"] == []
    assert _ok(runner, "edit", "Superset BI", "--all-users").strip() == "Nothing changed for Superset BI."


def test_remove_needs_yes_and_takes_everything_along(runner, app, make_user):
    make_user("bob")
    _add(runner, "Superset", "--allowed-users-only")
    _ok(runner, "allow", "Superset", "bob")
    before = _snapshot(app)
    refused = _run(runner, "remove", "Superset")
    assert refused.exit_code == 1 and "--yes" in refused.output and "Nothing was changed" in refused.output
    assert _snapshot(app) == before
    assert _ok(runner, "remove", "Superset", "--yes").strip() == "Removed Superset."
    assert _snapshot(app) == ([], 0, 0)
    assert json.loads(_ok(runner, "list", "--json")) == []


def test_allow_and_disallow(runner, app, make_user):
    make_user("bob")
    make_user("alice")
    _add(runner, "Superset", "--allowed-users-only")
    assert "Allowed 2 user(s)" in _ok(runner, "allow", "Superset", "bob", "alice")
    assert "Allowed 0 user(s) for Superset (1 already allowed)" in _ok(runner, "allow", "Superset", "bob")
    assert _show(runner, "Superset")["allowed_users"] == ["alice", "bob"]
    assert "Disallowed 1 user(s)" in _ok(runner, "disallow", "Superset", "bob")
    assert _show(runner, "Superset")["allowed_users"] == ["alice"]
    _ok(runner, "edit", "Superset", "--all-users")
    assert "admits every active user anyway" in _ok(runner, "allow", "Superset", "bob")


@pytest.mark.parametrize("args, message", [
    (["add", "X", "--redirect-uri", "ftp://x.example.org/cb"], "must be an absolute https:// URL"),
    (["add", "X", "--redirect-uri", "https://x.example.org/cb#frag"], "fragment"),
    (["add", "X", "--redirect-uri", "https://user:pw@x.example.org/cb"], "user name or password"),
    (["add", "X", "--redirect-uri", "https://x.example.org/a b"], "spaces or control characters"),
    (["add", "X", "--redirect-uri", REDIRECT, "--post-logout-uri", "nope"], "Post-logout redirect URI"),
    (["add", "X", "--redirect-uri", REDIRECT, "--backchannel-logout-uri", "https://x/#a"], "Back-channel"),
    (["add", "X", "--redirect-uri", REDIRECT, "--provider", "nowhere"], "no identity provider “nowhere”"),
    (["add", "Superset", "--redirect-uri", REDIRECT], "already an application named"),
    (["add", " ", "--redirect-uri", REDIRECT], "needs a name"),
    (["add", "x" * 121, "--redirect-uri", REDIRECT], "longer than 120"),
    (["add", "X\x07", "--redirect-uri", REDIRECT], "control character"),
    (["add", "X", "--redirect-uri", "https://x.example.org/\x00"], "control character"),
    (["show", "nothing"], "No application named or identified 'nothing'"),
    (["edit", "nothing", "--first-party"], "No application"),
    (["edit", "Superset", "--redirect-uri", "javascript:alert(1)"], "Redirect URI"),
    (["edit", "Superset", "--redirect-uri", ""], "enter a URL"),
    (["edit", "Superset", "--name", "Jupyter"], "already an application named"),
    (["edit", "Superset", "--provider", "nowhere"], "nowhere"),
    (["edit", "Superset", "--backchannel-logout-uri", "ftp://x"], "Back-channel logout URI"),
    (["rotate-secret", "Jupyter"], "public client"),
    (["rotate-secret", "nothing"], "No application"),
    (["remove", "nothing", "--yes"], "No application"),
    (["allow", "Superset", "bob", "nobody"], "No such user: nobody"),
    (["disallow", "Superset", "bob", "nobody"], "No such user: nobody"),
    (["allow", "nothing", "bob"], "No application"),
])
def test_bad_input_is_one_line_and_changes_nothing(runner, app, make_user, args, message):
    make_user("bob")
    _add(runner, "Superset", "--allowed-users-only")
    _add(runner, "Jupyter", "--public")
    _ok(runner, "allow", "Superset", "bob")
    before = _snapshot(app)
    result = _run(runner, *args)
    assert result.exit_code == 1, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1, result.output
    assert "Traceback" not in result.output
    assert _snapshot(app) == before


def test_plain_http_only_on_the_machine_itself_in_production(app_factory):
    """Tests allow http everywhere (TESTING); a production app refuses it except for loopback."""
    runner = app_factory(TESTING=False, PUBLIC_URL="https://login.example.org").test_cli_runner()
    refused = _run(runner, "add", "X", "--redirect-uri", "http://x.example.org/cb")
    assert refused.exit_code == 1 and "plain http: use https" in refused.output
    assert json.loads(_ok(runner, "list", "--json")) == []
    _ok(runner, "add", "Local", "--redirect-uri", "http://127.0.0.1:8000/cb", "--redirect-uri",
        "http://localhost/cb")


@pytest.mark.parametrize("args", [
    ["edit", "Superset", "--provider", "moh", "--any-provider"],
    ["allow", "Superset"],
    ["add", "X", "--redirect-uri", REDIRECT, "--all-users", "--bogus"],
])
def test_usage_errors_exit_2_and_change_nothing(runner, app, args):
    _add(runner, "Superset")
    before = _snapshot(app)
    result = _run(runner, *args)
    assert result.exit_code == 2, result.output
    assert _snapshot(app) == before


def test_client_id_never_starts_with_a_dash(app, monkeypatch):
    """A client_id is passed to `apps show` on the command line, where a leading dash reads as an option."""
    ids = iter(["-starts-with-a-dash-xyz", "fine-client-id-0123456"])
    monkeypatch.setattr(clients.secrets, "token_urlsafe", lambda n=None: next(ids))
    with app.app_context():
        application, _ = clients.create("Superset", [REDIRECT], public=True, actor="test")
        assert application.client_id == "fine-client-id-0123456"


def test_changes_are_audited_with_the_cli_actor(runner, app, make_user):
    make_user("bob")
    _add(runner, "Superset")
    _ok(runner, "edit", "Superset", "--first-party")
    _ok(runner, "rotate-secret", "Superset")
    _ok(runner, "allow", "Superset", "bob")
    _ok(runner, "disallow", "Superset", "bob")
    _ok(runner, "remove", "Superset", "--yes")
    with app.app_context():
        events = [(e.event_type, e.actor) for e in db.session.scalars(
            select(AuditEvent).where(AuditEvent.event_type.like("app.%")).order_by(AuditEvent.id))]
    assert events == [(name, "cli") for name in ("app.create", "app.update", "app.rotate_secret", "app.allow",
                                                 "app.disallow", "app.delete")]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Application)) == 0
        assert User.by_username("bob") is not None  # removing an application never touches its users
