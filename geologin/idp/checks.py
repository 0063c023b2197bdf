"""A provider's connection check, one implementation for the CLI's ``providers test`` and the admin
screen's Test connection: whatever the server or the plugin does, a list of Checks, never an exception."""
import logging

from flask_babel import gettext as _

from sqlalchemy import select

from ..encryption import SecretUnreadable
from ..extensions import db
from ..models import KeptToken
from ..providers.base import Check, LoginFailure
from .cache import plugin_object

logger = logging.getLogger("geologin.idp")


def run_checks(provider):
    """The plugin's connection test of ``provider`` (an empty list when the plugin has none), and when the
    provider keeps tokens, whether its client may refresh them."""
    try:
        plugin = plugin_object(provider)
        checks = list(plugin.test_connection())
        if checks and provider.keep_tokens and all(check.ok for check in checks):
            checks.append(plugin.check_refresh_grant() or _refresh_seen_at_logins(provider))
        return checks
    except LoginFailure as failure:
        return [Check(_("Connection test"), False, failure.detail or failure.reason)]
    except SecretUnreadable as error:
        return [Check(_("Stored secret"), False, str(error))]
    except Exception as error:  # a plugin bug must not turn a test into a server error or a traceback
        logger.exception("connection test of a provider plugin failed")
        return [Check(_("Connection test"), False,
                      _("The plugin failed unexpectedly (%(error)s); details are in the server log.",
                        error=type(error).__name__))]


def _refresh_seen_at_logins(provider):
    """When the server does not say whether the client has the refresh_token grant: whether the newest kept
    tokens from this provider came with a refresh token (a client without the grant gets none)."""
    name = _("Refresh token grant")
    newest = db.session.scalar(select(KeptToken).where(KeptToken.provider_id == provider.id)
                               .order_by(KeptToken.obtained_at.desc()).limit(1))
    if newest is None:
        return Check(name, None, _("Not checked: the server does not tell geologin whether its client has the "
                                   "refresh_token grant. After the next login through this provider, this test "
                                   "says whether the login brought a refresh token."))
    if newest.refresh_token is None:
        return Check(name, False, _("The last login through this provider brought no refresh token: allow the "
                                    "refresh_token grant on geologin's client at the server, or kept tokens "
                                    "cannot be refreshed when they expire."))
    return Check(name, True, _("The last login through this provider brought a refresh token."))


def all_passed(checks):
    """Whether a connection test passed: at least one check, and none failed (a line the server does not
    let geologin check does not fail the test)."""
    return bool(checks) and all(check.ok is not False for check in checks)


def outcome(check):
    """A check's result as one word: ok, failed or not checked."""
    return "not checked" if check.ok is None else "ok" if check.ok else "failed"


def audit_summary(checks):
    """What the audit event of a test says: each check's name and whether it passed."""
    return "; ".join(f"{check.name}: {outcome(check)}" for check in checks)
