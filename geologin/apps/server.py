"""The OpenID provider, assembled from Authlib's authorization server: the authorization code grant with
PKCE (S256) and OpenID Connect, refresh tokens with rotation, token exchange for a person's kept provider
tokens (RFC 8693), revocation (RFC 7009), introspection (RFC 7662), ``iss`` in every authorization response
(RFC 9207), userinfo and RP-initiated logout. This module
supplies what Authlib leaves to us: where clients, codes and tokens are stored, and what goes in them."""
import hashlib
import json
import secrets
import time
from datetime import timedelta

from authlib.integrations.flask_oauth2 import AuthorizationServer, ResourceProtector, current_token
from authlib.oauth2 import OAuth2Error
from authlib.oauth2.rfc6749 import ClientMixin, InvalidGrantError, InvalidRequestError, UnauthorizedClientError, grants
from authlib.oauth2.rfc6750 import BearerTokenGenerator, BearerTokenValidator
from authlib.oauth2.rfc7009 import RevocationEndpoint
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oauth2.rfc7662 import IntrospectionEndpoint
from authlib.oauth2.rfc9207 import IssuerParameter
from authlib.oidc.core import OpenIDCode, OpenIDToken, UserInfo, UserInfoEndpoint
from authlib.oidc.rpinitiated import EndSessionEndpoint
from flask import current_app, request
from flask import request as flask_request
from sqlalchemy import and_, delete, or_, select, update

from .. import audit
from ..encryption import digest
from ..extensions import db
from ..groups import membership
from ..idp import tokens as kept_tokens
from ..login.sessions import AuthMethod
from ..models import (Application, AuthorizationCode, ExternalIdentity, IdentityProvider, KeptToken, OAuthToken, User,
                      utcnow)
from . import access, clients, keys

CODE_LIFETIME = timedelta(seconds=60)
# "dhis2": the application may call the read-only DHIS2 proxy as the person (geologin/proxy).
SCOPES = ("openid", "profile", "email", "groups", "offline_access", "dhis2")
TOKEN_EXCHANGE = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"


def issuer():
    """The issuer identifier: PUBLIC_URL exactly, or (development without it) the URL this request came to."""
    return current_app.config.get("PUBLIC_URL") or request.host_url.rstrip("/")


def public_sid(session_id):
    """The ``sid`` applications see for a geologin session: derived from the session row's id (itself a hash
    of the cookie), so it names the session without revealing anything that could rebuild the cookie."""
    return hashlib.sha256(b"geologin-sid:" + session_id.encode()).hexdigest()[:32]


def _epoch(moment):
    return int(moment.timestamp())


class Client(ClientMixin):
    """An Application as Authlib sees a client."""

    def __init__(self, application):
        self.application = application
        self.client_id = application.client_id
        self.id_token_signed_response_alg = application.id_token_alg

    @property
    def client_metadata(self):
        return {"post_logout_redirect_uris": clients.post_logout_uris(self.application)}

    def get_client_id(self):
        return self.client_id

    def get_default_redirect_uri(self):
        uris = clients.redirect_uris(self.application)
        return uris[0] if len(uris) == 1 else None

    def get_allowed_scope(self, scope):
        if not scope:
            return ""
        return " ".join(s for s in scope.split() if s in SCOPES)

    def check_redirect_uri(self, redirect_uri):
        return redirect_uri in clients.redirect_uris(self.application)

    def check_client_secret(self, client_secret):
        return clients.verify_secret(self.application, client_secret)

    def check_endpoint_auth_method(self, method, endpoint):
        if self.application.is_public:
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type):
        return response_type == "code"

    def check_grant_type(self, grant_type):
        if grant_type == TOKEN_EXCHANGE:
            return not self.application.is_public
        return grant_type in ("authorization_code", "refresh_token")


def query_client(client_id):
    if not isinstance(client_id, str) or not client_id or len(client_id) > 64:
        return None
    application = db.session.scalar(select(Application).where(Application.client_id == client_id,
                                                              Application.kind == "oidc"))
    return Client(application) if application is not None else None


