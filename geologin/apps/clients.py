"""Registered applications: OpenID Connect clients and protected sites (forward-auth). Creating, changing and
removing them, their secrets and hosts, and who may sign in to each. The CLI and the admin screens both go through here, so the rules are the same in both."""
import hashlib
import hmac
import json
import re
import secrets
from urllib.parse import urlsplit

from blinker import Namespace
from flask import current_app
from flask_babel import gettext as _, lazy_gettext as _l
from sqlalchemy import delete, or_, select, update

from .. import audit
from ..config import is_development
from ..extensions import db
from ..models import (Application, ApplicationGroup, ApplicationHost, ApplicationProvider, ApplicationTokenProvider,
                      ApplicationUser, Consent,
                      ExternalIdentity, Group, IdentityProvider, OAuthToken, User, utcnow)

NAME_MAX = 120
URI_MAX = 2000
MAX_URIS = 20
_LOOPBACK_HOSTS = {"localhost", "127.0.0.1", "[::1]", "::1"}
# What check_uri names in its messages (translated, as the admin screens show them).
REDIRECT_URI = _l("Redirect URI")
POST_LOGOUT_URI = _l("Post-logout redirect URI")
BACKCHANNEL_LOGOUT_URI = _l("Back-channel logout URI")
OIDC, FORWARD_AUTH = "oidc", "forward_auth"
MAX_HOSTS = 20
# A DNS name (letters, digits, hyphens, dots) or an IPv4 address, and an optional port.
_HOST = re.compile(r"^(?=.{1,253}(:|$))[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*"
                   r"(:(6553[0-5]|655[0-2]\d|65[0-4]\d\d|6[0-4]\d{3}|[1-5]\d{4}|[1-9]\d{0,3}))?$")

# Sent with ``sids`` (the public ids of the sessions whose tokens of the application were revoked) once a
# revocation is committed; apps.logout tells the application, as it would at those sessions' logout.
tokens_revoked = Namespace().signal("tokens-revoked")


class ApplicationError(ValueError):
    """A change that geologin refuses, with a message saying what to do instead; nothing was saved.
    ``field`` names the input at fault (name, redirect_uris, post_logout_uris, backchannel_logout_uri,
    providers, users, groups, attribute_claims), so a form can show the message next to it."""

    def __init__(self, message, field=None):
        super().__init__(str(message))
        self.message = str(message)
        self.field = field


def _secret_hash(secret):
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret():
    """A client secret: 256 random bits, so a plain SHA-256 is as good as a slow hash and costs nothing."""
    return secrets.token_urlsafe(32)


def _new_client_id():
    """144 random bits; never starting with "-", which a command line would take for an option."""
    while True:
        client_id = secrets.token_urlsafe(18)
        if not client_id.startswith("-"):
            return client_id


def verify_secret(application, secret):
    """Whether ``secret`` is this confidential application's secret, compared in constant time."""
    if application.secret_hash is None or not isinstance(secret, str) or not secret:
        return False
    return hmac.compare_digest(application.secret_hash, _secret_hash(secret))


def redirect_uris(application):
    return json.loads(application.redirect_uris_json)


def post_logout_uris(application):
    return json.loads(application.post_logout_uris_json)


def host_names(application):
    return [row.host for row in application.hosts]


def normalise_host(host):
    """A host as proxies send it, compared the way DNS does (case-insensitively), without a trailing dot; None
    if it is not a host name (with an optional port)."""
    if not isinstance(host, str):
        return None
    host = host.strip().lower().rstrip(".")
    if host.endswith(".") or not _HOST.match(host):
        return None
    return host


def _checked_hosts(hosts, existing=None):
    cleaned = []
    for host in hosts or ():
        normal = normalise_host(host)
        if normal is None:
            raise ApplicationError(_("“%(host)s” is not a host name: give it as the browser sees it, for example "
                                     "reports.moh.example or reports.moh.example:8443 (no https://, no path).",
                                     host=str(host)[:100]), "hosts")
        clash = db.session.scalar(select(ApplicationHost).where(ApplicationHost.host == normal))
        if clash is not None and clash.application is not existing:
            raise ApplicationError(_("The host %(host)s is already protected by “%(name)s”.", host=normal,
                                     name=clash.application.name), "hosts")
        if normal not in cleaned:
            cleaned.append(normal)
    if len(cleaned) > MAX_HOSTS:
        raise ApplicationError(_("At most %(count)d hosts per site.", count=MAX_HOSTS), "hosts")
    return cleaned


