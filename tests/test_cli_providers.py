"""The ``flask --app wsgi providers ...`` commands and the per-user permission commands: they work as written,
secrets never come back out, ``providers test`` talks to a real (fake) DHIS2, and bad input changes nothing."""
import json
import logging

import click
import pytest
from cryptography.fernet import Fernet

from geologin import idp as instances
from geologin.cli.providers import setting_options
from geologin.extensions import db
from geologin.models import AuditEvent, ExternalIdentity, IdentityProvider, User
from geologin.providers import Provider, Setting
from geologin.providers.registry import LoadedPlugin
from tests.conftest import TEST_ENCRYPTION_KEY
from tests.fakes import SECRET, FakeServer

CALLBACK = "http://localhost/auth/moh/callback"
DHIS2_URL = "http://dhis2.test/dhis"


@pytest.fixture
def dev_app(app_factory):
    """An app that accepts http:// servers, as the fake DHIS2 is one."""
    return app_factory(ALLOW_INSECURE_HTTP=True)


@pytest.fixture
def cli(dev_app):
    return dev_app.test_cli_runner()


@pytest.fixture(scope="module")
def legacy_server():
    server = FakeServer("--version", "2.40.3", "--client", f"geologin:{SECRET}:{CALLBACK}")
    yield server
    server.stop()


@pytest.fixture(scope="module")
def oidc_server():
    server = FakeServer("--version", "2.42.5", "--client", f"geologin:{SECRET}:{CALLBACK}")
    yield server
    server.stop()


def _invoke(runner, *args, input=None):
    return runner.invoke(args=list(args), input=input)


def _add(runner, slug="moh", base_url=DHIS2_URL, secret=SECRET, *extra):
    # No DHIS2 answers at these addresses: enable explicitly, as the connection test would not pass.
    explicit = () if "--disabled" in extra else ("--enabled",)
    result = _invoke(runner, "providers", "add", "dhis2", "--slug", slug, "--label", f"{slug} DHIS2",
                     "--base-url", base_url, "--client-secret-stdin", *explicit, *extra, input=f"{secret}\n")
    assert result.exit_code == 0, result.output
    return result


def _instance(app, slug):
    with app.app_context():
        instance = IdentityProvider.by_slug(slug)
        if instance is None:
            return None
        row = {"settings": instances.settings_of(instance), "secrets_json": instance.secrets_json,
               "label": instance.label, "enabled": instance.enabled, "position": instance.position,
               "allow_all_users": instance.allow_all_users,
               "secret": instances.plugin_object(instance).secret("client_secret")}
        return row


def _count(app, model=IdentityProvider):
    with app.app_context():
        return db.session.query(model).count()


def _allowed(app, slug):
    with app.app_context():
        return [u.username for u in instances.allowed_users(IdentityProvider.by_slug(slug))]


# -- add / list / show / edit / remove / types ------------------------------------------------------------
def test_add_list_show_remove(dev_app, cli):
    added = _add(cli, "moh", DHIS2_URL, SECRET, "--description", "Ministry of Health")
    assert f"Register this redirect URI at the server: {CALLBACK}" in added.output
    _add(cli, "ngo", "http://ngo.test/", SECRET, "--disabled", "--allow-all-users", "--generation", "oidc")
    moh = _instance(dev_app, "moh")
    assert moh["settings"] == {"base_url": DHIS2_URL + "/", "client_id": "geologin", "generation": "auto",
                               "redirect_uri": None}
    assert moh["secret"] == SECRET and moh["enabled"] and not moh["allow_all_users"]

    lines = _invoke(cli, "providers", "list").output.splitlines()
    assert lines[0].split() == ["1", "moh", "dhis2", "moh", "DHIS2"]
    assert lines[1].split() == ["2", "ngo", "dhis2", "ngo", "DHIS2", "disabled", "all-users"]
    rows = json.loads(_invoke(cli, "providers", "list", "--json").output)
    assert rows[1] == {"slug": "ngo", "type": "dhis2", "label": "ngo DHIS2", "enabled": False,
                       "allow_all_users": True, "keep_tokens": False, "position": 2, "installed": True,
                       "secrets": {"client_secret": True}}

    shown = json.loads(_invoke(cli, "providers", "show", "moh", "--json").output)
    assert shown["redirect_uri"] == CALLBACK
    assert shown["settings"]["base_url"] == DHIS2_URL + "/"
    assert shown["secrets"] == {"client_secret": True}
    assert shown["description"] == "Ministry of Health"
    assert shown["setup"]["redirect_uri"] == CALLBACK and shown["setup"]["client_id"] == "geologin"
    plain = _invoke(cli, "providers", "show", "ngo").output
    assert "redirect URI to register at the server: http://localhost/auth/ngo/callback" in plain
    assert "client_secret: (stored)" in plain and "generation: oidc" in plain

    assert _invoke(cli, "providers", "remove", "moh", input="n\n").exit_code != 0
    assert _instance(dev_app, "moh") is not None
    removed = _invoke(cli, "providers", "remove", "moh", "--yes")
    assert removed.exit_code == 0 and "Removed moh." in removed.output
    assert _instance(dev_app, "moh") is None
    assert [r["slug"] for r in json.loads(_invoke(cli, "providers", "list", "--json").output)] == ["ngo"]


