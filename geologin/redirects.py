"""Validation of post-login and post-logout targets: only same-origin relative paths, so a crafted link
can never send a user who just logged in to another site."""
import re
from urllib.parse import unquote, urlsplit

_FORBIDDEN = re.compile(r"[\x00-\x20\x7f\\]")


def safe_next(target):
    """Return ``target`` if it is a local absolute path such as ``/admin/users?page=2``, else None."""
    if not isinstance(target, str) or not target or len(target) > 2000:
        return None
    decoded = target
    for _ in range(3):  # also judge what a browser sees after percent-decoding (%2F%2Fevil, %5Cevil)
        if not _is_local_path(decoded):
            return None
        decoded = unquote(decoded)
    return target if _is_local_path(decoded) else None


def _is_local_path(value):
    if not value.startswith("/") or value.startswith("//") or _FORBIDDEN.search(value):
        return False
    parts = urlsplit(value)
    return not parts.scheme and not parts.netloc
