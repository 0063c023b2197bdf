"""The ``flask --app wsgi ...`` commands for automation, one module a command group: users (and their
identity-provider permissions), providers, audit, the first-run setup link, the OpenID provider's signing keys,
the applications that use it and groups. Errors exit non-zero with a one-line message and change nothing."""
from ..validation import guard_cli
from .apps import apps_cli
from .audit import audit_cli
from .groups import groups_cli
from .keys import keys_cli
from .providers import providers_cli
from .setup import setup_link
from .users import users_cli


def init_app(app):
    app.cli.add_command(users_cli)
    app.cli.add_command(audit_cli)
    app.cli.add_command(setup_link)
    app.cli.add_command(providers_cli)
    app.cli.add_command(keys_cli)
    app.cli.add_command(apps_cli)
    app.cli.add_command(groups_cli)
    guard_cli(app.cli)
