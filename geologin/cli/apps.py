"""The ``flask --app wsgi apps ...`` commands: register the applications that sign their users in through
geologin (OpenID Connect clients), change them, rotate their secrets, remove them, and say who may use them.
First-party tooling scripts these with ``--json``, so their options and output are a contract. Every rule is
geologin/apps/clients.py's, shared with the admin screens; errors exit non-zero with one line and change
nothing."""
import json

import click
from flask.cli import AppGroup

from ..apps import clients
from ..extensions import db
from .common import CLI_ACTOR

apps_cli = AppGroup("apps", help="Manage the applications that sign users in through geologin (OpenID Connect "
                                 "clients).")

_NOT_SHOWN_AGAIN = "Keep the client secret now: it is not shown again (only its hash is stored)."


def _get(name_or_client_id):
    application = clients.find(name_or_client_id)
    if application is None:
        raise click.ClickException(f"No application named or identified {name_or_client_id!r} "
                                   "(see `apps list`).")
    return application


def _change(call, *args, **kwargs):
    """Run a service call; a refused change rolls back and becomes one line (exit 1)."""
    try:
        return call(*args, **kwargs)
    except clients.ApplicationError as error:
        db.session.rollback()
        raise click.ClickException(error.message) from None


def _print_credentials(application, secret, as_json, verb):
    if as_json:
        if application.is_forward_auth:
            click.echo(json.dumps({"name": application.name, "hosts": clients.host_names(application)}))
        else:
            click.echo(json.dumps({"client_id": application.client_id, "client_secret": secret}))
        return
    click.echo(f"{verb} {application.name}.")
    if application.is_forward_auth:
        click.echo("Protected site: point the proxy of " + ", ".join(clients.host_names(application))
                   + " at geologin's /forward-auth (docs/forward-auth.md).")
        return
    click.echo(f"client_id: {application.client_id}")
    if secret is None:
        click.echo("Public client: no secret (it must use PKCE).")
    else:
        click.echo(f"client_secret: {secret}")
        click.echo(_NOT_SHOWN_AGAIN)


def _who(row):
    return "every active user" if row["all_users"] else "allowed users only"


@apps_cli.command("add")
@click.argument("name")
@click.option("--redirect-uri", "redirect_uris", multiple=True, metavar="URI",
              help="Where geologin may send users back with a code (repeatable; compared exactly). Needed for an "
                   "OpenID Connect client.")
@click.option("--forward-auth", is_flag=True,
              help="A protected site behind a reverse proxy that asks geologin (docs/forward-auth.md), not an "
                   "OpenID Connect client.")
@click.option("--host", "hosts", multiple=True, metavar="HOST",
              help="A host name the protected site is served at, as browsers see it (repeatable; --forward-auth).")
@click.option("--post-logout-uri", "post_logout_uris", multiple=True, metavar="URI",
              help="Where geologin may send users after logging out from the application (repeatable).")
@click.option("--backchannel-logout-uri", default=None, metavar="URI",
              help="Where geologin POSTs a logout token when the user's geologin session ends.")
@click.option("--public", is_flag=True,
              help="A public client (single-page or native app): no secret, PKCE required.")
@click.option("--first-party", is_flag=True, help="Trusted: users are not asked for consent.")
@click.option("--all-users/--allowed-users-only", "all_users", default=True, show_default=True,
              help="Every active user may sign in to it / only users allowed with `apps allow`.")
@click.option("--refresh-tokens", is_flag=True,
              help="Give refresh tokens at every sign-in, not only when the application asks for offline_access.")
@click.option("--provider", "providers", multiple=True, metavar="SLUG",
              help="Admit only people who logged in through this identity provider (repeatable; default: any "
                   "login method).")
@click.option("--id-token-alg", type=click.Choice(clients.ID_TOKEN_ALGORITHMS), default="RS256", show_default=True,
              help="How its ID tokens are signed.")
