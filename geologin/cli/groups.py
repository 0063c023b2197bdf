"""The ``flask --app wsgi groups ...`` commands: geologin groups, their members by hand and their mappings
from an identity provider's groups (docs/groups.md). Every rule is geologin/groups/service.py's, shared with
the admin screens; errors exit non-zero with one line and change nothing."""
import json

import click
from flask.cli import AppGroup
from sqlalchemy import select

from ..extensions import db
from ..groups import service
from ..models import Application, ApplicationGroup, Group, GroupMapping, IdentityProvider, ProviderGroup, User
from .common import CLI_ACTOR, get_provider

groups_cli = AppGroup("groups", help="Manage geologin groups: members by hand and mappings from identity "
                                     "providers' groups.")


def _get(name):
    group = Group.by_name(name)
    if group is None:
        raise click.ClickException(f"No group named {name!r} (see `groups list`).")
    return group


def _change(call, *args, **kwargs):
    """Run a service call; a refused change rolls back and becomes one line (exit 1)."""
    try:
        return call(*args, **kwargs)
    except service.GroupError as error:
        db.session.rollback()
        raise click.ClickException(error.message) from None


def _users_named(usernames):
    """The users USER...; one unknown name refuses the whole command (a typo is fixed, not half done)."""
    found = {user.username: user for user in db.session.scalars(select(User).where(User.username.in_(usernames)))}
    missing = [name for name in usernames if name not in found]
    if missing:
        raise click.ClickException(f"No user named {', '.join(map(repr, missing))}. Nothing was changed.")
    return [found[name] for name in dict.fromkeys(usernames)]


def source_text(source):
    """Where a membership comes from, as the CLI prints it."""
    if source.provider is None:
        return "by hand"
    return f"provider {source.provider} group {source.external_name} ({source.external_id})"


def _sources(sources):
    return [source_text(source) for source in sources]


def _row(group, *, details=False):
    row = {"name": group.name, "description": group.description, "created_at": group.created_at.isoformat(),
           "members": len(service.member_ids(group))}
    if not details:
        return row
    row["members"] = [{"username": user.username, "sources": _sources(sources)}
                      for user, sources in service.members(group)]
    row["mappings"] = [{"provider": mapping.provider.slug, "external_id": mapping.external_id,
                        "external_name": mapping.external_name}
                       for mapping in sorted(group.mappings, key=lambda m: (m.provider.slug, m.external_id))]
    row["providers"] = [{"provider": slug, "purpose": purpose} for slug, purpose in db.session.execute(
        select(IdentityProvider.slug, ProviderGroup.purpose)
        .join(ProviderGroup, ProviderGroup.provider_id == IdentityProvider.id)
        .where(ProviderGroup.group_id == group.id).order_by(IdentityProvider.slug, ProviderGroup.purpose))]
    row["applications"] = list(db.session.scalars(
        select(Application.name).join(ApplicationGroup, ApplicationGroup.application_id == Application.id)
        .where(ApplicationGroup.group_id == group.id).order_by(Application.name)))
    return row


_PURPOSES = {"access": "may log in through it", "create": "gets an account on first login through it"}


@groups_cli.command("add")
@click.argument("name")
@click.option("--description", default="", help="A note for administrators.")
def groups_add(name, description):
    """Create group NAME (no comma, no colon)."""
    group = _change(service.create, name, description, actor=CLI_ACTOR)
    click.echo(f"Created group {group.name}.")


@groups_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def groups_list(as_json):
    """List the groups with their number of members (by hand and through mappings)."""
    rows = [_row(group) for group in service.all_groups()]
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo("No groups.")
        return
    width = max(len(row["name"]) for row in rows)
    for row in rows:
        click.echo(f"{row['name']:<{width}}  {row['members']:>5} member(s)  {row['description']}".rstrip())


@groups_cli.command("show")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
def groups_show(name, as_json):
    """Show group NAME: its members and where each membership comes from, its mappings, and the providers and
    applications that admit it."""
    row = _row(_get(name), details=True)
    if as_json:
        click.echo(json.dumps(row, indent=2, ensure_ascii=False))
        return
    click.echo(row["name"])
    if row["description"]:
        click.echo(f"  description: {row['description']}")
    click.echo(f"  created: {row['created_at']}")
    click.echo(f"  members: {len(row['members'])}")
    for member in row["members"]:
        click.echo(f"    {member['username']}: {'; '.join(member['sources'])}")
    click.echo(f"  mappings: {len(row['mappings'])}")
    for mapping in row["mappings"]:
        click.echo(f"    provider {mapping['provider']} group {mapping['external_name'] or '-'} "
                   f"({mapping['external_id']})")
    for item in row["providers"]:
        click.echo(f"  provider {item['provider']}: a member {_PURPOSES.get(item['purpose'], item['purpose'])}")
    for application in row["applications"]:
        click.echo(f"  application {application}: members may sign in")