def site_for_host(host):
    """The protected site serving ``host`` (as a proxy names it), or None."""
    normal = normalise_host(host)
    if normal is None:
        return None
    return db.session.scalar(select(Application).join(ApplicationHost, ApplicationHost.application_id == Application.id)
                             .where(ApplicationHost.host == normal))


def allowed_usernames(application):
    return sorted(row.user.username for row in application.allowed_users)


def allowed_provider_slugs(application):
    return sorted(row.provider.slug for row in application.allowed_providers)


def token_provider_slugs(application):
    """The providers whose kept tokens ``application`` may receive (token exchange, the DHIS2 proxy)."""
    return sorted(db.session.scalars(
        select(IdentityProvider.slug).join(ApplicationTokenProvider, ApplicationTokenProvider.provider_id ==
                                           IdentityProvider.id)
        .where(ApplicationTokenProvider.application_id == application.id)))


def may_receive_tokens(application, provider):
    """Whether ``application`` may receive the person's kept tokens of ``provider``: an OpenID client the
    administrator allowed for it, and the provider still keeps tokens."""
    return (application.kind == OIDC and provider.keep_tokens and
            db.session.get(ApplicationTokenProvider, (application.id, provider.id)) is not None)


def _token_providers(slugs, already=()):
    """The providers named, each keeping tokens (or ``already`` allowed: one that stopped keeping them stays
    listed, harmlessly, until unticked, so the rest of the form can still be saved)."""
    found = []
    for slug in slugs or ():
        provider = IdentityProvider.by_slug(slug.strip()) if isinstance(slug, str) else None
        if provider is None:
            raise ApplicationError(_("There is no identity provider “%(slug)s”.", slug=str(slug)[:60]),
                                   "token_providers")
        if not provider.keep_tokens and provider.slug not in already:
            raise ApplicationError(_("%(slug)s does not keep tokens: turn on “Keep the tokens it issues” for it "
                                     "first.", slug=provider.slug), "token_providers")
        if provider not in found:
            found.append(provider)
    return found


def _set_token_providers(application, providers):
    db.session.execute(delete(ApplicationTokenProvider).where(ApplicationTokenProvider.application_id ==
                                                              application.id))
    db.session.add_all(ApplicationTokenProvider(application_id=application.id, provider_id=provider.id)
                       for provider in providers)


def allowed_group_names(application):
    return sorted(db.session.scalars(select(Group.name).join(ApplicationGroup, ApplicationGroup.group_id == Group.id)
                                     .where(ApplicationGroup.application_id == application.id)))


# The attributes every deployment may hold (the DHIS2 plugin states these); names seen in stored bindings are
# offered besides. Same shape as the names geologin/idp/attributes.py keeps.
KNOWN_ATTRIBUTES = ("roles", "org_units")
ATTRIBUTE_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
MAX_ATTRIBUTE_CLAIMS = 20


def attribute_claim_names(application):
    """The attribute names ticked for ``application`` (each given as the claim "<plugin type>_<name>")."""
    try:
        value = json.loads(application.attribute_claims_json or "[]")
    except ValueError:
        return []
    return [name for name in value if isinstance(name, str)] if isinstance(value, list) else []


def known_attribute_names():
    """The attribute names an administrator can tick: the known ones and those seen at recent logins."""
    seen = set(KNOWN_ATTRIBUTES)
    for text in db.session.scalars(select(ExternalIdentity.attributes_json)
                                   .where(ExternalIdentity.attributes_json.is_not(None))
                                   .order_by(ExternalIdentity.attributes_seen_at.desc()).limit(500)):
        try:
            value = json.loads(text)
        except ValueError:
            continue
        if isinstance(value, dict):
            seen.update(name for name in value if isinstance(name, str) and ATTRIBUTE_NAME.fullmatch(name))
    return sorted(seen)


def find(name_or_client_id):
    """The application with this name or client_id, or None."""
    value = (name_or_client_id or "").strip()
    if not value:
        return None
    return db.session.scalar(select(Application).where(
        or_(Application.name == value, Application.client_id == value)))


def all_applications():
    return list(db.session.scalars(select(Application).order_by(Application.name)))


