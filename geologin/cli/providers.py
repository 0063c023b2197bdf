"""The ``flask --app wsgi providers ...`` commands: register, inspect, test and remove identity providers.
Each plugin's settings become the options of ``providers add TYPE`` (see ``setting_options``). Secrets are
write-only: they are read from standard input, stored encrypted, and never printed.
Errors exit non-zero with a one-line message and change nothing."""
import json

import click
from flask import current_app
from sqlalchemy import select
from flask.cli import AppGroup, ScriptInfo, with_appcontext

from .. import audit
from ..apps import keys
from ..encryption import SecretUnreadable
from ..extensions import db
from ..idp import cache, permissions, service, tokens
from ..idp import proxy_paths as proxy_path_rules
from ..idp.checks import all_passed, audit_summary, outcome, run_checks
from ..models import Group
from ..providers import LoginFailure
from .common import CLI_ACTOR, apply_change, get_provider, read_stdin_line

_NO_PUBLIC_URL = "(set GEOLOGIN_PUBLIC_URL first)"  # redirect URIs are built from it

providers_cli = AppGroup("providers", help="Manage identity providers (DHIS2 servers and other plugins).")
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off"}


# -- helpers -------------------------------------------------------------------------------------------
def _registry(ctx):
    """The plugin registry of the app the command runs against (loaded if need be, e.g. for --help)."""
    app = current_app._get_current_object() if current_app else ctx.ensure_object(ScriptInfo).load_app()
    return app.extensions["geologin.plugins"]


def _option_name(setting):
    dashed = setting.name.replace("_", "-")
    return f"--{dashed}-stdin" if setting.secret else f"--{dashed}"


def _secret_names(provider):
    """Secret settings the plugin declares (plus any stored for a plugin no longer installed)."""
    cls = cache.plugin_registry().get(provider.type)
    declared = [s.name for s in cls.settings if s.secret] if cls else []
    stored = sorted(json.loads(provider.secrets_json or "{}"))
    return declared + [n for n in stored if n not in declared]


def _row(provider):
    return {
        "slug": provider.slug,
        "type": provider.type,
        "label": provider.label,
        "enabled": provider.enabled,
        "allow_all_users": provider.allow_all_users,
        "keep_tokens": provider.keep_tokens,
        "position": provider.position,
        "installed": cache.plugin_registry().get(provider.type) is not None,
        # Whether each secret is stored; never its value.
        "secrets": {name: cache.has_secret(provider, name) for name in _secret_names(provider)},
    }


def _flags(row):
    return [flag for flag, on in (("disabled", not row["enabled"]), ("all-users", row["allow_all_users"]),
                                  ("plugin-missing", not row["installed"])) if on]


# -- options generated from a plugin's settings -----------------------------------------------------------
def setting_options(settings):
    """The click options for a plugin's ``Setting`` s: ``base_url`` -> ``--base-url``, a choice ->
    ``click.Choice``, a bool -> ``--x/--no-x``, a secret -> the flag ``--x-stdin`` (the value is read from
    standard input, never taken from the command line). Options left out are None, so the plugin's own
    defaults apply."""
    options = []
    for setting in settings:
        text = " ".join(p for p in (str(setting.label) + ".", str(setting.help or "")) if p.strip(". "))
        shown_default = None if setting.default in (None, "") else str(setting.default)
        if setting.secret:
            options.append(click.Option([_option_name(setting), setting.name], is_flag=True, default=False,
                                        help=f"Read the {setting.label} from the first line of standard input "
                                             "(stored encrypted, never shown)."))
        elif setting.kind == "bool":
            dashed = setting.name.replace("_", "-")
            options.append(click.Option([f"--{dashed}/--no-{dashed}", setting.name], default=None, help=text,
                                        show_default=shown_default))
        else:
            if setting.kind == "choice":
                kind = click.Choice([str(value) for value, _ in setting.choices])
                text += " " + "; ".join(f"{value}: {label}" for value, label in setting.choices) + "."
            else:
                kind = click.STRING
            options.append(click.Option([_option_name(setting), setting.name], type=kind, help=text,
                                        required=setting.required and setting.default is None,
                                        show_default=shown_default))
    return options


