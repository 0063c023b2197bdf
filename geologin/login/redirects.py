"""Validation of post-login and post-logout targets: only same-origin relative paths, so a crafted link
can never send a user who just logged in to another site."""
import re
from urllib.parse import unquote, urlsplit

_FORBIDDEN = re.compile(r"[\x00-\x20\x7f\\]")  # whitespace, control characters, backslashes
_CONTROL = re.compile(r"[\x00-\x1f\x7f\\]")


def safe_next(target):
    """Return ``target`` if it is a local absolute path such as ``/admin/users?page=2``, else None."""
    if not isinstance(target, str) or not target or len(target) > 2000 or _FORBIDDEN.search(target):
        return None
    decoded = target
    for _ in range(10):  # judge every percent-decoding too (%2F%2Fevil, %5Cevil), however deeply nested
        if not _is_local_path(decoded):
            return None
        once_more = unquote(decoded)
        if once_more == decoded:
            return target
        decoded = once_more
    return None  # encoded more deeply than any real link


def _is_local_path(value):
    if not value.startswith("/") or value.startswith(("//", "/\\")) or _CONTROL.search(value):
        return False
    parts = urlsplit(value)
    return not parts.scheme and not parts.netloc