def as_dict(application):
    """What ``apps show --json`` prints and the admin screen shows: everything but the secret."""
    return {
        "name": application.name,
        "kind": application.kind,
        "hosts": host_names(application),
        "client_id": application.client_id,
        "public": application.is_public,
        "first_party": application.first_party,
        "redirect_uris": redirect_uris(application),
        "post_logout_uris": post_logout_uris(application),
        "backchannel_logout_uri": application.backchannel_logout_uri,
        "all_users": application.allow_all_users,
        "allowed_users": allowed_usernames(application),
        "allowed_groups": allowed_group_names(application),
        "providers_only": application.providers_only,
        "allowed_providers": allowed_provider_slugs(application),
        "refresh_tokens": application.refresh_tokens,
        "id_token_alg": application.id_token_alg,
        "attribute_claims": attribute_claim_names(application),
        "token_providers": token_provider_slugs(application),
        "created_at": application.created_at.isoformat(),
        "secret_changed_at": application.secret_changed_at.isoformat() if application.secret_changed_at else None,
    }


def _insecure_http_allowed():
    config = current_app.config
    return bool(config.get("ALLOW_INSECURE_HTTP") or config.get("TESTING") or is_development(current_app))


def check_uri(uri, what, field=None):
    """Return ``uri`` cleaned, or raise ApplicationError. Exact strings are compared later, so nothing is
    normalised: a URI must be absolute, https (http only on the machine itself, or in development), and
    carry no fragment (RFC 6749 3.1.2)."""
    uri = (uri or "").strip()
    if not uri:
        raise ApplicationError(_("%(what)s: enter a URL.", what=what), field)
    if len(uri) > URI_MAX:
        raise ApplicationError(_("%(what)s: longer than %(n)d characters.", what=what, n=URI_MAX), field)
    if any(ord(c) < 33 or ord(c) == 127 for c in uri):
        raise ApplicationError(_("%(what)s: a URL contains spaces or control characters.", what=what), field)
    try:
        parts = urlsplit(uri)
        host = parts.hostname
    except ValueError:
        raise ApplicationError(_("%(what)s: “%(uri)s” is not a valid URL.", what=what, uri=uri), field) from None
    if parts.scheme not in ("https", "http") or not host:
        raise ApplicationError(_("%(what)s: “%(uri)s” must be an absolute https:// URL.", what=what, uri=uri),
                               field)
    if parts.fragment or "#" in uri:
        raise ApplicationError(_("%(what)s: “%(uri)s” must not contain a fragment (#...).", what=what, uri=uri),
                               field)
    if parts.username or parts.password:
        raise ApplicationError(_("%(what)s: “%(uri)s” must not contain a user name or password.", what=what,
                                 uri=uri), field)
    if parts.scheme == "http" and host not in _LOOPBACK_HOSTS and not _insecure_http_allowed():
        raise ApplicationError(_("%(what)s: “%(uri)s” is plain http: use https (http is allowed only for "
                                 "localhost, or in development).", what=what, uri=uri), field)
    return uri


def _checked_uris(uris, what, field):
    cleaned = []
    for uri in uris or ():
        uri = check_uri(uri, what, field)
        if uri not in cleaned:
            cleaned.append(uri)
    if len(cleaned) > MAX_URIS:
        raise ApplicationError(_("%(what)s: at most %(n)d per application.", what=what, n=MAX_URIS), field)
    return cleaned


def _checked_name(name, existing=None):
    name = (name or "").strip()
    if not name:
        raise ApplicationError(_("The application needs a name."), "name")
    if len(name) > NAME_MAX:
        raise ApplicationError(_("The name is longer than %(n)d characters.", n=NAME_MAX), "name")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise ApplicationError(_("The name contains control characters."), "name")
    clash = find(name)
    if clash is not None and clash is not existing:
        raise ApplicationError(_("There is already an application named or identified “%(name)s”.", name=name),
                               "name")
    return name


def _providers(slugs):
    found = []
    for slug in slugs or ():
        provider = IdentityProvider.by_slug(slug)
        if provider is None:
            raise ApplicationError(_("There is no identity provider “%(slug)s”.", slug=slug), "providers")
        if provider not in found:
            found.append(provider)
    return found


def _groups(names):
    found = []
    for name in names or ():
        group = Group.by_name(name.strip()) if isinstance(name, str) else None
        if group is None:
            raise ApplicationError(_("There is no group “%(name)s”.", name=str(name)[:100]), "groups")
        if group not in found:
            found.append(group)
    return found