def test_list_empty(cli):
    assert _invoke(cli, "providers", "list").output.strip() == "No identity providers."
    assert json.loads(_invoke(cli, "providers", "list", "--json").output) == []


def test_add_types_and_options_come_from_the_plugin(cli):
    listing = _invoke(cli, "providers", "add", "--help")
    assert listing.exit_code == 0 and "dhis2" in listing.output
    options = _invoke(cli, "providers", "add", "dhis2", "--help").output
    for option in ("--slug", "--label", "--base-url", "--client-id", "--client-secret-stdin",
                   "--generation [auto|legacy|oidc]", "--redirect-uri"):
        assert option in options
    assert "--client-secret " not in options  # a secret is never taken on the command line
    types = _invoke(cli, "providers", "types")
    assert types.exit_code == 0 and types.output.split()[:2] == ["dhis2", "DHIS2"]


class _TwoSecrets(Provider):
    type = "twosecrets"
    display_name = "Two secrets"
    settings = (
        Setting("server_url", "Server", kind="url", required=True),
        Setting("api_key", "API key", kind="secret", required=True),
        Setting("signing_key", "Signing key", kind="secret"),
        Setting("verify_names", "Verify names", kind="bool", default=True),
        Setting("mode", "Mode", kind="choice", default="a", choices=(("a", "A"), ("b", "B"))),
    )


def test_setting_options_one_declaration():
    options = {o.name: o for o in setting_options(_TwoSecrets.settings)}
    assert options["server_url"].opts == ["--server-url"] and options["server_url"].required
    assert options["api_key"].opts == ["--api-key-stdin"] and options["api_key"].is_flag
    assert options["signing_key"].opts == ["--signing-key-stdin"]
    assert options["verify_names"].opts == ["--verify-names"]
    assert options["verify_names"].secondary_opts == ["--no-verify-names"]
    assert isinstance(options["mode"].type, click.Choice) and list(options["mode"].type.choices) == ["a", "b"]
    assert not options["mode"].required


def test_only_one_secret_from_stdin_per_call(dev_app, cli):
    dev_app.extensions["geologin.plugins"].plugins["twosecrets"] = LoadedPlugin(_TwoSecrets, "test")
    help_text = _invoke(cli, "providers", "add", "twosecrets", "--help").output
    assert "--verify-names / --no-verify-names" in help_text and "--mode [a|b]" in help_text
    both = _invoke(cli, "providers", "add", "twosecrets", "--slug", "two", "--label", "Two",
                   "--server-url", "http://two.test/", "--api-key-stdin", "--signing-key-stdin", input="k1\nk2\n")
    assert both.exit_code != 0 and "Only one secret can be read from standard input" in both.output
    assert _count(dev_app) == 0
    one = _invoke(cli, "providers", "add", "twosecrets", "--slug", "two", "--label", "Two", "--no-verify-names",
                  "--server-url", "http://two.test/", "--api-key-stdin", input="k1\n")
    assert one.exit_code == 0, one.output
    assert _instance(dev_app, "two")["settings"]["verify_names"] is False
    edited = _invoke(cli, "providers", "edit", "two", "--set", "verify_names=yes", "--set", "mode=b",
                     "--secret-stdin", "signing_key", input="k2\n")
    assert edited.exit_code == 0, edited.output
    with dev_app.app_context():
        instance = IdentityProvider.by_slug("two")
        assert instances.settings_of(instance)["verify_names"] is True
        assert instances.has_secret(instance, "api_key") and instances.has_secret(instance, "signing_key")


