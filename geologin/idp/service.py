"""Registering identity providers: creating and editing them (settings judged by their plugin, secrets
encrypted and write-only), ordering, removing, re-encrypting secrets. The admin screens and the CLI both go
through here."""
import json
import re
from urllib.parse import urlsplit

from flask import current_app
from flask_babel import gettext as _
from sqlalchemy import func, select

from .. import audit
from ..encryption import encrypt, reencrypt
from ..extensions import db
from ..login.sessions import end_sessions_via_provider
from ..groups import membership
from ..models import ExternalIdentity, IdentityProvider
from ..providers.base import SettingsContext, SettingsError
from . import proxy_paths as proxy_path_rules
from . import tokens
from .cache import (ProviderChangeError, allow_insecure, callback_url_for, forget_cache, ordered_providers,
                    provider_class, secrets_of, settings_of)

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,58}[a-z0-9])?\Z")  # \Z: "$" lets a final newline through


def _validate_common(slug, label, existing=None):
    errors = {}
    if not slug or not SLUG.match(slug):
        errors["slug"] = _("Use 1 to 60 lowercase letters, digits and dashes, e.g. moh-dhis2.")
    elif (other := IdentityProvider.by_slug(slug)) is not None and other is not existing:
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
    context = SettingsContext(allow_insecure_http=allow_insecure(), public_url=public_url,
                              callback_url=callback_url_for(slug) if public_url and slug else None)
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
    """The redirect URI an provider sends: its ``redirect_uri`` setting (a plugin-declared fixed path such as
    GeoPrism Registry's), else its own callback URL (None without PUBLIC_URL)."""
    return settings.get("redirect_uri") or callback_url_for(slug)


def _redirect_path(slug, settings):
    uri = redirect_uri_of(slug, settings)
    return urlsplit(uri).path if uri else None


def holders_of_redirect_path(path, others):
    """The providers among ``others`` whose redirect URI has ``path``."""
    return [other for other in others if _redirect_path(other.slug, settings_of(other)) == path]


def _redirect_uri_errors(slug, cleaned, existing=None):
    """A redirect URI belongs to one provider only (disabled ones included): on a shared one the callback
    could only tell the servers apart by the state, and a server without ``iss`` could be mixed up."""
    path = _redirect_path(slug, cleaned)
    if path is None:
        return {}
    others = [i for i in ordered_providers() if i is not existing and i.slug != slug]
    holders = holders_of_redirect_path(path, others)
    if not holders:
        return {}
    return {"redirect_uri": _("This redirect URI is already used by %(label)s (%(slug)s): a redirect URI may "
                              "belong to one identity provider only. Use this provider's own callback URL.",
                              label=holders[0].label, slug=holders[0].slug)}


def create_provider(type_name, *, slug, label, description="", settings=None, secrets=None, enabled=True,
                    allow_all_users=False, keep_tokens=False, actor=None):
    cls = provider_class(type_name)
    errors = _validate_common(slug, label)
    cleaned, stored, setting_errors = _clean(cls, slug, settings or {}, secrets, {})
    errors.update(setting_errors)
    if "redirect_uri" not in errors and not errors.get("slug"):
        errors.update(_redirect_uri_errors(slug, cleaned))
    if errors:
        raise ProviderChangeError(errors)
    position = (db.session.scalar(select(func.max(IdentityProvider.position))) or 0) + 1
    provider = IdentityProvider(
        slug=slug, type=type_name, label=label.strip(), description=(description or "").strip(), enabled=enabled,
        allow_all_users=allow_all_users, keep_tokens=keep_tokens, position=position, settings_json=json.dumps(cleaned, sort_keys=True),
        secrets_json=json.dumps(stored, sort_keys=True),
    )
    db.session.add(provider)
    audit.record("provider.create", target=slug, provider=slug, actor=actor, commit=False,
                 detail=f"type={type_name}")
    db.session.commit()
    return provider