@groups_cli.command("edit")
@click.argument("name")
@click.option("--name", "new_name", default=None, help="A new name (applications see it at their next sign-in).")
@click.option("--description", default=None, help="A new description; '' removes it.")
def groups_edit(name, new_name, description):
    """Rename or describe group NAME; options not given keep their value."""
    group = _get(name)
    changed = _change(service.edit, group, name=new_name, description=description, actor=CLI_ACTOR)
    click.echo(f"Updated {group.name}: {'; '.join(changed)}." if changed else f"Nothing changed for {group.name}.")


@groups_cli.command("remove")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Confirm: this cannot be undone.")
def groups_remove(name, yes):
    """Remove group NAME with its members, mappings and the access it gave (needs --yes)."""
    group = _get(name)
    if not yes:
        raise click.ClickException(f"Removing {group.name} takes it away from its {len(service.member_ids(group))} "
                                   "member(s), with its mappings and the access it gave, and cannot be undone; add "
                                   "--yes to do it. Nothing was changed.")
    _change(service.remove, group, actor=CLI_ACTOR)
    click.echo(f"Removed group {name}.")


@groups_cli.command("add-member")
@click.argument("name")
@click.argument("usernames", nargs=-1, required=True, metavar="USER...")
def groups_add_member(name, usernames):
    """Put the users USER... in group NAME by hand (all names must exist, or nothing changes)."""
    group = _get(name)
    users = _users_named(usernames)
    added = _change(service.add_members, group, users, actor=CLI_ACTOR)
    click.echo(f"Added {len(added)} member(s) to {group.name} ({len(users) - len(added)} already in it by hand).")


@groups_cli.command("remove-member")
@click.argument("name")
@click.argument("usernames", nargs=-1, required=True, metavar="USER...")
def groups_remove_member(name, usernames):
    """Take the users USER... out of group NAME (their membership by hand; a mapping may still put them in)."""
    group = _get(name)
    users = _users_named(usernames)
    removed = _change(service.remove_members, group, users, actor=CLI_ACTOR)
    click.echo(f"Removed {len(removed)} member(s) from {group.name} "
               f"({len(users) - len(removed)} were not in it by hand).")
    still = sorted(user.username for user in users if user.id in service.member_ids(group))
    if still:
        click.echo(f"Note: still in {group.name} through a mapping: {', '.join(still)}.")


@groups_cli.command("map")
@click.argument("name")
@click.option("--provider", "slug", required=True, metavar="SLUG", help="The identity provider.")
@click.option("--external-id", required=True, metavar="ID", help="The id of the group at the provider.")
@click.option("--external-name", default="", metavar="TEXT", help="Its name there, for the screens.")
def groups_map(name, slug, external_id, external_name):
    """Members of the provider's group ID are in group NAME (at once for those whose last login said so)."""
    group = _get(name)
    provider = get_provider(slug)
    _change(service.add_mapping, group, provider, external_id, external_name, actor=CLI_ACTOR)
    click.echo(f"Mapped group {external_id} of {provider.slug} to {group.name}.")


@groups_cli.command("unmap")
@click.argument("name")
@click.option("--provider", "slug", required=True, metavar="SLUG", help="The identity provider.")
@click.option("--external-id", required=True, metavar="ID", help="The id of the group at the provider.")
def groups_unmap(name, slug, external_id):
    """Remove the mapping of the provider's group ID to group NAME."""
    group = _get(name)
    provider = get_provider(slug)
    mapping = db.session.scalar(select(GroupMapping).where(GroupMapping.group_id == group.id,
                                                           GroupMapping.provider_id == provider.id,
                                                           GroupMapping.external_id == external_id))
    if mapping is None:
        raise click.ClickException(f"{group.name} has no mapping of group {external_id!r} of {provider.slug}. "
                                   "Nothing was changed.")
    _change(service.remove_mapping, mapping, actor=CLI_ACTOR)
    click.echo(f"Unmapped group {external_id} of {provider.slug} from {group.name}.")
