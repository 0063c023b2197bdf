"""Registered identity-provider instances: creating and editing them (secrets encrypted, write-only),
ordering, per-user permissions and bound identities, and building the plugin object for one instance.
The admin screens and the CLI both go through here."""
import json
import re
import threading
from urllib.parse import urlsplit

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import delete, func, select, text

from . import audit
from .encryption import decrypt, encrypt, reencrypt
from .extensions import db
from .models import CacheVersion, ExternalIdentity, ProviderInstance, User, UserProviderPermission
from .providers.base import InstanceView, SettingsContext, SettingsError
from .providers.http import HttpClient, per_server_cap
from .sessions import end_sessions_via_provider, end_user_sessions_via

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,58}[a-z0-9])?\Z")  # \Z: "$" lets a final newline through
_caches = {}
_caches_lock = threading.Lock()


class InstanceError(ValueError):
    """A change to an instance was refused; ``errors`` maps field names to messages."""

    def __init__(self, errors):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def plugins():
    return current_app.extensions["geologin.plugins"]


def provider_class(type_name):
    cls = plugins().get(type_name)
    if cls is None:
        raise InstanceError({"type": _("No installed provider plugin is called %(type)s.", type=type_name)})
    return cls


def ordered_instances(enabled_only=False):
    statement = select(ProviderInstance).order_by(ProviderInstance.position, ProviderInstance.id)
    if enabled_only:
        statement = statement.where(ProviderInstance.enabled)
    return list(db.session.scalars(statement))


def is_usable(instance):
    """Enabled, and its plugin is installed: people may log in through it."""
    return instance.enabled and plugins().get(instance.type) is not None


def usable_instances():
    """Enabled instances whose plugin is installed, in the admins' order (read-only copies)."""
    return list(usable().instances)


# -- the usable instances, cached per process -----------------------------------------------------------------
# The login page, the start and the callback of every login read the enabled instances. Each process keeps
# a read-only copy, valid while the 'providers' token in cache_versions is unchanged: database triggers set a
# new token in the same transaction as any write to provider_instances (migration 0004), from whichever node,
# command or SQL statement. Every request reads the token first (one primary-key lookup), so a provider
# disabled, removed, relabelled or reordered anywhere is seen by the next request everywhere. Without a token
# row (a database where the triggers could not be created), nothing is cached.
_TOKEN = text(f"SELECT token FROM {CacheVersion.__tablename__} WHERE name = 'providers'")
_COLUMNS = tuple(column.key for column in ProviderInstance.__table__.columns)
_EXTENSION_KEY = "geologin.usable_instances"


class UsableInstance:
    """A read-only copy of an enabled provider_instances row whose plugin is installed: the same attributes
    as a ProviderInstance, shared by the requests of one process and never attached to a database session."""

    __slots__ = _COLUMNS

    def __init__(self, row):
        for name in _COLUMNS:
            object.__setattr__(self, name, getattr(row, name))

    def __setattr__(self, name, value):
        raise AttributeError("a cached provider instance is read-only; load the ProviderInstance to change it")

    def __repr__(self):
        return f"<UsableInstance {self.slug!r} ({self.type})>"


class Usable:
    """The usable instances at one token: in order, by slug, by id and grouped by plugin type, plus the
    rendered login widgets (external.login_widgets) that depend only on them."""

    def __init__(self, token, rows):
        self.token = token
        self.instances = tuple(UsableInstance(row) for row in rows)
        self.by_slug = {i.slug: i for i in self.instances}
        self.by_id = {i.id: i for i in self.instances}
        self.by_type = {}
        for instance in self.instances:
            self.by_type.setdefault(instance.type, []).append(instance)
        self.widgets = {}


def usable():
    """The current usable instances (a ``Usable``): this process's copy if the token is unchanged."""
    token = db.session.connection().execute(_TOKEN).scalar()
    cached = current_app.extensions.get(_EXTENSION_KEY)
    if token is not None and cached is not None and cached.token == token:
        return cached
    fresh = Usable(token, [i for i in ordered_instances(enabled_only=True) if is_usable(i)])
    if token is not None:
        current_app.extensions[_EXTENSION_KEY] = fresh
    return fresh


def usable_by_slug(slug):
    """The usable instance called ``slug`` (a read-only copy), or None if there is none or it is not usable."""
    return usable().by_slug.get(slug) if slug else None


def usable_by_id(instance_id):
    return usable().by_id.get(instance_id)