def update_provider(provider, *, label=None, description=None, settings=None, secrets=None, enabled=None,
                    allow_all_users=None, groups_prefixed=None, keep_tokens=None, proxy_paths=None,
                    actor=None):
    """Apply changes; settings not given keep their value, secrets left empty keep the stored one.
    The slug never changes: it is part of the redirect URI registered at the server. ``proxy_paths``: the
    API paths the DHIS2 proxy forwards (``[]``: none)."""
    cls = provider_class(provider.type)
    new_label = provider.label if label is None else label
    errors = _validate_common(provider.slug, new_label, existing=provider)
    if settings or secrets:
        merged = {**settings_of(provider), **(settings or {})}
        cleaned, stored, setting_errors = _clean(cls, provider.slug, merged, secrets, secrets_of(provider))
        errors.update(setting_errors)
    else:  # enabling, disabling or relabelling never re-judges settings saved under older rules
        cleaned, stored = settings_of(provider), secrets_of(provider)
    enabling = enabled and not provider.enabled
    if "redirect_uri" not in errors and (settings or enabling):  # enabling catches pairs saved before the rule
        errors.update(_redirect_uri_errors(provider.slug, cleaned, existing=provider))
    paths = None
    if proxy_paths is not None:
        try:
            paths = proxy_path_rules.checked(proxy_paths)
        except proxy_path_rules.ProxyPathError as error:
            errors["proxy_paths"] = str(error)
    if errors:
        raise ProviderChangeError(errors)
    before = {"label": provider.label, "description": provider.description,
              "enabled": provider.enabled, "allow_all_users": provider.allow_all_users,
              "groups_prefixed": provider.groups_prefixed, "keep_tokens": provider.keep_tokens}
    after = {"label": new_label.strip(),
             "description": provider.description if description is None else description.strip(),
             "enabled": provider.enabled if enabled is None else enabled,
             "allow_all_users": provider.allow_all_users if allow_all_users is None else allow_all_users,
             "groups_prefixed": provider.groups_prefixed if groups_prefixed is None else groups_prefixed,
             "keep_tokens": provider.keep_tokens if keep_tokens is None else keep_tokens}
    changed = [k for k in before if before[k] != after[k]]
    old_settings = settings_of(provider)
    changed += sorted(k for k in set(old_settings) | set(cleaned) if old_settings.get(k) != cleaned.get(k))
    changed += sorted(name for name, value in (secrets or {}).items() if value)  # names only, never values
    if paths is not None and paths != proxy_path_rules.of(provider):
        provider.proxy_paths_json = json.dumps(paths)
        changed.append("proxy_paths")
    if not changed:
        return []
    if before["enabled"] and not after["enabled"]:
        end_sessions_via_provider(provider.slug, commit=False)
    if before["keep_tokens"] and not after["keep_tokens"]:
        tokens.forget_at_provider(provider, actor=actor)
    for key, value in after.items():
        setattr(provider, key, value)
    provider.settings_json = json.dumps(cleaned, sort_keys=True)
    provider.secrets_json = json.dumps(stored, sort_keys=True)
    audit.record("provider.update", target=provider.slug, provider=provider.slug, actor=actor, commit=False,
                 detail="changed: " + ", ".join(changed))
    losing_prefixed = before["groups_prefixed"] and not after["groups_prefixed"]
    bound = set(db.session.scalars(select(ExternalIdentity.user_id).where(
        ExternalIdentity.provider_id == provider.id))) if losing_prefixed else set()
    db.session.commit()
    forget_cache(provider)
    if bound:  # their "<slug>:<name>" groups are gone: applications end what needed them
        membership.membership_changed.send(None, user_ids=bound)
    return changed


def delete_provider(provider, *, actor=None):
    slug = provider.slug
    forget_cache(provider)
    end_sessions_via_provider(slug, commit=False)
    db.session.delete(provider)
    audit.record("provider.delete", target=slug, provider=slug, actor=actor, commit=False)
    db.session.commit()


def move_provider(provider, offset, *, actor=None):
    """Move ``provider`` up (-1) or down (+1) in the order users see."""
    order = ordered_providers()
    index = order.index(provider)
    target = index + offset
    if 0 <= target < len(order):
        order[index], order[target] = order[target], order[index]
        for position, item in enumerate(order, start=1):
            item.position = position
        audit.record("provider.reorder", target=provider.slug, provider=provider.slug, actor=actor, commit=False,
                     detail="order: " + ", ".join(i.slug for i in order))
        db.session.commit()


def rotate_secrets():
    """Re-encrypt every stored secret under the first (newest) encryption key; returns how many."""
    count = 0
    for provider in ordered_providers():
        stored = {name: reencrypt(token) for name, token in secrets_of(provider).items()}
        count += len(stored)
        provider.secrets_json = json.dumps(stored, sort_keys=True)
    db.session.commit()
    return count


