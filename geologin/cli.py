"""The ``flask --app wsgi ...`` commands for automation: users (and their identity-provider permissions),
audit and the first-run setup link; ``cli_providers`` adds the ``providers`` commands.
Errors exit non-zero with a one-line message and change nothing."""
import json
import os
import sys

import click
from flask import current_app
from flask.cli import AppGroup, with_appcontext

from . import audit, audit_query, firstrun, instances, throttle, users
from .extensions import db
from .models import ProviderInstance, User

users_cli = AppGroup("users", help="Manage local users.")
audit_cli = AppGroup("audit", help="Read and prune the audit trail.")
CLI_ACTOR = "cli"


def _read_password_stdin():
    """First line of standard input, without its line ending (passwords may contain spaces)."""
    line = sys.stdin.readline()
    password = line.rstrip("\r\n")
    if not password:
        raise click.ClickException("No password on standard input.")
    return password


def _get_user(name):
    user = User.by_username(name)
    if user is None:
        raise click.ClickException(f"No user named {name!r}.")
    return user


def _get_instance(slug):
    instance = ProviderInstance.by_slug(slug)
    if instance is None:
        raise click.ClickException(f"No identity provider called {slug!r}.")
    return instance


def _service(call, *args, **kwargs):
    try:
        return call(*args, **kwargs)
    except users.UserError as error:
        db.session.rollback()
        raise click.ClickException(error.message) from None


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
        password = _read_password_stdin()
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    user = _service(users.create_user, name, display_name=display_name, email=email or None, password=password,
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


@users_cli.command("set-password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
def users_set_password(name, password_stdin):
    """Set NAME's password and end their sessions."""
    user = _get_user(name)
    password = _read_password_stdin() if password_stdin else click.prompt(
        "New password", hide_input=True, confirmation_prompt=True)
    _service(users.set_password, user, password, actor=CLI_ACTOR)
    click.echo(f"Password set for {user.username}; their sessions have ended and any lockout is lifted.")


@users_cli.command("unlock")
@click.argument("name")
def users_unlock(name):
    """Let NAME try to log in again after too many failed attempts (every server process, at once)."""
    user = _get_user(name)
    throttle.unlock(user.username)
    audit.record("user.unlock", target=user.username, actor=CLI_ACTOR)
    click.echo(f"{user.username} is unlocked: they can try to log in again.")


@users_cli.command("deactivate")
@click.argument("name")
def users_deactivate(name):
    """Stop NAME from logging in and end their sessions."""
    user = _get_user(name)
    if not user.active:
        click.echo(f"{user.username} is already inactive.")
        return
    _service(users.update_user, user, active=False, actor=CLI_ACTOR)
    click.echo(f"{user.username} is deactivated.")


@users_cli.command("activate")
@click.argument("name")
def users_activate(name):
    """Let NAME log in again."""
    user = _get_user(name)
    _service(users.update_user, user, active=True, actor=CLI_ACTOR)
    click.echo(f"{user.username} is active.")


@users_cli.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def users_delete(name, yes):
    """Delete NAME (the audit trail keeps their history)."""
    user = _get_user(name)
    if not yes:
        click.confirm(f"Delete {user.username}?", abort=True)
    _service(users.delete_user, user, actor=CLI_ACTOR)
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
    """Apply ``change`` (instances.allow or disallow) to the named users; unknown names exit 1 afterwards."""
    names, slug = _names_and_slug(args, from_file)
    instance = _get_instance(slug)
    known, unknown = _known_users(names)
    changed = change(known, instance, actor=CLI_ACTOR)
    click.echo(summary.format(changed=len(changed), slug=instance.slug, unchanged=len(known) - len(changed)))
    if instance.allow_all_users:
        click.echo(f"Note: {instance.slug} currently admits every active user anyway (administrators only "
                   "when allowed one by one).")
    if unknown:
        raise _unknown_error(unknown)


@users_cli.command("allow")
@click.argument("args", nargs=-1, metavar="[NAME]... SLUG")
@_from_file
def users_allow(args, from_file):
    """Let the users NAME... log in through identity provider SLUG."""
    _change_permissions(args, from_file, instances.allow,
                        "allowed {changed} user(s) for {slug} ({unchanged} already allowed)")


@users_cli.command("disallow")
@click.argument("args", nargs=-1, metavar="NAME... SLUG")
@_from_file
def users_disallow(args, from_file):
    """Stop the users NAME... logging in through SLUG; their sessions from it end."""
    _change_permissions(args, from_file, instances.disallow,
                        "disallowed {changed} user(s) for {slug} ({unchanged} were not allowed)")


@users_cli.command("unlink")
@click.argument("name")
@click.argument("slug")
def users_unlink(name, slug):
    """Forget the external account bound to NAME at SLUG, so the next login through SLUG binds afresh."""
    user = _get_user(name)
    instance = _get_instance(slug)
    if instances.unlink(user, instance, actor=CLI_ACTOR):
        click.echo(f"Unlinked {user.username} from {instance.slug}; their next login through it binds again.")
    else:
        click.echo(f"{user.username} has no account bound at {instance.slug}.")


_DAY = click.DateTime(formats=["%Y-%m-%d"])


@audit_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100000),
              help="How many of the newest events to print.")