def test_edit(dev_app, cli):
    _add(cli)
    kept = _invoke(cli, "providers", "edit", "moh", "--label", "Ministry of Health", "--allow-all-users")
    assert kept.exit_code == 0 and "Updated moh: label, allow_all_users." in kept.output
    row = _instance(dev_app, "moh")
    assert row["label"] == "Ministry of Health" and row["allow_all_users"]
    assert row["settings"]["base_url"] == DHIS2_URL + "/" and row["secret"] == SECRET  # not given: kept

    changed = _invoke(cli, "providers", "edit", "moh", "--set", "generation=legacy", "--set", "client-id=other")
    assert changed.exit_code == 0, changed.output
    assert {k: _instance(dev_app, "moh")["settings"][k] for k in ("generation", "client_id")} == {
        "generation": "legacy", "client_id": "other"}

    replaced = _invoke(cli, "providers", "edit", "moh", "--secret-stdin", "client_secret", input="new-secret\n")
    assert replaced.exit_code == 0 and "client_secret" in replaced.output and "new-secret" not in replaced.output
    assert _instance(dev_app, "moh")["secret"] == "new-secret"

    assert "Nothing changed for moh." in _invoke(cli, "providers", "edit", "moh").output

    before = _instance(dev_app, "moh")
    for args, stdin, message in [
        (["--set", "base_url=ftp://x"], None, "base_url: Enter a full URL"),
        (["--set", "base_url="], None, "base_url: This setting is required"),
        (["--set", "generation=v3"], None, "Choose one of"),
        (["--set", "client_secret=leaked"], None, "is a secret: use --secret-stdin client_secret"),
        (["--set", "nope=1"], None, "No setting called 'nope'"),
        (["--set", "generation"], None, "NAME=VALUE"),
        (["--secret-stdin", "client_secret"], "\n", "No client_secret on standard input"),
        (["--secret-stdin", "password"], "x\n", "no secret called 'password'"),
        (["--label", " "], None, "--label: Enter the label"),
    ]:
        result = _invoke(cli, "providers", "edit", "moh", *args, input=stdin)
        assert result.exit_code != 0 and message in result.output, (args, result.output)
    assert _instance(dev_app, "moh") == before


def test_enable_disable_move(dev_app, cli):
    _add(cli, "moh")
    _add(cli, "ngo")
    assert "moh is disabled." in _invoke(cli, "providers", "disable", "moh").output
    assert "already disabled" in _invoke(cli, "providers", "disable", "moh").output
    assert not _instance(dev_app, "moh")["enabled"]
    assert "moh is enabled." in _invoke(cli, "providers", "enable", "moh").output
    assert "Order: ngo, moh" in _invoke(cli, "providers", "move", "ngo", "up").output
    assert _instance(dev_app, "ngo")["position"] == 1
    assert _invoke(cli, "providers", "move", "ngo", "sideways").exit_code != 0
    assert _instance(dev_app, "ngo")["position"] == 1


def test_rotate_keys(app_factory):
    new_key = Fernet.generate_key().decode()
    old_app = app_factory(ALLOW_INSECURE_HTTP=True)
    _add(old_app.test_cli_runner(), "moh")
    both = app_factory(ALLOW_INSECURE_HTTP=True, ENCRYPTION_KEY=f"{new_key},{TEST_ENCRYPTION_KEY}")
    result = _invoke(both.test_cli_runner(), "providers", "rotate-keys")
    assert result.exit_code == 0 and "Re-encrypted 1 secret(s)" in result.output
    new_only = app_factory(ALLOW_INSECURE_HTTP=True, ENCRYPTION_KEY=new_key)
    assert _instance(new_only, "moh")["secret"] == SECRET


def test_sec_44_secret_never_in_cli_output(dev_app, cli, make_user, caplog):
    caplog.set_level(logging.DEBUG)
    make_user("amina")
    outputs = [_add(cli, "moh").output]
    for args in (["providers", "list"], ["providers", "list", "--json"], ["providers", "show", "moh"],
                 ["providers", "show", "moh", "--json"], ["providers", "types"],
                 ["providers", "test", "moh"],  # the server does not exist: a failed check, printed
                 ["providers", "edit", "moh", "--label", "Health"], ["providers", "disable", "moh"],
                 ["users", "allow", "amina", "moh"], ["providers", "rotate-keys"], ["audit", "list"],
                 ["audit", "list", "--json"]):
        outputs.append(_invoke(cli, *args).output)
    outputs.append(_invoke(cli, "providers", "edit", "moh", "--secret-stdin", "client_secret",
                           input=f"{SECRET}-2\n").output)
    outputs.append(_invoke(cli, "providers", "show", "moh", "--json").output)
    for output in outputs:
        assert SECRET not in output
    assert SECRET not in caplog.text
    row = _instance(dev_app, "moh")
    assert row["secret"] == f"{SECRET}-2"  # stored, readable by the app...
    assert SECRET not in row["secrets_json"] and "client_secret" in row["secrets_json"]  # ...but encrypted
    with dev_app.app_context():
        assert all(SECRET not in json.dumps(e.as_dict()) for e in db.session.query(AuditEvent))


