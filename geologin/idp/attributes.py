"""What an identity provider says about a person besides who they are: their groups there and named
attributes (DHIS2 roles, org units). Whatever a plugin hands over is cleaned and bounded here, then stored on
the person's binding to that provider, replacing what the previous login through it said."""
import json
import re
from dataclasses import dataclass

from sqlalchemy import select

from ..extensions import db
from ..groups import membership
from ..models import ExternalIdentity, utcnow

MAX_GROUPS = 500
MAX_ATTRIBUTES = 20  # distinct attribute names
MAX_VALUES = 500  # values of one attribute
MAX_ID = 255
MAX_NAME = 255
MAX_PATH = 1000
ATTRIBUTE_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
# Every control character, tab and newlines included: a group's name is one line.
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


@dataclass(frozen=True)
class Seen:
    """The cleaned groups and attributes of one login, and remarks for the audit log on what was dropped."""

    groups: list
    attributes: dict
    remarks: list


def clean(identity):
    """The groups and attributes of ``identity`` as plain, bounded data: strings only, no control
    characters, ids of at most MAX_ID characters, at most MAX_GROUPS groups and MAX_VALUES values per
    attribute, duplicates (same id) once. Never raises, whatever the plugin or the server sent."""
    remarks = [str(remark)[:300] for remark in _sequence(getattr(identity, "remarks", ()))[:5]]
    groups, dropped = _values(getattr(identity, "groups", ()), MAX_GROUPS, with_path=False)
    if dropped:
        remarks.append(f"groups: {dropped} unusable or beyond {MAX_GROUPS} left out")
    attributes = {}
    given = getattr(identity, "attributes", None)
    items = list(given.items()) if isinstance(given, dict) or hasattr(given, "items") else []
    for name, values in items:
        if not isinstance(name, str) or not ATTRIBUTE_NAME.fullmatch(name):
            remarks.append(f"attribute {str(name)[:40]!r} left out: not a lowercase name")
            continue
        if len(attributes) == MAX_ATTRIBUTES:
            remarks.append(f"attributes beyond {MAX_ATTRIBUTES} left out")
            break
        attributes[name], dropped = _values(values, MAX_VALUES, with_path=True)
        if dropped:
            remarks.append(f"{name}: {dropped} unusable or beyond {MAX_VALUES} left out")
    return Seen(groups, attributes, remarks)


RAW_DEPTH = 6
RAW_ITEMS = 200  # keys of one object, items of one list
RAW_TEXT = 2000
RAW_TOTAL = 64 * 1024  # characters of the whole answer as JSON
RAW_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # newlines and tabs may stay in a value
# What a plugin must never pass on, taken out whatever it does (checklist: no token in what is shown).
RAW_SECRET_KEYS = frozenset({"access_token", "refresh_token", "id_token_hint", "code", "client_secret",
                             "password", "nonce", "at_hash", "c_hash", "authorization"})


def clean_raw(identity):
    """What the provider answered about the person (``Identity.raw``) as plain JSON data for the
    administrator's Test login: strings, numbers, booleans, lists and objects only, at most RAW_DEPTH deep,
    RAW_ITEMS per level, RAW_TEXT characters a string, token-like keys left out, and the whole cut to
    RAW_TOTAL characters of JSON. Never raises."""
    given = getattr(identity, "raw", None)
    cleaned = _raw_value(dict(given) if hasattr(given, "items") else {}, 0)
    if len(json.dumps(cleaned, ensure_ascii=False)) <= RAW_TOTAL:
        return cleaned
    kept = {}
    for key, value in cleaned.items():  # whole sources while they fit, then a note
        if len(json.dumps({**kept, key: value}, ensure_ascii=False)) > RAW_TOTAL:
            kept[key] = f"(left out: more than {RAW_TOTAL} characters)"
        else:
            kept[key] = value
    return kept


def _raw_value(value, depth):
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if isinstance(value, str):
        return RAW_CONTROL.sub("", value)[:RAW_TEXT]
    if depth >= RAW_DEPTH:
        return "…"
    if hasattr(value, "items"):
        return {CONTROL.sub("", str(key))[:MAX_NAME]: _raw_value(item, depth + 1)
                for key, item in list(value.items())[:RAW_ITEMS]
                if str(key).lower() not in RAW_SECRET_KEYS}
    if isinstance(value, (list, tuple)):
        return [_raw_value(item, depth + 1) for item in value[:RAW_ITEMS]]
    return str(type(value).__name__)


def _sequence(value):
    if isinstance(value, (str, bytes)) or value is None:
        return [value] if isinstance(value, str) and value else []
    try:
        return list(value)
    except TypeError:
        return []


def _values(given, limit, *, with_path):
    """(cleaned values, how many were dropped) from a sequence of Group/Attribute-like objects."""
    kept, ids, dropped = [], set(), 0
    values = _sequence(given)
    for value in values[:10 * limit]:
        ident = _text(getattr(value, "id", None), MAX_ID)
        if ident in ids:  # the same value twice: once is enough
            continue
        if not ident or len(kept) == limit:
            dropped += 1
            continue
        ids.add(ident)
        item = {"id": ident, "name": _text(getattr(value, "name", None), MAX_NAME) or ident}
        path = _text(getattr(value, "path", None), MAX_PATH) if with_path else None
        if path:
            item["path"] = path
        kept.append(item)
    return kept, dropped + max(0, len(values) - 10 * limit)


def _text(value, limit):
    """``value`` as one line of at most ``limit`` characters without control characters, or None."""
    if not isinstance(value, str):
        return None
    value = CONTROL.sub("", value).strip()
    return value[:limit] or None


def record(user, provider, seen):
    """Store ``seen`` on ``user``'s binding to ``provider`` (flushed; the caller commits). Returns whether
    the person lost a geologin group by it (the caller then sends membership.membership_changed)."""
    binding = db.session.scalar(select(ExternalIdentity).where(ExternalIdentity.provider_id == provider.id,
                                                               ExternalIdentity.user_id == user.id))
    if binding is None:
        return False
    before = membership.group_ids(user)
    binding.groups_json = json.dumps(seen.groups, ensure_ascii=False)
    binding.attributes_json = json.dumps(seen.attributes, ensure_ascii=False)
    binding.attributes_seen_at = utcnow()
    db.session.flush()
    return bool(before - membership.group_ids(user))


def as_dict(binding):
    """What ``binding`` holds of the provider's last statement: {"groups": [...], "attributes": {...},
    "seen_at": datetime or None}; stored JSON that cannot be read counts as nothing."""
    return {"groups": _load(binding.groups_json, list), "attributes": _load(binding.attributes_json, dict),
            "seen_at": binding.attributes_seen_at}


def _load(text, kind):
    try:
        value = json.loads(text) if text else kind()
    except ValueError:
        return kind()
    return value if isinstance(value, kind) else kind()