def _add_command(type_name, cls):
    """``providers add TYPE``: the common options, then the plugin's own."""
    option_names = {"slug": "--slug", "label": "--label", "description": "--description", "type": "TYPE",
                    **{s.name: _option_name(s) for s in cls.settings}}

    @with_appcontext
    def add(slug, label, description, disabled, enabled, allow_all_users, **values):
        if disabled and enabled:
            raise click.UsageError("--enabled and --disabled cannot be combined.")
        secret_flags = [s for s in cls.settings if s.secret and values.get(s.name)]
        if len(secret_flags) > 1:
            raise click.UsageError("Only one secret can be read from standard input per call: "
                                   f"{' and '.join(_option_name(s) for s in secret_flags)} cannot be combined. "
                                   "Set the others afterwards with `providers edit SLUG --secret-stdin NAME`.")
        secrets = {s.name: read_stdin_line(s.name) for s in secret_flags}
        settings = {s.name: values[s.name] for s in cls.settings if not s.secret and values.get(s.name) is not None}
        provider = apply_change(service.create_provider, type_name, slug=slug, label=label,
                            description=description, settings=settings, secrets=secrets, enabled=enabled,
                            allow_all_users=allow_all_users, actor=CLI_ACTOR, names=option_names)
        click.echo(f"Created {type_name} provider {provider.slug}"
                   f"{'' if provider.enabled or not disabled else ' (disabled)'}. Register this redirect URI at the "
                   f"server: {cache.plugin_object(provider).redirect_uri() or _NO_PUBLIC_URL}")
        if not disabled and not enabled:
            _enable_if_tested(provider)

    params = [
        click.Option(["--slug"], required=True, help="Short name used in URLs, e.g. moh-dhis2 (cannot change)."),
        click.Option(["--label"], required=True, help="What users see on the login page."),
        click.Option(["--description"], default="", help="A note for administrators."),
        click.Option(["--disabled"], is_flag=True, help="Create it disabled (not offered on the login page)."),
        click.Option(["--enabled"], is_flag=True,
                     help="Create it enabled without testing the connection (by default it is tested first and "
                          "created disabled unless the test passes)."),
        click.Option(["--allow-all-users"], is_flag=True,
                     help="Every active user may log in through it, administrators excepted (default: only "
                          "users allowed one by one)."),
        *setting_options(cls.settings),
    ]
    return click.Command(type_name, callback=add, params=params,
                         help=f"Register an identity provider of type {type_name} ({cls.display_name or type_name}).",
                         short_help=f"Register an identity provider of type {type_name} ({cls.display_name or type_name}).")


class PluginTypeGroup(click.Group):
    """One subcommand per installed provider plugin, read from the app's plugin registry when asked."""

    def list_commands(self, ctx):
        return _registry(ctx).types()

    def get_command(self, ctx, name):
        registry = _registry(ctx)
        cls = registry.get(name)
        return _add_command(name, cls) if cls else None

    def resolve_command(self, ctx, args):
        name = args[0] if args else None
        if name and not name.startswith("-") and not ctx.resilient_parsing and self.get_command(ctx, name) is None:
            registry = _registry(ctx)
            if name in registry.broken:
                raise click.ClickException(f"The {name} plugin failed to load: {registry.broken[name]}")
            raise click.ClickException(f"No installed provider plugin is called {name!r} "
                                       f"(installed: {', '.join(registry.types()) or 'none'}).")
        return super().resolve_command(ctx, args)


providers_cli.add_command(PluginTypeGroup(
    "add", help="Register an identity provider of type TYPE (one of the installed plugins below).\n\n"
                "Secrets are read from standard input, e.g.\n\n"
                "printf '%s\\n' \"$SECRET\" | flask --app wsgi providers add TYPE --slug moh --label 'MoH' "
                "... --client-secret-stdin\n\n"
                "`providers add TYPE --help` lists that plugin's options.",
    short_help="Register an identity provider.", subcommand_metavar="TYPE [ARGS]..."))