# -- providers test against a real fake DHIS2 -----------------------------------------------------------------
@pytest.mark.parametrize("server_fixture, generation", [("legacy_server", "legacy"), ("oidc_server", "2.42+")])
def test_providers_test_passes(request, cli, server_fixture, generation):
    server = request.getfixturevalue(server_fixture)
    _add(cli, "moh", server.url)
    result = _invoke(cli, "providers", "test", "moh")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("ok      Server reachable:")
    assert lines[1].startswith("ok      OAuth generation:") and generation in lines[1]
    assert lines[2] == "ok      Client credentials: DHIS2 accepts the client ID and secret."


@pytest.mark.parametrize("server_fixture", ["legacy_server", "oidc_server"])
def test_providers_test_wrong_secret(request, cli, server_fixture):
    server = request.getfixturevalue(server_fixture)
    _add(cli, "moh", server.url, "not-the-secret")
    result = _invoke(cli, "providers", "test", "moh")
    assert result.exit_code == 1
    assert "FAILED  Client credentials:" in result.output
    assert "check failed: Client credentials" in result.stderr
    assert "Traceback" not in result.output


def test_providers_test_unreachable(cli):
    _add(cli, "moh", "http://127.0.0.1:9")
    result = _invoke(cli, "providers", "test", "moh")
    assert result.exit_code == 1
    assert "FAILED  Server reachable:" in result.output and "check failed: Server reachable" in result.stderr


def test_providers_test_unreadable_secret(app_factory, legacy_server):
    made = app_factory(ALLOW_INSECURE_HTTP=True)
    _add(made.test_cli_runner(), "moh", legacy_server.url)
    other_key = app_factory(ALLOW_INSECURE_HTTP=True, ENCRYPTION_KEY=Fernet.generate_key().decode())
    result = _invoke(other_key.test_cli_runner(), "providers", "test", "moh")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "FAILED  Stored secret: a stored secret cannot be decrypted" in result.output


# -- bad input -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, stdin, message", [
    (["nope", "--slug", "x", "--label", "X"], None, "No installed provider plugin is called 'nope'"),
    (["dhis2", "--slug", "Bad Slug", "--label", "X", "--base-url", DHIS2_URL, "--client-secret-stdin"],
     "s\n", "--slug: Use 1 to 60 lowercase letters"),
    (["dhis2", "--slug", "moh", "--label", "X", "--base-url", DHIS2_URL, "--client-secret-stdin"],
     "s\n", "--slug: Another identity provider already uses moh"),
    (["dhis2", "--slug", "x", "--label", "X", "--client-secret-stdin"], "s\n", "Missing option '--base-url'"),
    (["dhis2", "--slug", "x", "--base-url", DHIS2_URL, "--client-secret-stdin"], "s\n", "Missing option '--label'"),
    (["dhis2", "--slug", "x", "--label", "X", "--base-url", DHIS2_URL], None,
     "--client-secret-stdin: This setting is required"),
    (["dhis2", "--slug", "x", "--label", "X", "--base-url", DHIS2_URL, "--client-secret-stdin"], "\n",
     "No client_secret on standard input"),
    (["dhis2", "--slug", "x", "--label", "X", "--base-url", "dhis2.test", "--client-secret-stdin"], "s\n",
     "--base-url: Enter a full URL"),
    (["dhis2", "--slug", "x", "--label", "X", "--base-url", DHIS2_URL, "--generation", "v3",
      "--client-secret-stdin"], "s\n", "'v3' is not one of"),
    (["dhis2", "--slug", "x", "--label", "X", "--base-url", DHIS2_URL, "--client-secret", "s"], None,
     "No such option"),
])
def test_add_bad_input_creates_nothing(dev_app, cli, args, stdin, message):
    _add(cli, "moh")
    result = _invoke(cli, "providers", "add", *args, input=stdin)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert _count(dev_app) == 1


def test_http_url_refused_outside_development(app, runner):
    result = _invoke(runner, "providers", "add", "dhis2", "--slug", "moh", "--label", "MoH", "--base-url",
                     DHIS2_URL, "--client-secret-stdin", input=f"{SECRET}\n")
    assert result.exit_code == 1
    assert "--base-url: Use https://" in result.output and len(result.stderr.strip().splitlines()) == 1
    assert _count(app) == 0


