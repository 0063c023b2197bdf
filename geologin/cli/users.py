"""The ``users`` commands: local users and the identity providers each may log in through."""
import json

import click
from flask.cli import AppGroup

from .. import audit
from ..accounts import firstrun, users
from ..encryption import SecretUnreadable
from ..extensions import db
from ..groups import membership
from ..idp import attributes, cache, permissions
from ..login import throttle
from ..models import User
from ..providers import DirectoryCredentials, LoginFailure
from .common import CLI_ACTOR, apply_change, get_provider, get_user, read_stdin_line
from .groups import source_text

users_cli = AppGroup("users", help="Manage local users.")


@users_cli.command("create")
@click.argument("name")
@click.option("--admin", is_flag=True, help="Make the user an administrator.")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
@click.option("--no-password", is_flag=True, help="No password: the user logs in through identity providers.")
@click.option("--display-name", default="", help="Name shown in the interface.")
@click.option("--email", default="", help="Email address.")
def users_create(name, admin, password_stdin, no_password, display_name, email):
    """Create user NAME (asks for a password unless told otherwise)."""
    if password_stdin and no_password:
        raise click.UsageError("--password-stdin and --no-password cannot be combined.")
    if no_password:
        password = None
    elif password_stdin:
        password = read_stdin_line("password")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    user = apply_change(users.create_user, name, display_name=display_name, email=email or None, password=password,
                    is_admin=admin, actor=CLI_ACTOR)
    if admin:
        firstrun.retire_setup_tokens()
        db.session.commit()
    click.echo(f"Created {'administrator' if admin else 'user'} {user.username}.")


def _user_row(user):
    return {
        "username": user.username,
        "display_name": user.display_name,
        "email": user.email,
        "admin": user.is_admin,
        "active": user.active,
        "password_login_allowed": user.password_login_allowed,
        "has_password": user.has_password,
        "created_at": user.created_at.isoformat(),
        "last_login_at": user.last_login_at.isoformat() if user.last_login_at else None,
    }


@users_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--search", default="", help="Only users whose username, name or email contains this.")
def users_list(as_json, search):
    """List users."""
    rows = [_user_row(u) for u in db.session.scalars(users.search_users(search))]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No users.")
        return
    width = max(len(r["username"]) for r in rows)
    for r in rows:
        flags = [f for f, on in (("admin", r["admin"]), ("inactive", not r["active"]),
                                 ("no-password", not r["has_password"]),
                                 ("password-login-off", not r["password_login_allowed"])) if on]
        click.echo(f"{r['username']:<{width}}  {r['display_name'] or '-'}  {' '.join(flags)}".rstrip())


@users_cli.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def users_show(name, as_json):
    """Show user NAME, with what each identity provider stated at their last login through it."""
    user = get_user(name)
    row = _user_row(user)
    row["identities"] = []
    for identity in permissions.identities_of(user):
        said = attributes.as_dict(identity)
        row["identities"].append({
            "provider": identity.provider.slug, "subject": identity.subject,
            "external_username": identity.external_username,
            "first_login_at": identity.first_login_at.isoformat(), "last_login_at": identity.last_login_at.isoformat(),
            "groups": said["groups"], "attributes": said["attributes"],
            "attributes_seen_at": said["seen_at"].isoformat() if said["seen_at"] else None})
    row["groups"] = [{"name": item.name, "sources": [source_text(source) for source in item.sources]}
                     for item in membership.of(user)]
    if as_json:
        click.echo(json.dumps(row, indent=2, ensure_ascii=False))
        return
    for key, value in row.items():
        if key not in ("identities", "groups"):
            click.echo(f"{key}: {value if value is not None else '-'}")
    for group in row["groups"]:
        click.echo(f"group {group['name']}: {'; '.join(group['sources'])}")
    for identity in row["identities"]:
        click.echo(f"provider {identity['provider']}: subject {identity['subject']}, last login "
                   f"{identity['last_login_at']}")
        if identity["attributes_seen_at"] is None:
            click.echo("  nothing stated yet")
            continue
        click.echo(f"  seen {identity['attributes_seen_at']}")
        click.echo("  groups: " + (", ".join(g["name"] for g in identity["groups"]) or "none"))
        for attribute, values in identity["attributes"].items():
            click.echo(f"  {attribute}: " + (", ".join(v["name"] for v in values) or "none"))


