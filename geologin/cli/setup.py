"""The ``setup-link`` command: the one-time link that creates the first administrator."""
import os

import click
from flask import current_app
from flask.cli import with_appcontext

from .. import audit
from ..accounts import firstrun
from .common import CLI_ACTOR


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
