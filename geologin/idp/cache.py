"""The usable identity providers, cached per process, and building the plugin object for one provider
(its settings, its decrypted secrets on demand, its HTTP client limited to its own hosts)."""
import json
import threading

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import select, text

from ..encryption import decrypt
from ..extensions import db
from ..models import CacheVersion, IdentityProvider
from ..providers.base import InstanceView
from ..providers.http import HttpClient, per_server_cap

_caches = {}
_caches_lock = threading.Lock()


class ProviderChangeError(ValueError):
    """A change to an provider was refused; ``errors`` maps field names to messages."""

    def __init__(self, errors):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


def plugin_registry():
    """The installed plugins (a PluginRegistry: plugin classes by type name)."""
    return current_app.extensions["geologin.plugins"]


def provider_class(type_name):
    cls = plugin_registry().get(type_name)
    if cls is None:
        raise ProviderChangeError({"type": _("No installed provider plugin is called %(type)s.", type=type_name)})
    return cls


def ordered_providers(enabled_only=False):
    statement = select(IdentityProvider).order_by(IdentityProvider.position, IdentityProvider.id)
    if enabled_only:
        statement = statement.where(IdentityProvider.enabled)
    return list(db.session.scalars(statement))


def is_usable(provider):
    """Enabled, and its plugin is installed: people may log in through it."""
    return provider.enabled and plugin_registry().get(provider.type) is not None


def usable_providers():
    """Enabled providers whose plugin is installed, in the admins' order (read-only copies)."""
    return list(usable().providers)


# -- the usable providers, cached per process -----------------------------------------------------------------
# The login page, the start and the callback of every login read the enabled providers. Each process keeps
# a read-only copy, valid while the 'providers' token in cache_versions is unchanged: database triggers set a
# new token in the same transaction as any write to provider_instances (migration 0004), from whichever node,
# command or SQL statement. Every request reads the token first (one primary-key lookup), so a provider
# disabled, removed, relabelled or reordered anywhere is seen by the next request everywhere. Without a token
# row (a database where the triggers could not be created), nothing is cached.
_TOKEN = text(f"SELECT token FROM {CacheVersion.__tablename__} WHERE name = 'providers'")
_COLUMNS = tuple(column.key for column in IdentityProvider.__table__.columns)
_EXTENSION_KEY = "geologin.usable_providers"


class UsableProvider:
    """A read-only copy of an enabled provider_instances row whose plugin is installed: the same attributes
    as a IdentityProvider, shared by the requests of one process and never attached to a database session."""

    __slots__ = _COLUMNS

    def __init__(self, row):
        for name in _COLUMNS:
            object.__setattr__(self, name, getattr(row, name))

    def __setattr__(self, name, value):
        raise AttributeError("a cached provider is read-only; load the IdentityProvider to change it")

    def __repr__(self):
        return f"<UsableProvider {self.slug!r} ({self.type})>"


class Usable:
    """The usable providers at one token: in order, by slug, by id and grouped by plugin type, plus the
    rendered login widgets (external.login_widgets) that depend only on them."""

    def __init__(self, token, rows):
        self.token = token
        self.providers = tuple(UsableProvider(row) for row in rows)
        self.by_slug = {i.slug: i for i in self.providers}
        self.by_id = {i.id: i for i in self.providers}
        self.by_type = {}
        for provider in self.providers:
            self.by_type.setdefault(provider.type, []).append(provider)
        self.widgets = {}


def usable():
    """The current usable providers (a ``Usable``): this process's copy if the token is unchanged."""
    token = db.session.connection().execute(_TOKEN).scalar()
    cached = current_app.extensions.get(_EXTENSION_KEY)
    if token is not None and cached is not None and cached.token == token:
        return cached
    fresh = Usable(token, [i for i in ordered_providers(enabled_only=True) if is_usable(i)])
    if token is not None:
        current_app.extensions[_EXTENSION_KEY] = fresh
    return fresh


def usable_by_slug(slug):
    """The usable provider called ``slug`` (a read-only copy), or None if there is none or it is not usable."""
    return usable().by_slug.get(slug) if slug else None


def usable_by_id(provider_id):
    return usable().by_id.get(provider_id)


def settings_of(provider):
    return json.loads(provider.settings_json or "{}")


def secrets_of(provider):
    return json.loads(provider.secrets_json or "{}")


def has_secret(provider, name):
    return name in secrets_of(provider)


def allow_insecure():
    return current_app.config.get("ALLOW_INSECURE_HTTP")


# -- building the plugin object ----------------------------------------------------------------------
def callback_url(provider):
    """The provider's own callback URL, built from PUBLIC_URL only, never from request headers."""
    return callback_url_for(provider.slug)


def post_logout_url():
    """Where identity servers send the browser back after logging it out there: the login page."""
    return _public_url_for("auth.login")


def callback_url_for(slug):
    return _public_url_for("external.callback", slug=slug)


def _public_url_for(endpoint, **values):
    """PUBLIC_URL + the endpoint's path, or None without PUBLIC_URL. Built from the URL map without a
    request, so the CLI gets the same answer as a web page, and never from request headers."""
    public_url = current_app.config.get("PUBLIC_URL")
    if not public_url:
        return None
    return public_url + current_app.url_map.bind("localhost").build(endpoint, values)


def _cache_for(provider):
    key = (provider.id, provider.updated_at)
    with _caches_lock:
        for stale in [k for k in _caches if k[0] == provider.id and k != key]:
            del _caches[stale]
        return _caches.setdefault(key, {})


def forget_cache(provider):
    with _caches_lock:
        for stale in [k for k in _caches if k[0] == provider.id]:
            del _caches[stale]


def plugin_object(provider):
    """The plugin object for ``provider``, with its HTTP client limited to the provider's own hosts."""
    cls = provider_class(provider.type)
    secrets = secrets_of(provider)
    view = InstanceView(slug=provider.slug, label=provider.label, settings=settings_of(provider),
                        secret_reader=lambda name: decrypt(secrets[name]) if name in secrets else None)
    config = current_app.config
    plugin = cls(view, http=None, default_redirect_uri=callback_url(provider),
                   allow_insecure_http=allow_insecure(), cache=_cache_for(provider),
                   post_logout_redirect_uri=post_logout_url())
    plugin.http = HttpClient(plugin.allowed_hosts(), connect_timeout=config["HTTP_CONNECT_TIMEOUT"],
                               read_timeout=config["HTTP_READ_TIMEOUT"],
                               total_timeout=config["HTTP_TOTAL_TIMEOUT"],
                               max_bytes=config["HTTP_MAX_RESPONSE_BYTES"],
                               max_concurrent=per_server_cap(config),
                               queue_timeout=config["HTTP_QUEUE_TIMEOUT"])
    return plugin