@pytest.mark.parametrize("args", [
    ["providers", "show", "ghost"], ["providers", "show", "ghost", "--json"], ["providers", "test", "ghost"],
    ["providers", "edit", "ghost", "--label", "x"], ["providers", "remove", "ghost", "--yes"],
    ["providers", "enable", "ghost"], ["providers", "disable", "ghost"], ["providers", "move", "ghost", "up"],
    ["users", "allow", "amina", "ghost"], ["users", "disallow", "amina", "ghost"],
    ["users", "unlink", "amina", "ghost"],
])
def test_unknown_slug_is_one_clear_line(dev_app, cli, make_user, args):
    make_user("amina")
    _add(cli, "moh")
    result = _invoke(cli, *args)
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: No identity provider called 'ghost'."
    assert _count(dev_app) == 1 and _allowed(dev_app, "moh") == []


# -- users allow / disallow / unlink -----------------------------------------------------------------------------
def test_users_allow_several_and_disallow(dev_app, cli, make_user):
    for name in ("amina", "bakary", "chidi"):
        make_user(name, password=None)
    _add(cli, "moh")
    result = _invoke(cli, "users", "allow", "amina", "bakary", "moh")
    assert result.exit_code == 0 and "allowed 2 user(s) for moh (0 already allowed)" in result.output
    again = _invoke(cli, "users", "allow", "bakary", "chidi", "moh")
    assert "allowed 1 user(s) for moh (1 already allowed)" in again.output
    assert _allowed(dev_app, "moh") == ["amina", "bakary", "chidi"]

    removed = _invoke(cli, "users", "disallow", "amina", "chidi", "moh")
    assert removed.exit_code == 0 and "disallowed 2 user(s) for moh" in removed.output
    assert _allowed(dev_app, "moh") == ["bakary"]
    assert _invoke(cli, "users", "allow", "moh").exit_code != 0  # a slug but no names
    assert _invoke(cli, "users", "allow").exit_code != 0


def test_users_allow_from_file_with_unknown_names(dev_app, cli, make_user, tmp_path):
    for name in ("amina", "bakary", "chidi"):
        make_user(name, password=None)
    _add(cli, "moh")
    _invoke(cli, "users", "allow", "chidi", "moh")
    names = tmp_path / "names.txt"
    names.write_text("# district officers\namina\n\nghost  # left last year\nchidi\n  bakary  \nnobody\n")
    result = _invoke(cli, "users", "allow", "--from-file", str(names), "moh")
    assert result.exit_code == 1
    assert "allowed 2 user(s) for moh (1 already allowed)" in result.stdout
    assert "No user named 'ghost'." in result.stderr and "No user named 'nobody'." in result.stderr
    assert "2 unknown user name(s)" in result.stderr
    assert _allowed(dev_app, "moh") == ["amina", "bakary", "chidi"]

    from_stdin = _invoke(cli, "users", "disallow", "amina", "--from-file", "-", "moh", input="bakary\nghost\n")
    assert from_stdin.exit_code == 1 and "disallowed 2 user(s) for moh" in from_stdin.stdout
    assert _allowed(dev_app, "moh") == ["chidi"]


def test_users_unlink(dev_app, cli, make_user):
    user_id = make_user("amina", password=None)
    _add(cli, "moh")
    with dev_app.app_context():
        provider_id = IdentityProvider.by_slug("moh").id
        db.session.add(ExternalIdentity(user_id=user_id, provider_id=provider_id, subject="xE7jOejl9FI",
                                        subject_scheme="dhis2-uid", external_username="amina"))
        db.session.commit()
    result = _invoke(cli, "users", "unlink", "amina", "moh")
    assert result.exit_code == 0 and "Unlinked amina from moh" in result.output
    assert _count(dev_app, ExternalIdentity) == 0
    again = _invoke(cli, "users", "unlink", "amina", "moh")
    assert again.exit_code == 0 and "has no account bound" in again.output
    unknown = _invoke(cli, "users", "unlink", "ghost", "moh")
    assert unknown.exit_code == 1 and "No user named 'ghost'." in unknown.output
    with dev_app.app_context():
        assert db.session.query(User).count() == 1


def test_reg_without_public_url_the_cli_names_the_variable_to_set(app_factory):
    """"(set PUBLIC_URL first)" named a setting nobody can set under that name: the variable is
    GEOLOGIN_PUBLIC_URL."""
    runner = app_factory(ALLOW_INSECURE_HTTP=True, PUBLIC_URL=None).test_cli_runner()
    added = _add(runner, "moh", DHIS2_URL, SECRET)
    assert "(set GEOLOGIN_PUBLIC_URL first)" in added.output
    assert "(set GEOLOGIN_PUBLIC_URL first)" in _invoke(runner, "providers", "show", "moh").output