def settings_of(instance):
    return json.loads(instance.settings_json or "{}")


def _secrets_of(instance):
    return json.loads(instance.secrets_json or "{}")


def has_secret(instance, name):
    return name in _secrets_of(instance)


def _allow_insecure():
    return bool(current_app.config.get("ALLOW_INSECURE_HTTP"))


def _validate_common(slug, label, existing=None):
    errors = {}
    if not slug or not SLUG.match(slug):
        errors["slug"] = _("Use 1 to 60 lowercase letters, digits and dashes, e.g. moh-dhis2.")
    elif (other := ProviderInstance.by_slug(slug)) is not None and other is not existing:
        errors["slug"] = _("Another identity provider already uses %(slug)s.", slug=slug)
    if not (label or "").strip():
        errors["label"] = _("Enter the label users will see.")
    elif len(label.strip()) > 120:
        errors["label"] = _("A label has at most 120 characters.")
    return errors


def _clean(cls, slug, settings, secrets, existing_secrets):
    """Validate plugin settings and merge secrets (an empty new secret keeps the stored one)."""
    errors = {}
    public_url = current_app.config.get("PUBLIC_URL")
    context = SettingsContext(allow_insecure_http=_allow_insecure(), public_url=public_url,
                              callback_url=_callback_url_for(slug) if public_url and slug else None)
    try:
        cleaned = cls.clean_settings(settings, context)
    except SettingsError as error:
        errors.update(error.errors)
        cleaned = {}
    stored = dict(existing_secrets)
    for setting in cls.settings:
        if not setting.secret:
            continue
        value = (secrets or {}).get(setting.name)
        if value:
            if len(value) > 4096:
                errors[setting.name] = _("This secret is too long.")
            else:
                stored[setting.name] = encrypt(value)
        elif setting.required and setting.name not in stored:
            errors[setting.name] = _("This setting is required.")
    return cleaned, stored, errors


def redirect_uri_of(slug, settings):
    """The redirect URI an instance sends: its ``redirect_uri`` setting (a plugin-declared fixed path such as
    GeoPrism Registry's), else its own callback URL (None without PUBLIC_URL)."""
    return settings.get("redirect_uri") or _callback_url_for(slug)


def _redirect_path(slug, settings):
    uri = redirect_uri_of(slug, settings)
    return urlsplit(uri).path if uri else None


def holders_of_redirect_path(path, others):
    """The instances among ``others`` whose redirect URI has ``path``."""
    return [other for other in others if _redirect_path(other.slug, settings_of(other)) == path]


def _redirect_uri_errors(slug, cleaned, existing=None):
    """A redirect URI belongs to one instance only (disabled ones included): on a shared one the callback
    could only tell the servers apart by the state, and a server without ``iss`` could be mixed up."""
    path = _redirect_path(slug, cleaned)
    if path is None:
        return {}
    others = [i for i in ordered_instances() if i is not existing and i.slug != slug]
    holders = holders_of_redirect_path(path, others)
    if not holders:
        return {}
    return {"redirect_uri": _("This redirect URI is already used by %(label)s (%(slug)s): a redirect URI may "
                              "belong to one identity provider only. Use this provider's own callback URL.",
                              label=holders[0].label, slug=holders[0].slug)}


def create_instance(type_name, *, slug, label, description="", settings=None, secrets=None, enabled=True,
                    allow_all_users=False, actor=None):
    cls = provider_class(type_name)
    errors = _validate_common(slug, label)
    cleaned, stored, setting_errors = _clean(cls, slug, settings or {}, secrets, {})
    errors.update(setting_errors)
    if "redirect_uri" not in errors and not errors.get("slug"):
        errors.update(_redirect_uri_errors(slug, cleaned))
    if errors:
        raise InstanceError(errors)
    position = (db.session.scalar(select(func.max(ProviderInstance.position))) or 0) + 1
    instance = ProviderInstance(
        slug=slug, type=type_name, label=label.strip(), description=(description or "").strip(), enabled=enabled,
        allow_all_users=allow_all_users, position=position, settings_json=json.dumps(cleaned, sort_keys=True),
        secrets_json=json.dumps(stored, sort_keys=True),
    )
    db.session.add(instance)
    audit.record("provider.create", target=slug, provider=slug, actor=actor, commit=False,
                 detail=f"type={type_name}")
    db.session.commit()
    return instance


