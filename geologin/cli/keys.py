"""The ``flask --app wsgi keys ...`` commands: list and rotate the signing keys of geologin's OpenID provider.
Key material never leaves the database: these commands print kids, algorithms and times only."""
import json

import click
from flask.cli import AppGroup

from ..apps import keys
from ..audit.query import TIME_FORMAT
from ..extensions import db
from .common import CLI_ACTOR

keys_cli = AppGroup("keys", help="The signing keys of geologin's OpenID provider (tokens for applications).")


def _time(moment):
    return "-" if moment is None else moment.strftime(TIME_FORMAT)


@keys_cli.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
def keys_list(as_json):
    """Every signing key, oldest first: next (published, not signing yet), signing, retiring (replaced,
    published until the tokens it signed expire) or expired (deleted by the next rotation)."""
    states = keys.key_states()
    if as_json:
        click.echo(json.dumps([state.as_dict() for state in states], indent=2))
        return
    if not states:
        click.echo("No signing key yet: the first is made when geologin first signs a token, or by `keys rotate`.")
    for state in states:
        click.echo(f"{state.kid} {state.alg} {state.state} created={_time(state.created_at)} "
                   f"signs_from={_time(state.signs_from)} leaves_key_set={_time(state.leaves_at)}")


@keys_cli.command("rotate")
@click.option("--alg", type=click.Choice(keys.ALGORITHMS), default=keys.DEFAULT_ALG, show_default=True,
              help="Algorithm of the new key.")
@click.option("--grace", type=click.IntRange(0, keys.MAX_GRACE_SECONDS), default=None, metavar="SECONDS",
              help="Seconds the new key is published before it signs (default: OIDC_KEY_GRACE_SECONDS).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a sentence.")
def keys_rotate(alg, grace, as_json):
    """Make a new signing key: in the key set at once, signing after the grace period (at once if no key of
    its algorithm signs yet). Keys whose tokens have all expired are deleted."""
    try:
        state = keys.rotate(alg, grace=grace, actor=CLI_ACTOR)
    except keys.SigningKeyError as error:
        db.session.rollback()
        raise click.ClickException(str(error)) from None
    if as_json:
        click.echo(json.dumps({"kid": state.kid, "alg": state.alg, "signs_from": state.signs_from.isoformat()}))
        return
    when = "now" if state.state == keys.SIGNING else f"from {_time(state.signs_from)}"
    click.echo(f"New {state.alg} key {state.kid}: in the key set now, signs {when}.")