class IssuedCode:
    """A stored authorization code as Authlib's grant and OpenID extension read it."""

    def __init__(self, row):
        self.row = row

    def get_redirect_uri(self):
        return self.row.redirect_uri or None

    def get_scope(self):
        return self.row.scope

    def get_nonce(self):
        return self.row.nonce

    def get_auth_time(self):
        return _epoch(self.row.auth_time)

    def get_acr(self):
        return None

    def get_amr(self):
        return None  # set with the rest of geologin's own claims (id_token_claims)


class IssuedToken:
    """A stored token row as Authlib's endpoints read it."""

    def __init__(self, row, refresh=False):
        self.row = row
        self.scope = row.scope
        self.refresh = refresh  # the string presented was the refresh token (introspection)

    def check_client(self, client):
        return client.application.id == self.row.application_id

    def get_scope(self):
        return self.row.scope

    def get_expires_in(self):
        return max(0, int((self.row.access_expires_at - utcnow()).total_seconds()))

    def is_expired(self):
        if self.refresh:
            return self.row.refreshed_at is not None or self.row.refresh_expires_at <= utcnow()
        return self.row.access_expires_at <= utcnow()

    def is_revoked(self):
        return self.row.revoked_at is not None or still_refused(self.row) is not None

    def get_user(self):
        return self.row.user

    def get_client(self):
        return Client(self.row.application)


def still_refused(row):
    """Why a token may no longer be used although it was issued (the user deactivated, their access to
    the application withdrawn, or the login method no longer admitted); None if it may."""
    return access.refusal(row.application, row.user, row.auth_method)


def user_claims(user, scope, application=None):
    """The claims about ``user`` that ``scope`` releases, for the ID token and userinfo, and the provider
    attributes ticked for ``application``."""
    scopes = set((scope or "").split())
    info = UserInfo(sub=user.subject)
    if "groups" in scopes:
        info["groups"] = membership.names(user)
    if application is not None:
        info.update(attribute_claims(application, user))
    if "profile" in scopes:
        info["preferred_username"] = user.username
        info["name"] = user.display_name or user.username
        info["updated_at"] = _epoch(user.updated_at)
        if user.locale:
            info["locale"] = user.locale.replace("_", "-")
    if "email" in scopes and user.email:
        info["email"] = user.email
        info["email_verified"] = False  # geologin never proves that a person receives mail at the address
    return info


def attribute_claims(application, user):
    """The attributes ticked for ``application`` as claims "<plugin type>_<name>" (dhis2_roles), each a list of
    {id, name[, path]} merged from the person's bindings to providers of that type, as their last logins
    through them stated (an empty list when none did)."""
    names = clients.attribute_claim_names(application)
    if not names:
        return {}
    claims = {}
    rows = db.session.execute(select(IdentityProvider.type, ExternalIdentity.attributes_json)
                              .join(ExternalIdentity, ExternalIdentity.provider_id == IdentityProvider.id)
                              .where(ExternalIdentity.user_id == user.id).order_by(ExternalIdentity.id)).all()
    for plugin_type, _ in rows:
        for name in names:
            claims.setdefault(f"{plugin_type}_{name}", [])
    for plugin_type, text in rows:
        try:
            stated = json.loads(text) if text else {}
        except ValueError:
            continue
        if not isinstance(stated, dict):
            continue
        for name in names:
            values = claims[f"{plugin_type}_{name}"]
            seen = {value["id"] for value in values}
            for value in stated.get(name) if isinstance(stated.get(name), list) else ():
                if isinstance(value, dict) and isinstance(value.get("id"), str) and value["id"] not in seen:
                    seen.add(value["id"])
                    values.append({key: value[key] for key in ("id", "name", "path")
                                   if isinstance(value.get(key), str)})
    return claims