def update_instance(instance, *, label=None, description=None, settings=None, secrets=None, enabled=None,
                    allow_all_users=None, actor=None):
    """Apply changes; settings not given keep their value, secrets left empty keep the stored one.
    The slug never changes: it is part of the redirect URI registered at the server."""
    cls = provider_class(instance.type)
    new_label = instance.label if label is None else label
    errors = _validate_common(instance.slug, new_label, existing=instance)
    if settings or secrets:
        merged = {**settings_of(instance), **(settings or {})}
        cleaned, stored, setting_errors = _clean(cls, instance.slug, merged, secrets, _secrets_of(instance))
        errors.update(setting_errors)
    else:  # enabling, disabling or relabelling never re-judges settings saved under older rules
        cleaned, stored = settings_of(instance), _secrets_of(instance)
    enabling = enabled and not instance.enabled
    if "redirect_uri" not in errors and (settings or enabling):  # enabling catches pairs saved before the rule
        errors.update(_redirect_uri_errors(instance.slug, cleaned, existing=instance))
    if errors:
        raise InstanceError(errors)
    before = {"label": instance.label, "description": instance.description,
              "enabled": instance.enabled, "allow_all_users": instance.allow_all_users}
    after = {"label": new_label.strip(),
             "description": instance.description if description is None else description.strip(),
             "enabled": instance.enabled if enabled is None else enabled,
             "allow_all_users": instance.allow_all_users if allow_all_users is None else allow_all_users}
    changed = [k for k in before if before[k] != after[k]]
    old_settings = settings_of(instance)
    changed += sorted(k for k in set(old_settings) | set(cleaned) if old_settings.get(k) != cleaned.get(k))
    changed += sorted(name for name, value in (secrets or {}).items() if value)  # names only, never values
    if not changed:
        return []
    if before["enabled"] and not after["enabled"]:
        end_sessions_via_provider(instance.slug, commit=False)
    for key, value in after.items():
        setattr(instance, key, value)
    instance.settings_json = json.dumps(cleaned, sort_keys=True)
    instance.secrets_json = json.dumps(stored, sort_keys=True)
    audit.record("provider.update", target=instance.slug, provider=instance.slug, actor=actor, commit=False,
                 detail="changed: " + ", ".join(changed))
    db.session.commit()
    _forget_cache(instance)
    return changed


def delete_instance(instance, *, actor=None):
    slug = instance.slug
    _forget_cache(instance)
    end_sessions_via_provider(slug, commit=False)
    db.session.delete(instance)
    audit.record("provider.delete", target=slug, provider=slug, actor=actor, commit=False)
    db.session.commit()


def move_instance(instance, offset, *, actor=None):
    """Move ``instance`` up (-1) or down (+1) in the order users see."""
    order = ordered_instances()
    index = order.index(instance)
    target = index + offset
    if 0 <= target < len(order):
        order[index], order[target] = order[target], order[index]
        for position, item in enumerate(order, start=1):
            item.position = position
        audit.record("provider.reorder", target=instance.slug, provider=instance.slug, actor=actor, commit=False,
                     detail="order: " + ", ".join(i.slug for i in order))
        db.session.commit()


def rotate_secrets():
    """Re-encrypt every stored secret under the first (newest) encryption key; returns how many."""
    count = 0
    for instance in ordered_instances():
        stored = {name: reencrypt(token) for name, token in _secrets_of(instance).items()}
        count += len(stored)
        instance.secrets_json = json.dumps(stored, sort_keys=True)
    db.session.commit()
    return count


# -- building the plugin object ----------------------------------------------------------------------
def callback_url(instance):
    """The instance's own callback URL, built from PUBLIC_URL only, never from request headers."""
    return _callback_url_for(instance.slug)


def post_logout_url():
    """Where identity servers send the browser back after logging it out there: the login page."""
    return _public_url_for("auth.login")


def _callback_url_for(slug):
    return _public_url_for("external.callback", slug=slug)


def _public_url_for(endpoint, **values):
    """PUBLIC_URL + the endpoint's path, or None without PUBLIC_URL. Built from the URL map without a
    request, so the CLI gets the same answer as a web page, and never from request headers."""
    public_url = current_app.config.get("PUBLIC_URL")
    if not public_url:
        return None
    return public_url + current_app.url_map.bind("localhost").build(endpoint, values)


def _cache_for(instance):
    key = (instance.id, instance.updated_at)
    with _caches_lock:
        for stale in [k for k in _caches if k[0] == instance.id and k != key]:
            del _caches[stale]
        return _caches.setdefault(key, {})