@users_cli.command("set-password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
def users_set_password(name, password_stdin):
    """Set NAME's password and end their sessions."""
    user = get_user(name)
    password = read_stdin_line("password") if password_stdin else click.prompt(
        "New password", hide_input=True, confirmation_prompt=True)
    apply_change(users.set_password, user, password, actor=CLI_ACTOR)
    click.echo(f"Password set for {user.username}; their sessions have ended and any lockout is lifted.")


@users_cli.command("unlock")
@click.argument("name")
def users_unlock(name):
    """Let NAME try to log in again after too many failed attempts (every server process, at once)."""
    user = get_user(name)
    throttle.unlock(user.username)
    audit.record("user.unlock", target=user.username, actor=CLI_ACTOR)
    click.echo(f"{user.username} is unlocked: they can try to log in again.")


@users_cli.command("deactivate")
@click.argument("name")
def users_deactivate(name):
    """Stop NAME from logging in and end their sessions."""
    user = get_user(name)
    if not user.active:
        click.echo(f"{user.username} is already inactive.")
        return
    apply_change(users.update_user, user, active=False, actor=CLI_ACTOR)
    click.echo(f"{user.username} is deactivated.")


@users_cli.command("activate")
@click.argument("name")
def users_activate(name):
    """Let NAME log in again."""
    user = get_user(name)
    apply_change(users.update_user, user, active=True, actor=CLI_ACTOR)
    click.echo(f"{user.username} is active.")


@users_cli.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def users_delete(name, yes):
    """Delete NAME (the audit trail keeps their history)."""
    user = get_user(name)
    if not yes:
        click.confirm(f"Delete {user.username}?", abort=True)
    apply_change(users.delete_user, user, actor=CLI_ACTOR)
    click.echo(f"Deleted {name}.")


def _names_and_slug(args, from_file):
    """``NAME... SLUG`` (the last argument is the slug) plus names from ``--from-file``, one a line
    (blank lines and # comments skipped), without duplicates, in order."""
    if not args:
        raise click.UsageError("Missing argument 'SLUG'.")
    *names, slug = args
    if from_file is not None:
        names += [line.split("#", 1)[0].strip() for line in from_file]
    names = list(dict.fromkeys(n for n in (n.strip() for n in names) if n))
    if not names:
        raise click.UsageError("Give at least one user NAME before SLUG, or --from-file.")
    return names, slug


def _known_users(names):
    """The users called ``names``; each unknown name is reported on standard error."""
    known, unknown = [], []
    for name in names:
        user = User.by_username(name)
        (known if user is not None else unknown).append(user or name)
    for name in unknown:
        click.echo(f"No user named {name!r}.", err=True)
    return known, unknown


def _unknown_error(unknown):
    return click.ClickException(f"{len(unknown)} unknown user name(s) skipped; the others were applied.")


_from_file = click.option("--from-file", type=click.File("r", encoding="utf-8"), default=None,
                          help="Also read user names from FILE, one a line (# comments; - is standard input).")


def _change_permissions(args, from_file, change, summary):
    """Apply ``change`` (permissions.allow or disallow) to the named users; unknown names exit 1 afterwards."""
    names, slug = _names_and_slug(args, from_file)
    provider = get_provider(slug)
    known, unknown = _known_users(names)
    changed = change(known, provider, actor=CLI_ACTOR)
    click.echo(summary.format(changed=len(changed), slug=provider.slug, unchanged=len(known) - len(changed)))
    if provider.allow_all_users:
        click.echo(f"Note: {provider.slug} currently admits every active user anyway (administrators only "
                   "when allowed one by one).")
    if unknown:
        raise _unknown_error(unknown)


@users_cli.command("allow")
@click.argument("args", nargs=-1, metavar="[NAME]... SLUG")
@_from_file
def users_allow(args, from_file):
    """Let the users NAME... log in through identity provider SLUG."""
    _change_permissions(args, from_file, permissions.allow,
                        "allowed {changed} user(s) for {slug} ({unchanged} already allowed)")


@users_cli.command("disallow")
@click.argument("args", nargs=-1, metavar="NAME... SLUG")
@_from_file
def users_disallow(args, from_file):
    """Stop the users NAME... logging in through SLUG; their sessions from it end."""
    _change_permissions(args, from_file, permissions.disallow,
                        "disallowed {changed} user(s) for {slug} ({unchanged} were not allowed)")


@users_cli.command("unlink")
@click.argument("name")
@click.argument("slug")
def users_unlink(name, slug):
    """Forget the external account bound to NAME at SLUG, so the next login through SLUG binds afresh."""
    user = get_user(name)
    provider = get_provider(slug)
    if permissions.unlink(user, provider, actor=CLI_ACTOR):
        click.echo(f"Unlinked {user.username} from {provider.slug}; their next login through it binds again.")
    else:
        click.echo(f"{user.username} has no account bound at {provider.slug}.")


@users_cli.command("import-from")
@click.argument("slug")
@click.option("--group", "group_id", required=True, metavar="EXTERNAL_GROUP_ID",
              help="The id of the group at the provider's server whose members to import.")
@click.option("--token", "use_token", is_flag=True,
              help="Read your personal access token at the server from standard input instead of being asked "
                   "for your username and password there.")
@click.option("--yes", is_flag=True, help="Create the accounts (without it, only show who would be created).")
def users_import_from(slug, group_id, use_token, yes):
    """List the members of a group at provider SLUG's server, asked with your own credentials there (never
    stored), and with --yes create a local account for each one who has none: no password, not an
    administrator, allowed to log in through SLUG."""
    provider = get_provider(slug)
    cls = cache.plugin_registry().get(provider.type)
    if cls is None or not cls.lists_directory:
        raise click.ClickException(f"The {provider.type} plugin of {provider.slug} cannot list users.")
    if use_token:
        token = read_stdin_line("token").strip()
        credentials = DirectoryCredentials(token=token.split(" ", 1)[1] if token.startswith("ApiToken ") else token)
    else:
        credentials = DirectoryCredentials(username=click.prompt(f"Your username at {provider.label}"),
                                           password=click.prompt("Your password there", hide_input=True))
    try:
        members = cache.plugin_object(provider).directory_members(group_id.strip(), credentials)
    except LoginFailure as failure:
        raise click.ClickException(f"{provider.slug}: {failure.detail or failure.reason}; nothing created.") from None
    except SecretUnreadable as error:
        raise click.ClickException(f"{provider.slug}: {error}; nothing created.") from None
    create, existing, refused = _import_plan(members)
    click.echo(f"Group {group_id} at {provider.label}: {len(members)} user(s).")
    for title, rows in (("Would create" if not yes else "Creating", [_described(i) for i in create]),
                        ("Already exist here", [u.username for u in existing]),
                        ("Refused", [f"{name}: {why}" for name, why in refused])):
        if rows:
            click.echo(f"{title} ({len(rows)}):")
            for row in rows:
                click.echo(f"  {row}")
    if not create:
        click.echo("Nobody to create.")
        return
    if not yes:
        click.echo("Run again with --yes to create them.")
        return
    created = [users.create_user(identity.username, display_name=_clean_name(identity.display_name),
                                 email=identity.email if not users.email_problem(identity.email) else None,
                                 password=None, password_login_allowed=False, actor=CLI_ACTOR, commit=False,
                                 detail=f"imported from group {group_id} at {provider.slug}")
               for identity in create]
    audit.record("users.import", target=provider.slug, provider=provider.slug, actor=CLI_ACTOR, commit=False,
                 detail=f"group {group_id}: {len(created)} created, {len(existing)} already here, "
                        f"{len(refused)} refused")
    permissions.allow(created, provider, actor=CLI_ACTOR)  # commits the accounts with their permission
    click.echo(f"Created {len(created)} user(s), allowed to log in through {provider.slug}.")


def _import_plan(members):
    """(identities to create, existing users, [(name, why refused)]) for a directory listing."""
    create, existing, refused, seen = [], [], [], set()
    for identity in members:
        name = identity.username
        if name in seen:
            continue
        seen.add(name)
        problem = users.username_problem(name)  # control characters included
        user = User.by_username(name) if not problem else None
        if problem:
            refused.append((repr(name)[1:-1][:80], problem))
        elif user is not None:
            existing.append(user)
        else:
            create.append(identity)
    return create, existing, refused


def _described(identity):
    name = _clean_name(identity.display_name)
    return f"{identity.username} ({name})" if name else identity.username


def _clean_name(text):
    return "".join(ch for ch in text if ch.isprintable())[:200].strip() if isinstance(text, str) else ""