@click.option("--user", default=None, help="Only events whose actor or target contains this text.")
@click.option("--provider", default=None, help="Only events of this identity-provider slug.")
@click.option("--event", default=None, help="Only events of this type, e.g. login or user.update.")
@click.option("--outcome", default=None, type=click.Choice(audit_query.OUTCOMES), help="Only this outcome.")
@click.option("--since", default=None, type=_DAY, metavar="YYYY-MM-DD", help="From this UTC day (included).")
@click.option("--until", default=None, type=_DAY, metavar="YYYY-MM-DD", help="To this UTC day (included).")
def audit_list(as_json, limit, user, provider, event, outcome, since, until):
    """Print the newest audit events (matching the filters), oldest first."""
    if since and until and since > until:
        raise click.UsageError("--since is after --until.")
    filters = {"user": user, "provider": provider, "event": event, "outcome": outcome,
               "since": since.date() if since else None, "until": until.date() if until else None}
    events = list(db.session.scalars(audit_query.filtered_events(filters).limit(limit)))[::-1]
    if as_json:
        click.echo(json.dumps([e.as_dict() for e in events], indent=2))
        return
    for e in events:
        fields = [e.created_at.strftime(audit_query.TIME_FORMAT), e.event_type, e.outcome,
                  f"actor={e.actor or '-'}", f"ip={e.client_ip or '-'}", f"target={e.target or '-'}"]
        if e.provider:
            fields.append(f"provider={e.provider}")
        if e.reason_code:
            fields.append(f"reason={e.reason_code}")
        click.echo(" ".join(fields))


def _retention_days():
    setting = current_app.config.get("AUDIT_RETENTION_DAYS")
    if setting is None:
        raise click.UsageError("Give --older-than DAYS (AUDIT_RETENTION_DAYS is not set).")
    try:
        days = int(setting)  # GEOLOGIN_AUDIT_RETENTION_DAYS=1 arrives as True, like other numbers
    except (TypeError, ValueError):
        days = 0
    if days < 1:
        raise click.ClickException("AUDIT_RETENTION_DAYS must be a whole number of days, at least 1.")
    return days


@audit_cli.command("prune")
@click.option("--older-than", "days", type=click.IntRange(min=1), default=None, metavar="DAYS",
              help="Delete events older than DAYS days (default: AUDIT_RETENTION_DAYS).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation (for cron or a systemd timer).")
def audit_prune(days, yes):
    """Delete audit events older than DAYS days; the pruning itself is recorded."""
    if days is None:
        days = _retention_days()
    if not yes:
        count = audit_query.count_older_than(days)
        click.confirm(f"Delete {count} audit event(s) older than {days} days?", abort=True)
    deleted = audit_query.prune(days, actor=CLI_ACTOR)
    click.echo(f"Deleted {deleted} audit events older than {days} days.")


@click.command("setup-link")
@with_appcontext
@click.option("--if-needed", is_flag=True, help="Print nothing when an administrator already exists.")
@click.option("--base-url", default=None, help="Address of geologin as seen by your browser.")
def setup_link(if_needed, base_url):
    """Print a one-time link that creates the first administrator."""
    token = firstrun.issue_setup_token()
    if token is None:
        if if_needed:
            return
        raise click.ClickException("An administrator already exists; the setup link is no longer available.")
    base = base_url or current_app.config.get("PUBLIC_URL") or f"http://127.0.0.1:{os.environ.get('PORT', '5000')}"
    audit.record("setup.link_issued", actor=CLI_ACTOR)
    hours = current_app.config["SETUP_TOKEN_HOURS"]
    click.echo("=" * 72)
    click.echo("geologin has no administrator yet. Open this one-time link to create one")
    click.echo(f"(valid {hours} hours, until an administrator exists):")
    click.echo(f"    {base.rstrip('/')}/setup/{token}")
    click.echo("=" * 72)


def init_app(app):
    app.cli.add_command(users_cli)
    app.cli.add_command(audit_cli)
    app.cli.add_command(setup_link)
    from .cli_providers import init_app as init_providers_cli
    init_providers_cli(app)
    from .validation import guard_cli
    guard_cli(app.cli)
