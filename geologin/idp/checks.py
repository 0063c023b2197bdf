"""A provider's connection check, one implementation for the CLI's ``providers test`` and the admin
screen's Test connection: whatever the server or the plugin does, a list of Checks, never an exception."""
import logging

from flask_babel import gettext as _

from ..encryption import SecretUnreadable
from ..providers.base import Check, LoginFailure
from .cache import plugin_object

logger = logging.getLogger("geologin.idp")


def run_checks(provider):
    """The plugin's connection test of ``provider`` (an empty list when the plugin has none)."""
    try:
        return list(plugin_object(provider).test_connection())
    except LoginFailure as failure:
        return [Check(_("Connection test"), False, failure.detail or failure.reason)]
    except SecretUnreadable as error:
        return [Check(_("Stored secret"), False, str(error))]
    except Exception as error:  # a plugin bug must not turn a test into a server error or a traceback
        logger.exception("connection test of a provider plugin failed")
        return [Check(_("Connection test"), False,
                      _("The plugin failed unexpectedly (%(error)s); details are in the server log.",
                        error=type(error).__name__))]


def all_passed(checks):
    """Whether a connection test passed: at least one check, and every one ok."""
    return bool(checks) and all(check.ok for check in checks)


def audit_summary(checks):
    """What the audit event of a test says: each check's name and whether it passed."""
    return "; ".join(f"{check.name}: {'ok' if check.ok else 'failed'}" for check in checks)
