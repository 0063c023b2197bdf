"""What every command group shares: the actor the audit trail names, reading one line of standard input,
finding a user or a provider by name, and turning a refused change into a one-line error."""
import sys

import click

from ..accounts.users import UserError
from ..extensions import db
from ..idp.cache import ProviderChangeError
from ..models import IdentityProvider, User

CLI_ACTOR = "cli"


def read_stdin_line(what):
    """First line of standard input, without its line ending (passwords and secrets may contain spaces)."""
    value = sys.stdin.readline().rstrip("\r\n")
    if not value:
        raise click.ClickException(f"No {what} on standard input.")
    return value


def get_user(name):
    user = User.by_username(name)
    if user is None:
        raise click.ClickException(f"No user named {name!r}.")
    return user


def get_provider(slug):
    provider = IdentityProvider.by_slug(slug)
    if provider is None:
        raise click.ClickException(f"No identity provider called {slug!r}.")
    return provider


def apply_change(call, *args, names=None, **kwargs):
    """Run a service call; a refused change (UserError, ProviderChangeError) rolls back and becomes one line,
    naming the options at fault through ``names`` (field -> option)."""
    try:
        return call(*args, **kwargs)
    except UserError as error:
        db.session.rollback()
        raise click.ClickException(error.message) from None
    except ProviderChangeError as error:
        db.session.rollback()
        names = names or {}
        raise click.ClickException("; ".join(f"{names.get(field, field)}: {str(message).rstrip('.')}"
                                             for field, message in error.errors.items()) + ".") from None