def login_claims(auth_method, sid):
    """How the person logged in: ``amr`` (RFC 8176: ``pwd`` for a password, ``fed`` through an identity
    provider), ``idp`` (that provider's slug) and the session's ``sid``."""
    method = AuthMethod(auth_method)
    claims = {"amr": ["pwd"] if method.is_password else ["fed"], "sid": sid}
    if method.provider_slug:
        claims["idp"] = method.provider_slug
    return claims


class _SigningMixin:
    """ID tokens signed with the current database key of the application's algorithm, its kid in the header."""

    def _key(self, client):
        return keys.signing_key(self.get_client_algorithm(client))

    def resolve_client_private_key(self, client):
        return self._key(client)

    def get_encode_header(self, client):
        return {"alg": self.get_client_algorithm(client), "kid": self._key(client).kid, "typ": "JWT"}

    def get_client_algorithm(self, client):
        return client.application.id_token_alg

    def get_client_claims(self, client):
        now = int(time.time())
        return {"iss": issuer(), "aud": client.client_id, "azp": client.client_id, "iat": now,
                "exp": now + current_app.config["OIDC_ID_TOKEN_SECONDS"]}

    def generate_user_info(self, user, scope):
        return user_claims(user, scope)

    def get_compatible_claims(self, request):
        claims = super().get_compatible_claims(request) | attribute_claims(request.client.application, request.user)
        row = request.issued_row  # how and when the person logged in, and the session (set by the grants)
        return claims | login_claims(row.auth_method, row.sid) | {"auth_time": _epoch(row.auth_time)}


class OpenIDCodeExtension(_SigningMixin, OpenIDCode):
    def exists_nonce(self, nonce, request):
        return False  # nonces are the application's to check; codes are single use here


class OpenIDRefreshExtension(_SigningMixin, OpenIDToken):
    """A refreshed ID token (OpenID Connect Core 12.2): same sub, auth_time and sid, no nonce."""


class S256Only(CodeChallenge):
    """PKCE with S256 only ("plain" protects nothing a TLS-protected request does not), required for public
    clients (``required=True`` applies to clients authenticating with ``none``), honoured for all."""
    SUPPORTED_CODE_CHALLENGE_METHOD = ["S256"]
    DEFAULT_CODE_CHALLENGE_METHOD = "S256"

    def validate_code_challenge(self, grant, redirect_uri):
        super().validate_code_challenge(grant, redirect_uri)
        from authlib.oauth2.rfc6749 import InvalidRequestError
        payload = grant.request.payload.data
        client = grant.request.client
        if payload.get("code_challenge") and not payload.get("code_challenge_method"):
            raise InvalidRequestError("'code_challenge_method' must be S256.")
        if client is not None and client.application.is_public and not payload.get("code_challenge"):
            raise InvalidRequestError("A public client must use PKCE (code_challenge with S256).")

    def get_authorization_code_challenge(self, authorization_code):
        return authorization_code.row.code_challenge

    def get_authorization_code_challenge_method(self, authorization_code):
        return authorization_code.row.code_challenge_method