@click.option("--group", "groups", multiple=True, metavar="NAME",
              help="Members of this geologin group may sign in besides the allowed users (repeatable; with "
                   "--allowed-users-only).")
@click.option("--attribute-claim", "attribute_claims", multiple=True, metavar="NAME",
              help="Give this provider attribute as the claim <plugin type>_<NAME>, e.g. roles -> dhis2_roles "
                   "(repeatable).")
@click.option("--token-provider", "token_providers", multiple=True, metavar="SLUG",
              help="It may receive the person's kept tokens of this provider, by token exchange or through the "
                   "DHIS2 proxy (repeatable; the provider must keep tokens).")
@click.option("--json", "as_json", is_flag=True,
              help='Print {"client_id": ..., "client_secret": ...} (null secret for a public client).')
def apps_add(name, redirect_uris, forward_auth, hosts, post_logout_uris, backchannel_logout_uri, public, first_party,
             all_users, refresh_tokens, providers, id_token_alg, groups, attribute_claims, token_providers, as_json):
    """Register application NAME; prints its client_id and, for a confidential client, its secret (once)."""
    application, secret = _change(
        clients.create, name, list(redirect_uris), post_logout_uris=list(post_logout_uris),
        backchannel_logout_uri=backchannel_logout_uri, public=public, first_party=first_party,
        all_users=all_users, refresh_tokens=refresh_tokens, providers=list(providers), id_token_alg=id_token_alg,
        forward_auth=forward_auth, hosts=list(hosts), groups=list(groups), attribute_claims=list(attribute_claims),
        token_providers=list(token_providers), actor=CLI_ACTOR)
    _print_credentials(application, secret, as_json, "Registered")


@apps_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def apps_list(as_json):
    """List the registered applications."""
    rows = [clients.as_dict(application) for application in clients.all_applications()]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        click.echo("No applications.")
        return
    width = max(len(row["name"]) for row in rows)
    id_width = max(len(row["client_id"]) for row in rows)
    for row in rows:
        if row["kind"] == "forward_auth":
            flags = ["forward-auth", *row["hosts"]] + (["allowed-users-only"] if not row["all_users"] else []) + (
                ["providers-only"] if row["providers_only"] else [])
            click.echo(f"{row['name']:<{width}}  {'-':<{id_width}}  {' '.join(flags)}".rstrip())
            continue
        flags = [flag for flag, on in (("public", row["public"]), ("first-party", row["first_party"]),
                                       ("allowed-users-only", not row["all_users"]),
                                       ("providers-only", row["providers_only"]),
                                       ("refresh-tokens", row["refresh_tokens"])) if on]
        click.echo(f"{row['name']:<{width}}  {row['client_id']:<{id_width}}  {' '.join(flags)}".rstrip())