def _checked_attribute_claims(names):
    cleaned = []
    for name in names or ():
        name = name.strip() if isinstance(name, str) else ""
        if not ATTRIBUTE_NAME.fullmatch(name):
            raise ApplicationError(_("“%(name)s” is not an attribute name: lowercase letters, digits and "
                                     "underscores, such as roles or org_units.", name=name[:40]),
                                   "attribute_claims")
        if name not in cleaned:
            cleaned.append(name)
    if len(cleaned) > MAX_ATTRIBUTE_CLAIMS:
        raise ApplicationError(_("At most %(count)d attribute claims per application.", count=MAX_ATTRIBUTE_CLAIMS),
                               "attribute_claims")
    return cleaned


def _set_groups(application, groups):
    db.session.execute(delete(ApplicationGroup).where(ApplicationGroup.application_id == application.id))
    db.session.add_all(ApplicationGroup(application_id=application.id, group_id=group.id) for group in groups)


ID_TOKEN_ALGORITHMS = ("RS256", "ES256")


def _checked_alg(alg):
    if alg not in ID_TOKEN_ALGORITHMS:
        raise ApplicationError(_("The ID token algorithm must be RS256 or ES256."), "id_token_alg")
    return alg


def create(name, redirect_uris=(), *, post_logout_uris=(), backchannel_logout_uri=None, public=False,
           first_party=False, all_users=True, refresh_tokens=False, providers=None, id_token_alg="RS256",
           forward_auth=False, hosts=(), groups=(), attribute_claims=(), token_providers=(), actor=None):
    """Register an application: an OpenID Connect client (redirect URIs), or with ``forward_auth`` a protected
    site (hosts). ``groups``: names of the geologin groups whose members may sign in besides the allowed
    users; ``attribute_claims``: provider attributes given as claims (an OpenID client's); ``token_providers``:
    slugs of the providers whose kept tokens it may receive (a confidential OpenID client's). Returns
    ``(application, secret)``: the secret (None for a public client or a site) is not kept and cannot be shown
    again."""
    name = _checked_name(name)
    if forward_auth:
        if redirect_uris or post_logout_uris or backchannel_logout_uri:
            raise ApplicationError(_("A protected site has hosts, not redirect or logout URIs."), "redirect_uris")
        uris, logout_uris, backchannel = [], [], None
        site_hosts = _checked_hosts(hosts)
        if not site_hosts:
            raise ApplicationError(_("A protected site needs at least one host."), "hosts")
        public = True  # nothing to authenticate: the proxy asks on the person's behalf
    else:
        if hosts:
            raise ApplicationError(_("Only a protected site (forward-auth) has hosts."), "hosts")
        site_hosts = []
        uris = _checked_uris(redirect_uris, REDIRECT_URI, "redirect_uris")
        if not uris:
            raise ApplicationError(_("An application needs at least one redirect URI."), "redirect_uris")
        logout_uris = _checked_uris(post_logout_uris, POST_LOGOUT_URI, "post_logout_uris")
        backchannel = (check_uri(backchannel_logout_uri, BACKCHANNEL_LOGOUT_URI, "backchannel_logout_uri")
                       if backchannel_logout_uri else None)
    chosen = _providers(providers)
    chosen_groups = _groups(groups)
    claims = _checked_attribute_claims(attribute_claims)
    if forward_auth and claims:
        raise ApplicationError(_("A protected site receives headers, not claims."), "attribute_claims")
    id_token_alg = _checked_alg(id_token_alg)
    token_sources = _token_providers(token_providers)
    if token_sources and forward_auth:
        raise ApplicationError(_("A protected site receives headers, not tokens."), "token_providers")
    secret = None if public else new_secret()
    application = Application(
        name=name, kind=FORWARD_AUTH if forward_auth else OIDC, client_id=_new_client_id(),
        secret_hash=_secret_hash(secret) if secret else None,
        redirect_uris_json=json.dumps(uris), post_logout_uris_json=json.dumps(logout_uris),
        backchannel_logout_uri=backchannel, first_party=first_party, allow_all_users=all_users,
        providers_only=bool(chosen), refresh_tokens=refresh_tokens, id_token_alg=id_token_alg,
        attribute_claims_json=json.dumps(claims), secret_changed_at=utcnow() if secret else None)
    application.allowed_providers = [ApplicationProvider(provider=provider) for provider in chosen]
    application.hosts = [ApplicationHost(host=host) for host in site_hosts]
    db.session.add(application)
    db.session.flush()
    _set_groups(application, chosen_groups)
    _set_token_providers(application, token_sources)
    kind = "protected site" if forward_auth else ("public" if public else "confidential")
    detail = f"client_id {application.client_id}; {kind}" + (f"; hosts {', '.join(site_hosts)}" if site_hosts
                                                               else "")
    if chosen_groups:
        detail += "; groups " + ", ".join(group.name for group in chosen_groups)
    if claims:
        detail += "; attribute claims " + ", ".join(claims)
    if token_sources:
        detail += "; may receive the tokens of " + ", ".join(provider.slug for provider in token_sources)
    audit.record("app.create", target=name, actor=actor, commit=False, detail=detail)
    db.session.commit()
    return application, secret