def _forget_cache(instance):
    with _caches_lock:
        for stale in [k for k in _caches if k[0] == instance.id]:
            del _caches[stale]


def build_provider(instance):
    """The plugin object for ``instance``, with its HTTP client limited to the instance's own hosts."""
    cls = provider_class(instance.type)
    secrets = _secrets_of(instance)
    view = InstanceView(slug=instance.slug, label=instance.label, settings=settings_of(instance),
                        secret_reader=lambda name: decrypt(secrets[name]) if name in secrets else None)
    config = current_app.config
    provider = cls(view, http=None, default_redirect_uri=callback_url(instance),
                   allow_insecure_http=_allow_insecure(), cache=_cache_for(instance),
                   post_logout_redirect_uri=post_logout_url())
    provider.http = HttpClient(provider.allowed_hosts(), connect_timeout=config["HTTP_CONNECT_TIMEOUT"],
                               read_timeout=config["HTTP_READ_TIMEOUT"],
                               total_timeout=config["HTTP_TOTAL_TIMEOUT"],
                               max_bytes=config["HTTP_MAX_RESPONSE_BYTES"],
                               max_concurrent=per_server_cap(config),
                               queue_timeout=config["HTTP_QUEUE_TIMEOUT"])
    return provider


# -- who may use an instance ---------------------------------------------------------------------------
def is_allowed(user, instance):
    """Whether ``user`` may log in through ``instance``. "Every active user" never covers an administrator:
    whoever runs the server could name an account like a local administrator (issue 14 item 3)."""
    if instance.allow_all_users and not user.is_admin:
        return True
    return db.session.get(UserProviderPermission, (user.id, instance.id)) is not None


def allowed_instance_ids(user):
    return set(db.session.scalars(select(UserProviderPermission.provider_id)
                                  .where(UserProviderPermission.user_id == user.id)))


def allow(users, instance, *, actor=None):
    """Let ``users`` log in through ``instance``; returns the usernames newly allowed."""
    already = set(db.session.scalars(select(UserProviderPermission.user_id)
                                     .where(UserProviderPermission.provider_id == instance.id)))
    added = []
    for user in users:
        if user.id not in already:
            db.session.add(UserProviderPermission(user_id=user.id, provider_id=instance.id))
            already.add(user.id)
            added.append(user.username)
    if added:
        audit.record("permission.grant", target=", ".join(added)[:255], provider=instance.slug, actor=actor,
                     commit=False, detail=f"{len(added)} user(s)")
    db.session.commit()
    return added


def disallow(users, instance, *, actor=None):
    """Withdraw the permission; sessions that came through this instance end at their next request."""
    removed = []
    for user in users:
        row = db.session.get(UserProviderPermission, (user.id, instance.id))
        if row is not None:
            db.session.delete(row)
            end_user_sessions_via(user, instance.slug, commit=False)
            removed.append(user.username)
    if removed:
        audit.record("permission.revoke", target=", ".join(removed)[:255], provider=instance.slug, actor=actor,
                     commit=False, detail=f"{len(removed)} user(s)")
    db.session.commit()
    return removed


def set_user_permissions(user, instance_ids, *, actor=None):
    """Make ``user``'s allowed instances exactly ``instance_ids`` (the user screen's checkboxes)."""
    wanted = set(instance_ids)
    current = allowed_instance_ids(user)
    instances = {i.id: i for i in ordered_instances()}
    for instance_id in wanted - current:
        if instance_id in instances:
            allow([user], instances[instance_id], actor=actor)
    for instance_id in current - wanted:
        disallow([user], instances[instance_id], actor=actor)


def allowed_users(instance):
    return list(db.session.scalars(
        select(User).join(UserProviderPermission, UserProviderPermission.user_id == User.id)
        .where(UserProviderPermission.provider_id == instance.id).order_by(User.username)))


def identities_of(user):
    return list(db.session.scalars(select(ExternalIdentity).where(ExternalIdentity.user_id == user.id)
                                   .order_by(ExternalIdentity.provider_id)))


def unlink(user, instance, *, actor=None):
    """Forget the bound external account, so the next successful login binds afresh."""
    result = db.session.execute(delete(ExternalIdentity).where(ExternalIdentity.user_id == user.id,
                                                               ExternalIdentity.provider_id == instance.id))
    if result.rowcount:
        audit.record("identity.unlink", target=user.username, provider=instance.slug, actor=actor, commit=False)
    db.session.commit()
    return bool(result.rowcount)