# -- the other commands ---------------------------------------------------------------------------------
def _parse_set(cls, pairs):
    settings = {}
    known = {s.name: s for s in cls.settings} if cls else {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip().replace("-", "_")
        if not sep:
            raise click.UsageError(f"--set takes NAME=VALUE, got {pair!r}.")
        setting = known.get(name)
        if setting is None:
            plain = ", ".join(s.name for s in known.values() if not s.secret)
            raise click.ClickException(f"No setting called {name!r} (settings: {plain or 'none'}).")
        if setting.secret:
            raise click.ClickException(f"{name} is a secret: use --secret-stdin {name} and give it on "
                                       "standard input.")
        if setting.kind == "bool":
            if value.strip().lower() not in TRUE_WORDS | FALSE_WORDS:
                raise click.ClickException(f"{name}: use true or false.")
            value = value.strip().lower() in TRUE_WORDS
        settings[name] = value
    return settings


@providers_cli.command("edit")
@click.argument("slug")
@click.option("--label", default=None, help="What users see on the login page.")
@click.option("--description", default=None, help="A note for administrators.")
@click.option("--enable/--disable", "enabled", default=None, help="Offer it on the login page, or not.")
@click.option("--allow-all-users/--allowed-users-only", "allow_all_users", default=None,
              help="Every active user (administrators excepted) may use it / only users allowed with "
                   "`users allow`.")
@click.option("--groups-prefixed/--no-groups-prefixed", "groups_prefixed", default=None,
              help="Every group the provider states is also a geologin group named SLUG:NAME / only its mapped "
                   "groups count (docs/groups.md).")
@click.option("--keep-tokens/--no-keep-tokens", "keep_tokens", default=None,
              help="Keep the tokens it issues at each login, for applications to call it as the person / "
                   "not (forgets every kept token).")
@click.option("--proxy-path", "proxy_paths", multiple=True, metavar="PATH",
              help="An API path the DHIS2 proxy forwards, such as me or organisationUnits/* (repeatable; replaces "
                   "them).")
@click.option("--no-proxy-paths", is_flag=True, help="The DHIS2 proxy forwards nothing for it.")
@click.option("--set", "pairs", multiple=True, metavar="NAME=VALUE",
              help="Change a plugin setting (repeatable); settings not named keep their value.")
@click.option("--secret-stdin", "secret_name", default=None, metavar="NAME",
              help="Replace secret NAME with the first line of standard input.")
@click.option("--access-group", "access_groups", multiple=True, metavar="NAME",
              help="Members of geologin group NAME may log in through it (repeatable; replaces the access groups; "
                   "never administrators).")
@click.option("--no-access-groups", is_flag=True, help="Admit nobody by group.")
@click.option("--create-accounts/--no-create-accounts", default=None,
              help="Create a local account on the first login of a member of an --account-group.")
@click.option("--account-group", "account_groups", multiple=True, metavar="NAME",
              help="Members of geologin group NAME get an account on their first login (repeatable; replaces them).")
@click.option("--no-account-groups", is_flag=True, help="Create accounts for nobody.")
@click.option("--account-clash", type=click.Choice(permissions.CLASH_POLICIES), default=None,
              help="When the username of such a person is an existing account not allowed through it: refuse, or "
                   "link it (only an active non-administrator with no binding to this provider).")
def providers_edit(slug, label, description, enabled, allow_all_users, groups_prefixed, keep_tokens, proxy_paths,
                   no_proxy_paths, pairs, secret_name, access_groups, no_access_groups, create_accounts,
                   account_groups, no_account_groups, account_clash):
    """Change provider SLUG (the slug itself never changes)."""
    provider = get_provider(slug)
    if proxy_paths and no_proxy_paths:
        raise click.UsageError("--proxy-path and --no-proxy-paths cannot be combined.")
    if (access_groups and no_access_groups) or (account_groups and no_account_groups):
        raise click.UsageError("--access-group and --no-access-groups (or --account-group and --no-account-groups) "
                               "cannot be combined.")
    access = _groups_named(access_groups, "--access-group") if access_groups or no_access_groups else None
    creating = _groups_named(account_groups, "--account-group") if account_groups or no_account_groups else None
    cls = cache.plugin_registry().get(provider.type)
    settings = _parse_set(cls, pairs)
    secrets = {}
    if secret_name is not None:
        secret_name = secret_name.replace("-", "_")
        declared = [s.name for s in cls.settings if s.secret] if cls else []
        if secret_name not in declared:
            raise click.ClickException(f"{provider.slug} has no secret called {secret_name!r} "
                                       f"(secrets: {', '.join(declared) or 'none'}).")
        secrets[secret_name] = read_stdin_line(secret_name)
    names = {"label": "--label", "type": "type", "proxy_paths": "--proxy-path",
             **{s: f"--secret-stdin {s}" for s in secrets}}
    changed = apply_change(service.update_provider, provider, label=label, description=description,
                       settings=settings, secrets=secrets, enabled=enabled, allow_all_users=allow_all_users,
                       groups_prefixed=groups_prefixed, keep_tokens=keep_tokens,
                       proxy_paths=list(proxy_paths) if proxy_paths or no_proxy_paths else None,
                       actor=CLI_ACTOR, names=names)
    if access is not None and permissions.set_access_groups(provider, access, actor=CLI_ACTOR):
        changed.append("access groups")
    if creating is not None and permissions.set_create_groups(provider, creating, actor=CLI_ACTOR):
        changed.append("account groups")
    changed += permissions.set_account_creation(provider, create_accounts=create_accounts,
                                                account_clash=account_clash, actor=CLI_ACTOR)
    click.echo(f"Updated {provider.slug}: {', '.join(changed)}." if changed
               else f"Nothing changed for {provider.slug}.")


def _group_names(provider, purpose):
    ids = permissions.access_group_ids(provider, purpose)
    return sorted(db.session.scalars(select(Group.name).where(Group.id.in_(ids)))) if ids else []


def _groups_named(names, option):
    """The geologin groups called ``names``; an unknown one is a one-line error before anything changes."""
    found = {name: Group.by_name(name) for name in dict.fromkeys(names)}
    unknown = [name for name, group in found.items() if group is None]
    if unknown:
        raise click.ClickException(f"{option}: no group called {', '.join(map(repr, unknown))} "
                                   "(see `groups list`).")
    return list(found.values())


@providers_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def providers_list(as_json):
    """List identity providers in the order users see them."""
    rows = [_row(i) for i in cache.ordered_providers()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No identity providers.")
        return
    slug_width = max(len(r["slug"]) for r in rows)
    type_width = max(len(r["type"]) for r in rows)
    for r in rows:
        click.echo(f"{r['position']:>3}  {r['slug']:<{slug_width}}  {r['type']:<{type_width}}  {r['label']}  "
                   f"{' '.join(_flags(r))}".rstrip())


@providers_cli.command("show")
@click.argument("slug")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
def providers_show(slug, as_json):
    """Show provider SLUG, with the redirect URI to register at its server."""
    provider = get_provider(slug)
    row = _row(provider)
    row["description"] = provider.description
    row["groups_prefixed"] = provider.groups_prefixed
    row["proxy_paths"] = proxy_path_rules.of(provider)
    row["settings"] = cache.settings_of(provider)
    row["redirect_uri"] = None
    row["setup"] = {}
    if row["installed"]:
        plugin = cache.plugin_object(provider)
        row["redirect_uri"] = plugin.redirect_uri()
        secret_names = set(row["secrets"])
        try:
            setup = plugin.setup_context()
        except (LoginFailure, SecretUnreadable):
            setup = {}
        row["setup"] = {k: v for k, v in setup.items() if k not in secret_names}
    row["allowed_users"] = [u.username for u in permissions.allowed_users(provider)]
    row["access_groups"] = _group_names(provider, permissions.ACCESS)
    row["create_accounts"] = provider.create_accounts
    row["account_groups"] = _group_names(provider, permissions.CREATE)
    row["account_clash"] = provider.account_clash
    if as_json:
        click.echo(json.dumps(row, indent=2, default=str))
        return
    click.echo(f"{row['slug']}  ({row['type']}{'' if row['installed'] else ', plugin not installed'})")
    click.echo(f"  label: {row['label']}")
    if row["description"]:
        click.echo(f"  description: {row['description']}")
    click.echo(f"  position: {row['position']}")
    click.echo(f"  enabled: {'yes' if row['enabled'] else 'no'}")
    click.echo(f"  who may use it: {'every active user' if row['allow_all_users'] else 'allowed users only'}"
               f" ({len(row['allowed_users'])} allowed one by one)")
    click.echo(f"  all of its groups as {row['slug']}:NAME: {'yes' if row['groups_prefixed'] else 'no'}")
    click.echo(f"  access groups: {', '.join(row['access_groups']) or '-'}")
    click.echo(f"  accounts on first login: {'yes' if row['create_accounts'] else 'no'}"
               f" (groups: {', '.join(row['account_groups']) or '-'}; clashing username: {row['account_clash']})")
    click.echo(f"  keeps tokens: {'yes' if row['keep_tokens'] else 'no'}")
    click.echo(f"  DHIS2 proxy paths: {', '.join(row['proxy_paths']) or '-'}")
    for name, value in row["settings"].items():
        click.echo(f"  {name}: {'-' if value in (None, '') else value}")
    for name, stored in row["secrets"].items():
        click.echo(f"  {name}: {'(stored)' if stored else '(not set)'}")
    click.echo(f"  redirect URI to register at the server: {row['redirect_uri'] or _NO_PUBLIC_URL}")


def _enable_if_tested(provider):
    """Item 16: test the new provider's connection; enable it only when every check passed, else say why it
    stays disabled and how to enable it."""
    checks = run_checks(provider)
    ok = all_passed(checks)
    audit.record("provider.test", audit.SUCCESS if ok else audit.FAILURE, target=provider.slug,
                 provider=provider.slug, actor=CLI_ACTOR, detail=audit_summary(checks))
    for check in checks:
        click.echo(f"{outcome(check) if check.ok is not False else 'FAILED':<6}  {check.name}: {check.message}")
    if ok:
        apply_change(service.update_provider, provider, enabled=True, actor=CLI_ACTOR)
        click.echo(f"The connection test passed: {provider.slug} is enabled.")
    else:
        click.echo(f"{provider.slug} was created disabled because the connection test did not pass. Fix its settings "
                   f"(`providers edit {provider.slug}`), check with `providers test {provider.slug}`, then "
                   f"`providers enable {provider.slug}`.")


@providers_cli.command("test")
@click.argument("slug")
def providers_test(slug):
    """Check that SLUG's server is reachable and accepts the client credentials (exit 0 only then)."""
    provider = get_provider(slug)
    if cache.plugin_registry().get(provider.type) is None:
        raise click.ClickException(f"The {provider.type} plugin of {provider.slug} is not installed.")
    checks = run_checks(provider)
    for check in checks:
        click.echo(f"{outcome(check) if check.ok is not False else 'FAILED':<6}  {check.name}: {check.message}")
    if not checks:
        raise click.ClickException(f"The {provider.type} plugin has no connection test; nothing was checked.")
    failed = [str(c.name) for c in checks if c.ok is False]
    if failed:
        raise click.ClickException(f"{provider.slug}: check failed: {', '.join(failed)}.")
    click.echo(f"{provider.slug}: all {len(checks)} checks passed.")


@providers_cli.command("remove")
@click.argument("slug")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def providers_remove(slug, yes):
    """Remove SLUG, with its per-user permissions and bound identities."""
    provider = get_provider(slug)
    if not yes:
        click.confirm(f"Remove {provider.slug}? Its permissions and bound identities are deleted too.", abort=True)
    service.delete_provider(provider, actor=CLI_ACTOR)
    click.echo(f"Removed {slug}.")


@providers_cli.command("types")
def providers_types():
    """List the installed provider plugins (and those that failed to load)."""
    registry = cache.plugin_registry()
    names = registry.types()
    width = max((len(n) for n in names), default=0)
    display = {n: registry.get(n).display_name or n for n in names}
    display_width = max((len(d) for d in display.values()), default=0)
    for name in names:
        click.echo(f"{name:<{width}}  {display[name]:<{display_width}}  {registry.plugins[name].origin}")
    if not names:
        click.echo("No provider plugins are installed.")
    for name, error in sorted(registry.broken.items()):
        click.echo(f"broken: {name}: {error}")


def _set_enabled(slug, enabled):
    provider = get_provider(slug)
    word = "enabled" if enabled else "disabled"
    if provider.enabled == enabled:
        click.echo(f"{provider.slug} is already {word}.")
        return
    apply_change(service.update_provider, provider, enabled=enabled, actor=CLI_ACTOR)
    click.echo(f"{provider.slug} is {word}.")


@providers_cli.command("enable")
@click.argument("slug")
def providers_enable(slug):
    """Offer SLUG on the login page."""
    _set_enabled(slug, True)


@providers_cli.command("disable")
@click.argument("slug")
def providers_disable(slug):
    """Stop offering SLUG (logins through it are refused)."""
    _set_enabled(slug, False)


@providers_cli.command("move")
@click.argument("slug")
@click.argument("direction", type=click.Choice(["up", "down"]))
def providers_move(slug, direction):
    """Move SLUG one place up or down in the order users see."""
    provider = get_provider(slug)
    service.move_provider(provider, -1 if direction == "up" else 1, actor=CLI_ACTOR)
    click.echo("Order: " + ", ".join(i.slug for i in cache.ordered_providers()))


@providers_cli.command("rotate-keys")
def providers_rotate_keys():
    """Re-encrypt every stored secret (identity providers' secrets, private signing keys) under the first
    ENCRYPTION_KEY (then older keys can go)."""
    try:
        key_count = keys.reencrypt_private_keys()
        token_count = tokens.reencrypt_all()
        count = service.rotate_secrets()  # its commit takes all three: all re-encrypted, or nothing
    except SecretUnreadable as error:
        db.session.rollback()
        raise click.ClickException(f"{error}; nothing was changed.") from None
    audit.record("provider.rotate_keys", actor=CLI_ACTOR,
                 detail=f"{count} provider secret(s), {key_count} signing key(s), {token_count} kept token(s)")
    click.echo(f"Re-encrypted {count} secret(s) of identity providers, {key_count} private signing key(s) and "
               f"{token_count} kept token(s) under the first ENCRYPTION_KEY.")
