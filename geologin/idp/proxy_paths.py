"""Which DHIS2 API paths the read-only proxy forwards for a provider (docs/dhis2-tokens.md): an allow-list of
patterns an administrator sets, "me" (that path exactly) or "me/*" (anything under it)."""
import json
import re

from flask_babel import gettext as _

DEFAULT = ("me", "me/*", "organisationUnits", "organisationUnits/*", "system/info")
MAX_PATTERNS = 50
_SEGMENT = r"[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}"
PATTERN = re.compile(rf"{_SEGMENT}(/{_SEGMENT})*(/\*)?\Z")


class ProxyPathError(ValueError):
    """A pattern that is not one; the message says what a pattern looks like."""


def of(provider):
    """The provider's patterns: those set, or the defaults."""
    try:
        value = json.loads(provider.proxy_paths_json) if provider.proxy_paths_json else None
    except ValueError:
        value = None
    if not isinstance(value, list):
        return list(DEFAULT)
    return [item for item in value if isinstance(item, str)]


def checked(patterns):
    """``patterns`` cleaned (without a leading "/" or "api/", duplicates dropped), or ProxyPathError."""
    cleaned = []
    for pattern in patterns or ():
        text = pattern.strip().lstrip("/") if isinstance(pattern, str) else ""
        if text.startswith("api/"):
            text = text[4:]
        if not PATTERN.match(text) or ".." in text.split("/"):
            raise ProxyPathError(_("“%(path)s” is not an API path: give it as after /api/, such as me, "
                                   "organisationUnits or organisationUnits/* (everything under it).",
                                   path=str(pattern)[:100]))
        if text not in cleaned:
            cleaned.append(text)
    if len(cleaned) > MAX_PATTERNS:
        raise ProxyPathError(_("At most %(count)d proxy paths per provider.", count=MAX_PATTERNS))
    return cleaned


def allows(patterns, path):
    """Whether ``path`` (after /api/, already refused if it holds "..", encoded slashes or a scheme) is
    covered by one of ``patterns``."""
    for pattern in patterns:
        if pattern.endswith("/*"):
            if path.startswith(pattern[:-1]) and len(path) > len(pattern) - 1:
                return True
        elif path == pattern:
            return True
    return False