@apps_cli.command("show")
@click.argument("name_or_client_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
def apps_show(name_or_client_id, as_json):
    """Show an application (never its secret)."""
    row = clients.as_dict(_get(name_or_client_id))
    if as_json:
        click.echo(json.dumps(row, indent=2))
        return
    click.echo(row["name"])
    if row["kind"] == "forward_auth":
        click.echo("  type: protected site (forward-auth)")
        for host in row["hosts"]:
            click.echo(f"  host: {host}")
        click.echo(f"  who may sign in: {_who(row)} ({len(row['allowed_users'])} allowed one by one)")
        click.echo("  groups: " + (", ".join(row["allowed_groups"]) or "-"))
        click.echo("  identity providers: " + (", ".join(row["allowed_providers"]) if row["providers_only"]
                                               else "any login method"))
        click.echo(f"  created: {row['created_at']}")
        return
    click.echo(f"  client_id: {row['client_id']}")
    click.echo(f"  type: {'public (PKCE, no secret)' if row['public'] else 'confidential'}")
    if not row["public"]:
        click.echo(f"  secret changed: {row['secret_changed_at'] or '-'}")
    click.echo(f"  first party (no consent screen): {'yes' if row['first_party'] else 'no'}")
    for uri in row["redirect_uris"]:
        click.echo(f"  redirect URI: {uri}")
    for uri in row["post_logout_uris"]:
        click.echo(f"  post-logout URI: {uri}")
    click.echo(f"  back-channel logout URI: {row['backchannel_logout_uri'] or '-'}")
    click.echo(f"  who may sign in: {_who(row)} ({len(row['allowed_users'])} allowed one by one)")
    click.echo("  groups: " + (", ".join(row["allowed_groups"]) or "-"))
    click.echo("  identity providers: " + (", ".join(row["allowed_providers"]) if row["providers_only"]
                                           else "any login method"))
    click.echo("  attribute claims: " + (", ".join(row["attribute_claims"]) or "-"))
    click.echo("  may receive the kept tokens of: " + (", ".join(row["token_providers"]) or "-"))
    click.echo(f"  refresh tokens at every sign-in: {'yes' if row['refresh_tokens'] else 'no'}")
    click.echo(f"  created: {row['created_at']}")


@apps_cli.command("edit")
@click.argument("name_or_client_id")
@click.option("--name", default=None, help="A new name.")
@click.option("--redirect-uri", "redirect_uris", multiple=True, metavar="URI",
              help="Replaces the redirect URIs with those given (repeatable).")
@click.option("--post-logout-uri", "post_logout_uris", multiple=True, metavar="URI",
              help="Replaces the post-logout URIs with those given (repeatable); --post-logout-uri '' removes "
                   "them all.")
@click.option("--backchannel-logout-uri", default=None, metavar="URI",
              help="A new back-channel logout URI; '' removes it.")
@click.option("--first-party/--not-first-party", "first_party", default=None,
              help="Users are not asked for consent / they are.")
@click.option("--all-users/--allowed-users-only", "all_users", default=None,
              help="Every active user may sign in to it / only users allowed with `apps allow`.")
@click.option("--refresh-tokens/--no-refresh-tokens", "refresh_tokens", default=None,
              help="Refresh tokens at every sign-in / only when the application asks for offline_access.")
@click.option("--provider", "providers", multiple=True, metavar="SLUG",
              help="Replaces the identity providers people must have logged in through (repeatable).")
@click.option("--any-provider", is_flag=True, help="Admit people whatever way they logged in.")
@click.option("--id-token-alg", type=click.Choice(clients.ID_TOKEN_ALGORITHMS), default=None,
              help="How its ID tokens are signed.")
@click.option("--host", "hosts", multiple=True, metavar="HOST",
              help="Replaces a protected site's hosts with those given (repeatable).")
@click.option("--group", "groups", multiple=True, metavar="NAME",
              help="Replaces the geologin groups whose members may sign in (repeatable).")
@click.option("--no-groups", is_flag=True, help="Admit no group (only the allowed users, or every active user).")
@click.option("--attribute-claim", "attribute_claims", multiple=True, metavar="NAME",
              help="Replaces the provider attributes given as claims (repeatable).")
@click.option("--no-attribute-claims", is_flag=True, help="Give no provider attribute as a claim.")
@click.option("--token-provider", "token_providers", multiple=True, metavar="SLUG",
              help="Replaces the providers whose kept tokens it may receive (repeatable).")
@click.option("--no-token-providers", is_flag=True, help="It receives no kept token.")
def apps_edit(name_or_client_id, name, redirect_uris, post_logout_uris, backchannel_logout_uri, first_party,
              all_users, refresh_tokens, providers, any_provider, id_token_alg, hosts, groups, no_groups,
              attribute_claims, no_attribute_claims, token_providers, no_token_providers):
    """Change an application; options not given keep their value."""
    if token_providers and no_token_providers:
        raise click.UsageError("--token-provider and --no-token-providers cannot be combined.")
    if providers and any_provider:
        raise click.UsageError("--provider and --any-provider cannot be combined.")
    if groups and no_groups:
        raise click.UsageError("--group and --no-groups cannot be combined.")
    if attribute_claims and no_attribute_claims:
        raise click.UsageError("--attribute-claim and --no-attribute-claims cannot be combined.")
    application = _get(name_or_client_id)
    changes = {}  # only what was given: the service leaves the rest as it is
    if redirect_uris:
        changes["redirect_uris"] = list(redirect_uris)
    if post_logout_uris:
        changes["post_logout_uris"] = [uri for uri in post_logout_uris if uri != ""]
    if backchannel_logout_uri is not None:
        changes["backchannel_logout_uri"] = backchannel_logout_uri or None
    if providers or any_provider:
        changes["providers"] = list(providers)
    if hosts:
        changes["hosts"] = list(hosts)
    if groups or no_groups:
        changes["groups"] = list(groups)
    if attribute_claims or no_attribute_claims:
        changes["attribute_claims"] = list(attribute_claims)
    if token_providers or no_token_providers:
        changes["token_providers"] = list(token_providers)
    changed = _change(clients.edit, application, name=name, first_party=first_party, all_users=all_users,
                      refresh_tokens=refresh_tokens, id_token_alg=id_token_alg, actor=CLI_ACTOR, **changes)
    click.echo(f"Updated {application.name}: {', '.join(changed)}." if changed
               else f"Nothing changed for {application.name}.")


@apps_cli.command("rotate-secret")
@click.argument("name_or_client_id", metavar="NAME")
@click.option("--json", "as_json", is_flag=True,
              help='Print {"client_id": ..., "client_secret": ...}.')
def apps_rotate_secret(name_or_client_id, as_json):
    """Give a confidential application a new secret; the old one stops working at once."""
    application = _get(name_or_client_id)
    secret = _change(clients.rotate_secret, application, actor=CLI_ACTOR)
    _print_credentials(application, secret, as_json, "New secret for")


@apps_cli.command("remove")
@click.argument("name_or_client_id", metavar="NAME")
@click.option("--yes", is_flag=True, help="Confirm: this cannot be undone.")
def apps_remove(name_or_client_id, yes):
    """Remove an application with its allowed users, consents, codes and tokens (needs --yes)."""
    application = _get(name_or_client_id)
    if not yes:
        raise click.ClickException(f"Removing {application.name} ends every sign-in to it and cannot be undone; "
                                   "add --yes to do it. Nothing was changed.")
    name = application.name
    _change(clients.remove, application, actor=CLI_ACTOR)
    click.echo(f"Removed {name}.")


@apps_cli.command("allow")
@click.argument("name_or_client_id", metavar="NAME")
@click.argument("usernames", nargs=-1, required=True, metavar="USER...")
def apps_allow(name_or_client_id, usernames):
    """Let the users USER... sign in to application NAME (all names must exist, or nothing changes)."""
    application = _get(name_or_client_id)
    users = _change(clients.users_named, usernames)
    added = _change(clients.allow, application, users, actor=CLI_ACTOR)
    click.echo(f"Allowed {len(added)} user(s) for {application.name} ({len(users) - len(added)} already allowed).")
    if application.allow_all_users:
        click.echo(f"Note: {application.name} currently admits every active user anyway.")


@apps_cli.command("disallow")
@click.argument("name_or_client_id", metavar="NAME")
@click.argument("usernames", nargs=-1, required=True, metavar="USER...")
def apps_disallow(name_or_client_id, usernames):
    """Stop the users USER... signing in to application NAME; what it was given for them is revoked."""
    application = _get(name_or_client_id)
    users = _change(clients.users_named, usernames)
    removed = _change(clients.disallow, application, users, actor=CLI_ACTOR)
    click.echo(f"Disallowed {len(removed)} user(s) for {application.name} "
               f"({len(users) - len(removed)} were not allowed).")
    if application.allow_all_users:
        click.echo(f"Note: {application.name} currently admits every active user anyway.")
