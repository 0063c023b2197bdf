"""The ``flask --app wsgi users|audit`` commands: they work as written, and bad input changes nothing."""
import json

import pytest

from tests.conftest import STRONG_PASSWORD, AuthActions
from geologin.extensions import db
from geologin.models import User


def _invoke(runner, *args, input=None):
    return runner.invoke(args=list(args), input=input)


def _user(app, name):
    with app.app_context():
        user = User.by_username(name)
        if user is not None:
            db.session.expunge(user)
        return user


def test_create_admin_with_password_from_stdin(app, runner):
    result = _invoke(runner, "users", "create", "ops", "--admin", "--password-stdin", input="Ops-password-123\n")
    assert result.exit_code == 0, result.output
    assert "Created administrator ops." in result.output
    assert _user(app, "ops").is_admin
    assert AuthActions(app.test_client()).login("ops", "Ops-password-123").status_code == 302


def test_password_with_spaces_is_kept_whole(app, runner):
    _invoke(runner, "users", "create", "poet", "--password-stdin", input="  a long passphrase with spaces  \n")
    assert AuthActions(app.test_client()).login("poet", "  a long passphrase with spaces  ").status_code == 302


def test_create_without_password(app, runner):
    result = _invoke(runner, "users", "create", "dhis", "--no-password", "--display-name", "From DHIS2")
    assert result.exit_code == 0, result.output
    user = _user(app, "dhis")
    assert not user.has_password and not user.is_admin and user.display_name == "From DHIS2"


def test_create_prompts_for_password(app, runner):
    result = _invoke(runner, "users", "create", "asked", input="Prompted-pass-123\nPrompted-pass-123\n")
    assert result.exit_code == 0, result.output
    assert _user(app, "asked").has_password


@pytest.mark.parametrize("args, stdin, message", [
    (["users", "create", "bad name", "--no-password"], None, "no spaces"),
    (["users", "create", "weak", "--password-stdin"], "password\n", "at least 12"),
    (["users", "create", "weak", "--password-stdin"], "\n", "No password on standard input"),
    (["users", "create", "both", "--password-stdin", "--no-password"], "x\n", "cannot be combined"),
    (["users", "create", "mail", "--no-password", "--email", "nope"], None, "valid email"),
])
def test_create_bad_input_changes_nothing(app, runner, args, stdin, message):
    result = _invoke(runner, *args, input=stdin)
    assert result.exit_code != 0
    assert message in result.output
    with app.app_context():
        assert db.session.query(User).count() == 0


def test_create_duplicate_is_refused(app, runner, make_user):
    make_user("amina", display_name="Original")
    result = _invoke(runner, "users", "create", "amina", "--no-password", "--display-name", "Impostor")
    assert result.exit_code == 1 and "already exists" in result.output
    assert _user(app, "amina").display_name == "Original"


def test_list_plain_and_json(runner, make_user):
    make_user("amina", display_name="Amina", email="a@example.org", is_admin=True)
    make_user("bakary", password=None)
    plain = _invoke(runner, "users", "list")
    assert plain.exit_code == 0
    lines = plain.output.splitlines()
    assert lines[0].startswith("amina") and "admin" in lines[0]
    assert lines[1].startswith("bakary") and "no-password" in lines[1]
    rows = json.loads(_invoke(runner, "users", "list", "--json").output)
    assert [r["username"] for r in rows] == ["amina", "bakary"]
    assert rows[0]["admin"] is True and rows[1]["has_password"] is False
    assert all("password_hash" not in r and "hash" not in json.dumps(r).lower().replace("has_password", "")
               for r in rows)


def test_set_password(app, runner, make_user):
    make_user("amina")
    client = app.test_client()
    AuthActions(client).login("amina")
    result = _invoke(runner, "users", "set-password", "amina", "--password-stdin", input="Another-pass-456\n")
    assert result.exit_code == 0, result.output
    assert client.get("/").status_code == 302  # sessions ended
    assert AuthActions(app.test_client()).login("amina", "Another-pass-456").status_code == 302


def test_set_password_bad_input_changes_nothing(app, runner, make_user):
    make_user("amina")
    assert _invoke(runner, "users", "set-password", "nobody", "--password-stdin", input="Another-pass-456\n"
                   ).exit_code != 0
    result = _invoke(runner, "users", "set-password", "amina", "--password-stdin", input="qwerty\n")
    assert result.exit_code != 0 and "at least 12" in result.output
    assert AuthActions(app.test_client()).login("amina", STRONG_PASSWORD).status_code == 302


def test_deactivate(app, runner, make_user):
    make_user("amina")
    client = app.test_client()
    AuthActions(client).login("amina")
    result = _invoke(runner, "users", "deactivate", "amina")
    assert result.exit_code == 0 and "deactivated" in result.output
    assert not _user(app, "amina").active
    assert client.get("/").status_code == 302
    assert _invoke(runner, "users", "deactivate", "ghost").exit_code != 0
    assert _invoke(runner, "users", "activate", "amina").exit_code == 0
    assert _user(app, "amina").active


def test_deactivate_last_admin_refused(app, runner, make_user):
    make_user("boss", is_admin=True)
    result = _invoke(runner, "users", "deactivate", "boss")
    assert result.exit_code != 0 and "last active administrator" in result.output
    assert _user(app, "boss").active


def test_delete(app, runner, make_user):
    make_user("amina")
    assert _invoke(runner, "users", "delete", "amina", input="n\n").exit_code != 0
    assert _user(app, "amina") is not None
    assert _invoke(runner, "users", "delete", "amina", "--yes").exit_code == 0
    assert _user(app, "amina") is None


def test_audit_list(app, runner, make_user):
    make_user("amina")
    AuthActions(app.test_client()).login("amina", "Wrong-password-123")
    _invoke(runner, "users", "deactivate", "amina")
    text = _invoke(runner, "audit", "list").output.splitlines()
    assert "user.create success actor=test" in text[0]
    assert "login failure actor=- ip=127.0.0.1 target=amina reason=bad_password" in text[1]
    assert "user.deactivate success actor=cli" in text[2]
    events = json.loads(_invoke(runner, "audit", "list", "--json", "--limit", "2").output)
    assert [e["event_type"] for e in events] == ["login", "user.deactivate"]
    assert events[0]["time"].endswith("+00:00")
    assert _invoke(runner, "audit", "list", "--limit", "0").exit_code != 0
    assert _invoke(runner, "audit", "list", "--limit", "many").exit_code != 0


def test_reg_exit_codes_are_the_ones_the_readme_promises(runner, app):
    """README: errors exit 1 with one line and change nothing; a command used wrongly exits 2 (Click's rule)."""
    from geologin import ROOT
    readme = (ROOT / "README.md").read_text()
    assert "exit with status 1" in readme and "exits with status 2" in readme
    misused = runner.invoke(args=["users", "create"])  # the NAME argument is missing
    assert misused.exit_code == 2 and "Missing argument" in misused.output
    combined = runner.invoke(args=["users", "create", "x", "--password-stdin", "--no-password"])
    assert combined.exit_code == 2
    failed = runner.invoke(args=["users", "deactivate", "nobody"])
    assert failed.exit_code == 1 and "Traceback" not in failed.output