class AuthorizationCodeGrant(grants.AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def save_authorization_code(self, code, request):
        session_row = request.session_row
        # Used and expired codes are kept a day, to recognise a replay; then they go.
        db.session.execute(delete(AuthorizationCode).where(AuthorizationCode.expires_at < utcnow() - timedelta(days=1)))
        payload = request.payload.data
        db.session.add(AuthorizationCode(
            code_hash=digest(code), application_id=request.client.application.id, user_id=request.user.id,
            session_id=session_row.id, redirect_uri=request.payload.redirect_uri or "", scope=request.scope or "",
            nonce=payload.get("nonce"), code_challenge=payload.get("code_challenge"),
            code_challenge_method=payload.get("code_challenge_method"), auth_time=session_row.created_at,
            auth_method=session_row.auth_method, expires_at=utcnow() + CODE_LIFETIME))
        db.session.commit()

    def query_authorization_code(self, code, client):
        """The code, claimed for this request at once (so two concurrent redemptions cannot both win). A code
        already used is a replay: everything issued with it is revoked (OpenID Connect Core 4.1.2)."""
        if not _plausible(code):
            return None
        row = db.session.scalar(select(AuthorizationCode).where(AuthorizationCode.code_hash == digest(code)))
        if row is None or row.application_id != client.application.id:
            return None
        now = utcnow()
        claimed = db.session.execute(update(AuthorizationCode).where(
            AuthorizationCode.id == row.id, AuthorizationCode.used_at.is_(None)).values(used_at=now)).rowcount
        db.session.commit()
        if not claimed:
            revoked = revoke_where(OAuthToken.code_id == row.id)
            audit.record("app.code_reuse", audit.FAILURE, target=row.user.username, reason="code_reuse",
                         detail=f"application {client.application.name}; {revoked} token(s) revoked")
            return None
        if row.expires_at <= now:
            return None
        return IssuedCode(row)

    def delete_authorization_code(self, authorization_code):
        pass  # kept, marked used, so that a replay is recognised (query_authorization_code)

    def authenticate_user(self, authorization_code):
        """The code's user, if they may still use the application (access is checked again here)."""
        row = authorization_code.row
        user = db.session.get(User, row.user_id)
        reason = access.refusal(self.request.client.application, user, row.auth_method)
        if reason is not None:
            audit.record("app.token", audit.FAILURE, target=user.username, reason=reason,
                         detail=f"application {self.request.client.application.name}")
            return None
        return user

    def generate_token(self, user=None, scope=None, grant_type=None, expires_in=None, include_refresh_token=True):
        application = self.request.client.application
        wants = application.refresh_tokens or "offline_access" in (scope or "").split()
        return super().generate_token(user=user, scope=scope, grant_type=grant_type, expires_in=expires_in,
                                      include_refresh_token=include_refresh_token and wants)

    def create_token_response(self):
        code_row = self.request.authorization_code.row
        self.request.issued_row = _PendingRow(code_row.auth_method, public_sid(code_row.session_id)
                                              if code_row.session_id else "", code_row.auth_time)
        return super().create_token_response()


class _PendingRow:
    """What the ID token needs from a token not yet stored: how and when the person logged in, and the sid."""

    def __init__(self, auth_method, sid, auth_time):
        self.auth_method, self.sid, self.auth_time = auth_method, sid, auth_time


class RefreshTokenGrant(grants.RefreshTokenGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
    INCLUDE_NEW_REFRESH_TOKEN = True

    def authenticate_refresh_token(self, refresh_token):
        """The live token row of this refresh token. A refresh token already rotated is a replay: the whole
        chain it belongs to is revoked (OAuth 2.0 Security BCP, RFC 9700 4.14.2)."""
        row = token_by_refresh_token(refresh_token)
        if row is None:
            return None
        now = utcnow()
        if row.refreshed_at is not None:
            revoked = revoke_where(OAuthToken.chain == row.chain)
            audit.record("app.refresh_reuse", audit.FAILURE, target=row.user.username, reason="refresh_token_reuse",
                         detail=f"application {row.application.name}; {revoked} token(s) revoked")
            return None
        if row.revoked_at is not None or (row.refresh_expires_at and row.refresh_expires_at <= now):
            return None
        reason = still_refused(row)
        if reason is not None:
            audit.record("app.refresh", audit.FAILURE, target=row.user.username, reason=reason,
                         detail=f"application {row.application.name}")
            return None
        self.request.issued_row = row
        return IssuedToken(row)

    def authenticate_user(self, refresh_token):
        return refresh_token.row.user

    def revoke_old_credential(self, refresh_token):
        refresh_token.row.refreshed_at = utcnow()
        db.session.commit()


class InvalidTargetError(OAuth2Error):
    """RFC 8693 2.2.2: the provider the application named is not one whose tokens geologin hands out."""
    error = "invalid_target"


RETRY_SECONDS = int(kept_tokens.RETRY_AFTER_FAILURE.total_seconds())


class TemporarilyUnavailable(OAuth2Error):
    """The provider failed to renew a kept token just now: the tokens are still kept, so the application
    retries later instead of sending the person through a new login."""

    error = "temporarily_unavailable"
    status_code = 503

    def get_headers(self):
        return [*super().get_headers(), ("Retry-After", str(RETRY_SECONDS))]


class TokenExchangeGrant(grants.BaseGrant, grants.TokenEndpointMixin):
    """RFC 8693: a confidential application trades an access token geologin issued it (the person) for that
    person's current access token at the provider ``requested_issuer`` names (its slug), when an administrator
    allowed the application those tokens. Nothing is stored: the answer is the kept token itself."""
    GRANT_TYPE = TOKEN_EXCHANGE
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def validate_token_request(self):
        client = self.authenticate_token_endpoint_client()
        if not client.check_grant_type(self.GRANT_TYPE):
            raise UnauthorizedClientError("Only a confidential application may exchange tokens.")
        self.request.client = client
        data = self.request.payload.data
        for name in ("subject_token", "subject_token_type", "requested_issuer"):
            if not isinstance(data.get(name), str) or not data.get(name):
                raise InvalidRequestError(f"'{name}' is required.")
        if data["subject_token_type"] != ACCESS_TOKEN_TYPE:
            raise InvalidRequestError(f"'subject_token_type' must be {ACCESS_TOKEN_TYPE}.")
        if data.get("requested_token_type") not in (None, "", ACCESS_TOKEN_TYPE):
            raise InvalidRequestError(f"'requested_token_type' can only be {ACCESS_TOKEN_TYPE}.")
        if data.get("actor_token"):
            raise InvalidRequestError("'actor_token' is not supported (no delegation).")
        application = client.application
        slug = data["requested_issuer"]
        provider = IdentityProvider.by_slug(slug) if len(slug) <= 60 else None
        if provider is None or not provider.enabled or not provider.keep_tokens:
            self._refuse("unknown_provider", slug[:60])
            raise InvalidTargetError("'requested_issuer' names no identity provider whose tokens geologin keeps.")
        if not clients.may_receive_tokens(application, provider):
            self._refuse("application_not_allowed", provider.slug)
            raise UnauthorizedClientError(f"This application may not receive the tokens of {provider.slug}.")
        row = token_by_access_token(data["subject_token"])
        if row is None or row.application_id != application.id:
            self._refuse("subject_token_unknown", provider.slug)
            raise InvalidGrantError("The subject token is not an access token issued to this application.")
        token = IssuedToken(row)
        if token.is_expired() or row.revoked_at is not None:
            self._refuse("subject_token_expired", provider.slug, row.user)
            raise InvalidGrantError("The subject token expired or was revoked.")
        reason = still_refused(row)
        if reason is not None:
            self._refuse(reason, provider.slug, row.user)
            raise InvalidGrantError("The person may no longer use this application.")
        self.request.user = row.user
        self.request.provider = provider

    def _refuse(self, reason, slug, user=None):
        audit.record("tokens.exchange", audit.FAILURE, target=user.username if user is not None else None,
                     reason=reason, provider=slug, detail=f"application {self.request.client.application.name}")

    def create_token_response(self):
        user, provider = self.request.user, self.request.provider
        try:
            access_token = kept_tokens.fresh_access_token(user, provider)
        except kept_tokens.RefreshUnavailable as unavailable:  # kept; DHIS2 failed the refresh just now
            self._refuse(unavailable.reason, provider.slug, user)
            raise TemporarilyUnavailable(f"{provider.slug} could not renew the person's token just now; try again "
                                         f"in {RETRY_SECONDS} seconds.") from None
        except kept_tokens.LoginAgain as again:
            self._refuse(again.reason, provider.slug, user)
            raise InvalidGrantError(f"log in again ({again.reason}): the person must log in through "
                                    f"{provider.slug} again.") from None
        expires = db.session.scalar(select(KeptToken.access_expires_at).where(
            KeptToken.user_id == user.id, KeptToken.provider_id == provider.id))
        body = {"access_token": access_token, "issued_token_type": ACCESS_TOKEN_TYPE, "token_type": "Bearer"}
        if expires is not None:
            body["expires_in"] = max(0, int((expires - utcnow()).total_seconds()))
        audit.record("tokens.exchange", target=user.username, provider=provider.slug,
                     detail=f"application {self.request.client.application.name}")
        return 200, body, self.TOKEN_RESPONSE_HEADER


def revoke_where(condition):
    """Revoke every live token matching ``condition`` (and every chain they belong to); returns how many."""
    chains = select(OAuthToken.chain).where(condition).scalar_subquery()
    result = db.session.execute(update(OAuthToken).where(OAuthToken.chain.in_(chains),
                                                         OAuthToken.revoked_at.is_(None)).values(revoked_at=utcnow()))
    db.session.commit()
    return result.rowcount


def save_token(token, request):
    """Store a token response's tokens as hashes, bound to the session (unless offline_access) and chained
    to the token it refreshes."""
    now = utcnow()
    application = request.client.application
    scope = token.get("scope", "")
    previous = getattr(request, "refresh_token", None)
    code = getattr(request, "authorization_code", None)
    if previous is not None:
        old = previous.row
        session_id, sid, chain, code_id = old.session_id, old.sid, old.chain, old.code_id
        auth_time, auth_method = old.auth_time, old.auth_method
    else:
        row = code.row
        offline = "offline_access" in scope.split()
        session_id = None if offline else row.session_id
        sid = public_sid(row.session_id) if row.session_id else ""
        chain, code_id, auth_time, auth_method = secrets.token_hex(16), row.id, row.auth_time, row.auth_method
    refresh = token.get("refresh_token")
    _forget_dead_tokens(application.id, request.user.id, now)
    db.session.add(OAuthToken(
        access_token_hash=digest(token["access_token"]), refresh_token_hash=digest(refresh) if refresh else None,
        application_id=application.id, user_id=request.user.id, session_id=session_id, sid=sid, code_id=code_id,
        chain=chain, scope=scope, auth_time=auth_time, auth_method=auth_method, issued_at=now,
        access_expires_at=now + timedelta(seconds=token["expires_in"]),
        refresh_expires_at=now + timedelta(seconds=current_app.config["OIDC_REFRESH_TOKEN_SECONDS"]) if refresh else None))
    audit.record("app.refresh" if previous is not None else "app.token", target=request.user.username,
                 detail=f"application {application.name}; scope {scope}", commit=False)
    db.session.commit()


def _forget_dead_tokens(application_id, user_id, now):
    """Delete this person's tokens for this application that died more than a day ago, so the table holds
    what is alive (and, for a day, what a replay would be recognised by)."""
    day_ago = now - timedelta(days=1)
    db.session.execute(delete(OAuthToken).where(
        OAuthToken.application_id == application_id, OAuthToken.user_id == user_id,
        or_(OAuthToken.revoked_at < day_ago,
            and_(OAuthToken.access_expires_at < day_ago,
                 or_(OAuthToken.refresh_expires_at.is_(None), OAuthToken.refresh_expires_at < day_ago)))))


def _plausible(value):
    """Whether ``value`` could be a code or token geologin issued (they are 43 characters): anything else is
    answered as unknown without a look-up."""
    return isinstance(value, str) and 0 < len(value) <= 200


def token_by_access_token(token_string):
    if not _plausible(token_string):
        return None
    return db.session.scalar(select(OAuthToken).where(OAuthToken.access_token_hash == digest(token_string)))


def token_by_refresh_token(token_string):
    if not _plausible(token_string):
        return None
    return db.session.scalar(select(OAuthToken).where(OAuthToken.refresh_token_hash == digest(token_string)))


def issued_token(token_string):
    """The token a revocation or introspection request names, whichever of the pair it is, or None."""
    row = token_by_access_token(token_string)
    if row is not None:
        return IssuedToken(row)
    row = token_by_refresh_token(token_string)
    return IssuedToken(row, refresh=True) if row is not None else None


class BearerValidator(BearerTokenValidator):
    def authenticate_token(self, token_string):
        row = token_by_access_token(token_string)
        return IssuedToken(row) if row is not None else None


class BearerProtector(ResourceProtector):
    """Accepts the bearer token in the Authorization header or, for POST, as ``access_token`` in a form
    body (RFC 6750 2.2; OpenID Connect Core 5.3.1 lets userinfo be called so)."""

    def parse_request_authorization(self, request):
        if not request.headers.get("Authorization") and flask_request.method == "POST" \
                and flask_request.mimetype == "application/x-www-form-urlencoded":
            token = flask_request.form.get("access_token")
            if token:
                return self.get_token_validator("bearer"), token
        return super().parse_request_authorization(request)


class Revocation(RevocationEndpoint):
    """RFC 7009. Revoking either token of a response revokes the whole chain it belongs to."""
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]

    def query_token(self, token_string, token_type_hint):
        return issued_token(token_string)

    def revoke_token(self, token, request):
        count = revoke_where(OAuthToken.chain == token.row.chain)
        audit.record("app.revoke", target=token.row.user.username,
                     detail=f"application {token.row.application.name}; {count} token(s) revoked")


class Introspection(IntrospectionEndpoint):
    """RFC 7662, for confidential applications, about their own tokens only."""
    CLIENT_AUTH_METHODS = ["client_secret_basic", "client_secret_post"]

    def query_token(self, token_string, token_type_hint):
        return issued_token(token_string)

    def check_permission(self, token, client, request):
        return token.check_client(client)

    def introspect_token(self, token):
        """Called for a live token only (Authlib answers ``active: false`` for the others)."""
        row = token.row
        expires = row.refresh_expires_at if token.refresh else row.access_expires_at
        return {"active": True, "client_id": row.application.client_id, "scope": row.scope,
                "sub": row.user.subject, "username": row.user.username,
                "token_type": "refresh_token" if token.refresh else "Bearer", "exp": _epoch(expires),
                "iat": _epoch(row.issued_at), "iss": issuer(), "aud": row.application.client_id,
                "sid": row.sid or None}


class UserInfoClaims(UserInfoEndpoint):
    def get_issuer(self):
        return issuer()

    def generate_user_info(self, user, scope):
        return user_claims(user, scope, current_token.row.application)

    def resolve_private_key(self):
        return keys.signing_key()


class Issuer(IssuerParameter):
    def get_issuer(self):
        return issuer()


class EndSession(EndSessionEndpoint):
    """RP-initiated logout: Authlib validates the request (the hint's signature, the registered post-logout
    URIs); the view decides whether to ask the person, and ends the session itself (views.logout)."""

    def get_server_jwks(self):
        return keys.public_key_set()

    def get_algorithms(self):
        return list(keys.ALGORITHMS)


server = AuthorizationServer()
resource_protector = BearerProtector()


def init_app(app):
    server.init_app(app, query_client=query_client, save_token=save_token)
    server.register_token_generator("default", BearerTokenGenerator(
        access_token_generator=lambda **kwargs: secrets.token_urlsafe(32),
        refresh_token_generator=lambda **kwargs: secrets.token_urlsafe(32),
        expires_generator=lambda client, grant_type: current_app.config["OIDC_ACCESS_TOKEN_SECONDS"]))
    server.scopes_supported = list(SCOPES)
    server.register_grant(AuthorizationCodeGrant, [S256Only(required=True), OpenIDCodeExtension(require_nonce=False)])
    server.register_grant(RefreshTokenGrant, [OpenIDRefreshExtension()])
    server.register_grant(TokenExchangeGrant)
    server.register_endpoint(Revocation)
    server.register_endpoint(Introspection)
    server.register_extension(Issuer())
    server.register_endpoint(EndSession)
    resource_protector.register_token_validator(BearerValidator())
    server.register_endpoint(UserInfoClaims(resource_protector=resource_protector))