_UNSET = object()


def edit(application, *, name=None, redirect_uris=None, post_logout_uris=None, backchannel_logout_uri=_UNSET,
         first_party=None, all_users=None, refresh_tokens=None, providers=None, id_token_alg=None, hosts=None,
         groups=None, attribute_claims=None, token_providers=None, actor=None):
    """Change what is given (None: unchanged; ``providers=[]`` admits every login method again, ``groups=[]``
    admits no group, ``token_providers=[]`` hands out no kept token, ``backchannel_logout_uri=None`` removes
    it). Returns the names of the fields that changed."""
    changes = {}
    if name is not None:
        changes["name"] = _checked_name(name, application)
    if application.is_forward_auth and (redirect_uris or post_logout_uris or backchannel_logout_uri not in (None,
                                                                                                        _UNSET)):
        raise ApplicationError(_("A protected site has hosts, not redirect or logout URIs."), "redirect_uris")
    if hosts is not None and not application.is_forward_auth:
        raise ApplicationError(_("Only a protected site (forward-auth) has hosts."), "hosts")
    if application.is_forward_auth:
        redirect_uris = post_logout_uris = None
        backchannel_logout_uri = _UNSET
    if redirect_uris is not None:
        uris = _checked_uris(redirect_uris, REDIRECT_URI, "redirect_uris")
        if not uris:
            raise ApplicationError(_("An application needs at least one redirect URI."), "redirect_uris")
        changes["redirect_uris_json"] = json.dumps(uris)
    if post_logout_uris is not None:
        changes["post_logout_uris_json"] = json.dumps(_checked_uris(post_logout_uris, POST_LOGOUT_URI,
                                                                    "post_logout_uris"))
    if backchannel_logout_uri is not _UNSET:
        changes["backchannel_logout_uri"] = (check_uri(backchannel_logout_uri, BACKCHANNEL_LOGOUT_URI,
                                                       "backchannel_logout_uri")
                                             if backchannel_logout_uri else None)
    for field, value in (("first_party", first_party), ("allow_all_users", all_users),
                         ("refresh_tokens", refresh_tokens)):
        if value is not None:
            changes[field] = bool(value)
    if id_token_alg is not None:
        changes["id_token_alg"] = _checked_alg(id_token_alg)
    chosen = _providers(providers) if providers is not None else None
    chosen_groups = _groups(groups) if groups is not None else None
    claims = _checked_attribute_claims(attribute_claims) if attribute_claims is not None else None
    if claims and application.is_forward_auth:
        raise ApplicationError(_("A protected site receives headers, not claims."), "attribute_claims")
    token_sources = (_token_providers(token_providers, token_provider_slugs(application))
                     if token_providers is not None else None)
    if token_sources and application.is_forward_auth:
        raise ApplicationError(_("A protected site receives headers, not tokens."), "token_providers")
    changed = [field for field, value in changes.items() if getattr(application, field) != value]
    for field in changed:
        setattr(application, field, changes[field])
    if claims is not None and claims != attribute_claim_names(application):
        application.attribute_claims_json = json.dumps(claims)
        changed.append("attribute_claims")
    if hosts is not None:
        site_hosts = _checked_hosts(hosts, application)
        if not site_hosts:
            raise ApplicationError(_("A protected site needs at least one host."), "hosts")
        if set(site_hosts) != set(host_names(application)):  # the order of hosts means nothing
            kept = {row.host: row for row in application.hosts}
            application.hosts = [kept.get(host) or ApplicationHost(host=host) for host in site_hosts]
            changed.append("hosts")
    if chosen is not None and {p.id for p in chosen} != {row.provider_id for row in application.allowed_providers}:
        application.allowed_providers = [ApplicationProvider(provider=provider) for provider in chosen]
        application.providers_only = bool(chosen)
        changed.append("providers")
    if chosen_groups is not None and {g.name for g in chosen_groups} != set(allowed_group_names(application)):
        _set_groups(application, chosen_groups)
        changed.append("groups")
    if token_sources is not None and {p.slug for p in token_sources} != set(token_provider_slugs(application)):
        _set_token_providers(application, token_sources)
        changed.append("token_providers")
    if changed:
        audit.record("app.update", target=application.name, actor=actor, commit=False,
                     detail="changed: " + ", ".join(changed))
    db.session.commit()
    return changed


def rotate_secret(application, *, actor=None):
    """A new secret for a confidential application; the old one stops working at once. Returns it (once)."""
    if application.is_public:
        raise ApplicationError(_("“%(name)s” is a public client: it has no secret.", name=application.name))
    secret = new_secret()
    application.secret_hash = _secret_hash(secret)
    application.secret_changed_at = utcnow()
    audit.record("app.rotate_secret", target=application.name, actor=actor, commit=False)
    db.session.commit()
    return secret


def remove(application, *, actor=None):
    """Delete the application with its codes, tokens, consents and allowed users."""
    name, client_id = application.name, application.client_id
    db.session.delete(application)
    audit.record("app.delete", target=name, actor=actor, commit=False, detail=f"client_id {client_id}")
    db.session.commit()


def allow(application, users, *, actor=None):
    """Let ``users`` sign in to the application; returns the usernames newly allowed."""
    already = {row.user_id for row in application.allowed_users}
    added = []
    for user in users:
        if user.id not in already:
            db.session.add(ApplicationUser(application_id=application.id, user_id=user.id))
            already.add(user.id)
            added.append(user.username)
    if added:
        audit.record("app.allow", target=", ".join(added)[:255], actor=actor, commit=False,
                     detail=f"application {application.name}")
    db.session.commit()
    return added


def disallow(application, users, *, actor=None):
    """Withdraw the permission; what the application was given for those users is revoked at once."""
    removed = []
    for user in users:
        row = db.session.get(ApplicationUser, (application.id, user.id))
        if row is not None:
            db.session.delete(row)
            removed.append(user)
    sids = set()
    if removed:
        sids = revoke_for_users(application, [user.id for user in removed])
        audit.record("app.disallow", target=", ".join(u.username for u in removed)[:255], actor=actor,
                     commit=False, detail=f"application {application.name}")
    db.session.commit()
    if sids:
        tokens_revoked.send(application, sids=sids)
    return [user.username for user in removed]


def revoke_for_users(application, user_ids):
    """Revoke the application's live tokens and consents of these users (the caller commits, then sends
    tokens_revoked with what this returns: the sids of the sessions whose tokens were revoked)."""
    sids = set(db.session.scalars(select(OAuthToken.sid).where(
        OAuthToken.application_id == application.id, OAuthToken.user_id.in_(user_ids),
        OAuthToken.revoked_at.is_(None))))
    db.session.execute(update(OAuthToken).where(OAuthToken.application_id == application.id,
                                                OAuthToken.user_id.in_(user_ids), OAuthToken.revoked_at.is_(None))
                       .values(revoked_at=utcnow()))
    db.session.execute(delete(Consent).where(Consent.application_id == application.id,
                                             Consent.user_id.in_(user_ids)))
    return sids


def users_named(usernames):
    """The users with these usernames, or ApplicationError naming the unknown ones (a few queries however
    many names: the admin screen takes thousands at once)."""
    names = list(dict.fromkeys(usernames))
    found = {}
    searchable = [name for name in names if "\x00" not in name]  # PostgreSQL cannot even compare a NUL
    for start in range(0, len(searchable), 500):
        chunk = searchable[start:start + 500]
        found.update((user.username, user) for user in db.session.scalars(select(User).where(
            User.username.in_(chunk))))
    unknown = [name for name in names if name not in found]
    if unknown:
        shown = ", ".join(unknown[:20]) + (f" (+{len(unknown) - 20})" if len(unknown) > 20 else "")
        raise ApplicationError(_("No such user: %(names)s", names=shown), "users")
    return [found[name] for name in names]
