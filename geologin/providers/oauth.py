"""The shared OAuth 2 / OpenID Connect base for plugins: authorization URL with PKCE, the authorization
response checks (error, code, RFC 9207 ``iss``), the code exchange, discovery, and id_token validation.
A plugin says where its endpoints are and maps the result to an Identity; the security lives here."""
import base64
import ipaddress
import re
import time
from dataclasses import replace
from urllib.parse import quote, urlsplit

from authlib.common.urls import add_params_to_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge  # noqa: F401  (re-exported for plugins)
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from flask_babel import lazy_gettext as _l

from .base import (ACCESS_DENIED, REFRESH_REFUSED, Check, DiscoveryNotFound, LoginFailure, Provider, ProviderError,
                   ProviderUnavailable, Setting, SettingsError, Tokens)
from .http import json_object

# Asymmetric algorithms only: an HS256 token "signed" with the server's public key must never verify.
ACCESS_TOKEN = re.compile(r"[\x21-\x7e]{1,8192}")  # visible ASCII (RFC 6750's b64token and then some)
SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
ID_TOKEN_LEEWAY_SECONDS = 60
METADATA_TTL_SECONDS = 600
# A failed discovery is remembered this long, so each click on the login button does not fetch it again.
METADATA_FAILURE_TTL_SECONDS = 30
ENDPOINT_KEYS = ("authorization_endpoint", "token_endpoint", "jwks_uri", "userinfo_endpoint", "end_session_endpoint")
JWKS_REFETCH_INTERVAL_SECONDS = 60
HOST_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*(:[0-9]{1,5})?")
DEFAULT_PORTS = {"https": 443, "http": 80}
ENDPOINT_HOSTS = Setting(
    "endpoint_hosts", _l("Other hosts of the server"),
    help=_l("Only when the server's discovery document names endpoints on other hosts than its issuer, e.g. "
            "oauth2.googleapis.com www.googleapis.com for Google. Separated by spaces; leave empty otherwise."))


class OAuth2Provider(Provider):
    """Authorization-code flow with PKCE S256 (and OpenID Connect when ``uses_openid()``).

    Subclasses implement ``endpoints()`` (authorize/token/... URLs, maybe from ``metadata()``),
    ``client_id()``, ``client_secret()`` and ``identity_from(tokens, claims)``."""

    token_auth_method = "client_secret_basic"  # or "client_secret_post"

    def __init_subclass__(cls, **kwargs):
        # Every OAuth plugin gets the "other hosts" setting, since the discovery checks live here.
        super().__init_subclass__(**kwargs)
        if ENDPOINT_HOSTS.name not in {s.name for s in cls.settings}:
            cls.settings = (*cls.settings, ENDPOINT_HOSTS)

    @classmethod
    def clean_settings(cls, values, context):
        cleaned = super().clean_settings(values, context)
        hosts = (cleaned.get(ENDPOINT_HOSTS.name) or "").replace(",", " ").lower().split()
        bad = [host for host in hosts if not HOST_NAME.fullmatch(host)]
        if bad:
            raise SettingsError({ENDPOINT_HOSTS.name: _l("Enter host names only, such as oauth2.googleapis.com "
                                                         "(not %(value)s).", value=bad[0][:100])})
        cleaned.pop(ENDPOINT_HOSTS.name, None)
        if hosts:  # stored only when set, so plugins' own settings read as before
            cleaned[ENDPOINT_HOSTS.name] = " ".join(dict.fromkeys(hosts))
        return cleaned

    # -- what subclasses provide ------------------------------------------------------------------
    def endpoints(self):
        """A dict with ``authorization_endpoint`` and ``token_endpoint`` (and for OIDC ``issuer``,
        ``jwks_uri``, optionally ``userinfo_endpoint``)."""
        raise NotImplementedError

    def client_id(self):
        return self.setting("client_id")

    def client_secret(self):
        return self.secret("client_secret")

    def scopes(self):
        return []

    def uses_openid(self):
        return "openid" in self.scopes()

    def identity_from(self, tokens, claims):
        """Map the token response (and validated id_token claims, or None) to an Identity."""
        raise NotImplementedError

    def iss_parameter_required(self):
        """RFC 9207: the server promised to send ``iss`` with every authorization response."""
        return bool(self.endpoints().get("authorization_response_iss_parameter_supported"))

    # -- the flow -----------------------------------------------------------------------------------
    def authorization_url(self, request):
        endpoints = self.endpoints()
        params = {
            "response_type": "code",
            "client_id": self.client_id(),
            "redirect_uri": request.redirect_uri,
            "state": request.state,
            "code_challenge": request.code_challenge,
            "code_challenge_method": request.code_challenge_method,
        }
        if self.scopes():
            params["scope"] = " ".join(self.scopes())
        if self.uses_openid():
            params["nonce"] = request.nonce
        return add_params_to_uri(endpoints["authorization_endpoint"], params)

    def complete_login(self, callback):
        code = self.check_authorization_response(callback.params)
        tokens = self.exchange_code(code, callback)
        claims = None
        if self.uses_openid():
            if not isinstance(tokens.get("id_token"), str):
                raise ProviderError("token response has no id_token although openid was asked")
            claims = self.validate_id_token(tokens["id_token"], callback.nonce, tokens.get("access_token"))
        identity = self.identity_from(tokens, claims)
        return identity if identity.tokens is not None else replace(identity, tokens=issued_tokens(tokens))

    def check_authorization_response(self, params):
        """Return the code, or raise: the user denied, the server reported an error, or a mix-up."""
        error = params.get("error")
        if error:
            description = params.get("error_description", "")
            if error == "access_denied":
                raise LoginFailure(f"the user refused at the server (it said: {description[:200]!r})",
                                   reason=ACCESS_DENIED)
            raise LoginFailure(f"server returned error={error!r} {description!r}")
        issuer = self.endpoints().get("issuer")
        if "iss" in params:
            if issuer is None or params["iss"] != issuer:
                raise ProviderError(f"authorization response iss {params['iss']!r} is not {issuer!r} (mix-up)")
        elif self.iss_parameter_required():
            raise ProviderError("authorization response lacks the iss parameter the server promised")
        code = params.get("code")
        if not code:
            raise ProviderError("authorization response has neither code nor error")
        if len(code) > 4096:
            raise ProviderError("authorization code is implausibly long")
        return code

    def exchange_code(self, code, callback):
        """POST the code once (never retried) and return the token response as a dict."""
        response = self._token_request({"grant_type": "authorization_code", "code": code,
                                        "redirect_uri": callback.redirect_uri, "code_verifier": callback.code_verifier})
        if response.status_code == 401:
            raise ProviderError("token endpoint rejected the client credentials (HTTP 401)")
        if response.status_code != 200:
            raise ProviderError(f"token endpoint answered HTTP {response.status_code}: "
                                f"{_error_summary(response)}")
        return _checked_token_response(response)

    def refresh(self, refresh_token):
        """New Tokens for a kept ``refresh_token`` (grant_type=refresh_token, with the client's authentication,
        sent once). A refused refresh token raises LoginFailure with reason REFRESH_REFUSED; the detail never
        repeats what the server said about it, since servers echo the token (Spring: "Invalid refresh token: …")."""
        response = self._token_request({"grant_type": "refresh_token", "refresh_token": refresh_token})
        if response.status_code == 400:
            try:
                error = json_object(response, "token endpoint").get("error")
            except ProviderError:
                error = None
            if error == "invalid_grant":
                raise LoginFailure("the token endpoint refused the refresh token (invalid_grant: revoked or expired)",
                                   reason=REFRESH_REFUSED)
            raise ProviderError(f"token endpoint answered HTTP 400 error={str(error)[:60]!r} to the refresh")
        if response.status_code == 401:
            raise ProviderError("token endpoint rejected the client credentials or the refresh_token grant (HTTP 401)")
        if response.status_code != 200:
            raise ProviderError(f"token endpoint answered HTTP {response.status_code} to the refresh")
        return issued_tokens(_checked_token_response(response))

    def _token_request(self, form):
        """POST ``form`` to the token endpoint with the client's authentication (never retried)."""
        form = dict(form)
        headers = {"Accept": "application/json"}
        if self.token_auth_method == "client_secret_post":
            form.update(client_id=self.client_id(), client_secret=self.client_secret())
        else:
            headers["Authorization"] = self.basic_auth_header()
            form["client_id"] = self.client_id()
        return self.http.post(self.endpoints()["token_endpoint"], data=form, headers=headers)

    def basic_auth_header(self):
        return basic_auth(self.client_id(), self.client_secret())

    # -- OpenID Connect ----------------------------------------------------------------------------
    def discovery_url(self):
        return None

    def expected_issuers(self):
        """The exact ``issuer`` values the discovery document may report (item 25)."""
        raise NotImplementedError

    def metadata(self):
        """Discovery document, cached; refused unless its ``issuer`` is exactly an expected one and every
        endpoint it names is one geologin may call (item 45). A failure is remembered briefly too."""
        cached = self.cache.get("metadata")
        if cached and cached[0] > time.monotonic():
            self._trust_endpoints(cached[1])
            return cached[1]
        failed = self.cache.get("metadata_failure")
        if failed and failed[0] > time.monotonic():
            raise _copy_failure(failed[1])
        try:
            metadata = self._fetch_metadata()
        except LoginFailure as failure:
            self.cache["metadata_failure"] = (time.monotonic() + METADATA_FAILURE_TTL_SECONDS, failure)
            raise
        self.cache.pop("metadata_failure", None)
        self.cache["metadata"] = (time.monotonic() + METADATA_TTL_SECONDS, metadata)
        self._trust_endpoints(metadata)
        return metadata

    def forget_metadata(self):
        """Drop the cached discovery result, good or bad (Test connection always asks the server again)."""
        self.cache.pop("metadata", None)
        self.cache.pop("metadata_failure", None)

    def _fetch_metadata(self):
        response = self.http.get(self.discovery_url(), headers={"Accept": "application/json"})
        if response.status_code == 404:
            raise DiscoveryNotFound("discovery document answered HTTP 404")
        if response.status_code != 200:
            raise ProviderError(f"discovery document answered HTTP {response.status_code}")
        metadata = json_object(response, "discovery document")
        if metadata.get("issuer") not in self.expected_issuers():
            raise ProviderError(f"discovery issuer {metadata.get('issuer')!r} is not "
                                f"{' or '.join(map(repr, self.expected_issuers()))}")
        for key in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            if not isinstance(metadata.get(key), str):
                raise ProviderError(f"discovery document lacks {key}")
        for key in ENDPOINT_KEYS:
            if metadata.get(key) is not None:
                problem = self.endpoint_problem(metadata["issuer"], metadata[key])
                if problem:
                    raise ProviderError(f"discovery document's {key} refused: {problem}")
        return metadata

    def extra_endpoint_hosts(self):
        """Hosts besides the issuer's that the admin allowed the discovery document to name."""
        return {_host_key(f"https://{host}") for host in (self.setting(ENDPOINT_HOSTS.name) or "").split()}

    def endpoint_problem(self, issuer, endpoint):
        """Why geologin must not call (or send a browser to) ``endpoint`` named by ``issuer``'s discovery
        document, or None: not https outside development, another host than the issuer's unless the admin
        allowed it, or a private address when the issuer is public."""
        if not isinstance(endpoint, str) or not endpoint:
            return "not a URL"
        parts = urlsplit(endpoint)
        if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
            return f"{endpoint[:200]!r} is not an http(s) URL"
        if parts.scheme != "https" and not self.allow_insecure_http:
            return f"{endpoint[:200]!r} is not https"
        if parts.username is not None or parts.password is not None or parts.fragment:
            return f"{endpoint[:200]!r} carries credentials or a fragment"
        host = _host_key(endpoint)
        if host != _host_key(issuer) and host not in self.extra_endpoint_hosts():
            return (f"{host[0]} is not the issuer's host and is not among the server's other hosts "
                    f"({ENDPOINT_HOSTS.name})")
        if _private_address(parts.hostname) and not _private_address(urlsplit(issuer).hostname or "") \
                and not self.allow_insecure_http:
            return f"{parts.hostname} is a private address but the issuer is not"
        return None

    def _trust_endpoints(self, metadata):
        # Endpoints of a document whose issuer is exactly the configured one, each checked by
        # endpoint_problem, are the server's own (item 45).
        self.http.allow(*(metadata.get(key) for key in ENDPOINT_KEYS))

    def jwks(self, force=False):
        """The server's key set, cached. ``force`` refetches (an unknown ``kid``: keys were rotated), but
        at most once a minute, so forged tokens with random kids cannot make us hammer the server."""
        cached = self.cache.get("jwks")
        now = time.monotonic()
        if cached and not force:
            return cached
        if cached and force:
            if now - self.cache.get("jwks_forced_at", -JWKS_REFETCH_INTERVAL_SECONDS) < JWKS_REFETCH_INTERVAL_SECONDS:
                return cached
            self.cache["jwks_forced_at"] = now
        response = self.http.get(self.endpoints()["jwks_uri"], headers={"Accept": "application/json"})
        if response.status_code != 200:
            raise ProviderError(f"JWKS answered HTTP {response.status_code}")
        try:
            key_set = KeySet.import_key_set(json_object(response, "JWKS"))
        except (JoseError, ValueError, TypeError, KeyError) as error:
            raise ProviderError(f"JWKS is not a valid key set: {type(error).__name__}") from None
        self.cache["jwks"] = key_set
        return key_set

    def id_token_algorithms(self):
        offered = self.endpoints().get("id_token_signing_alg_values_supported") or ["RS256"]
        return [alg for alg in offered if alg in SIGNING_ALGORITHMS] or ["RS256"]

    def validate_id_token(self, id_token, nonce, access_token=None):
        """Signature (asymmetric only, keys from JWKS with one rate-limited refetch on an unknown
        ``kid``), then iss, aud/azp, exp/iat with a small leeway, nonce, at_hash."""
        algorithms = self.id_token_algorithms()
        try:
            try:
                token = jwt.decode(id_token, self.jwks(), algorithms=algorithms)
            except InvalidKeyIdError:
                token = jwt.decode(id_token, self.jwks(force=True), algorithms=algorithms)
        except InvalidKeyIdError:
            raise ProviderError("id_token signed with a key the server does not publish") from None
        except (JoseError, ValueError, TypeError, KeyError) as error:
            raise ProviderError(f"id_token rejected: {type(error).__name__}: {error}") from None
        params = {"nonce": nonce, "client_id": self.client_id()}
        if access_token:
            params["access_token"] = access_token
        options = {"iss": {"essential": True, "values": [self.endpoints()["issuer"]]},
                   "aud": {"essential": True}, "nonce": {"essential": True}}
        claims = CodeIDToken(token.claims, token.header, options, params)
        try:
            claims.validate(leeway=ID_TOKEN_LEEWAY_SECONDS)
            _check_audience(claims, self.client_id())
        except (JoseError, ValueError, TypeError) as error:
            raise ProviderError(f"id_token rejected: {type(error).__name__}: {error}") from None
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise ProviderError("id_token has no sub")
        return dict(claims)

    def end_session_url(self):
        """OpenID Connect RP-initiated logout: the server's ``end_session_endpoint`` with our client id
        and where to come back, or None when the server offers none."""
        endpoint = self.endpoints().get("end_session_endpoint")
        if not isinstance(endpoint, str) or not endpoint:
            return None
        params = {"client_id": self.client_id()}
        if self.post_logout_redirect_uri:
            params["post_logout_redirect_uri"] = self.post_logout_redirect_uri
        return add_params_to_uri(endpoint, params)

    def check_client_credentials(self, server_name):
        """A connection-test line: exchange a code that cannot exist. Right credentials -> invalid_grant,
        wrong ones -> 401 or invalid_client."""
        name = _l("Client credentials")
        try:
            token_endpoint = self.endpoints()["token_endpoint"]
            response = self.http.post(token_endpoint,
                                      data={"grant_type": "authorization_code", "code": "geologin-probe",
                                            "redirect_uri": self.redirect_uri() or "", "client_id": self.client_id()},
                                      headers={"Authorization": self.basic_auth_header(),
                                               "Accept": "application/json"})
        except (ProviderError, ProviderUnavailable) as failure:
            return Check(name, False, failure.detail)
        try:
            error = json_object(response, "token endpoint").get("error")
        except ProviderError:
            error = None
        if response.status_code == 401 or error == "invalid_client":
            return Check(name, False, _l("%(server)s rejected the client ID or secret (HTTP %(status)s).",
                                         server=server_name, status=response.status_code))
        if response.status_code == 400 and error == "invalid_grant":
            return Check(name, True, _l("%(server)s accepts the client ID and secret.", server=server_name))
        if response.status_code in (404, 405):
            return Check(name, False, _l("There is no token endpoint at %(url)s (HTTP %(status)s): check the "
                                         "server's address.", url=token_endpoint, status=response.status_code))
        return Check(name, False, _l("Unexpected answer from the token endpoint: HTTP %(status)s %(error)s",
                                     status=response.status_code, error=error or ""))

    def userinfo(self, access_token, id_token_claims=None):
        """The userinfo endpoint's claims; refused when its ``sub`` is not the id_token's."""
        endpoint = self.endpoints().get("userinfo_endpoint")
        if not endpoint:
            raise ProviderError("server has no userinfo endpoint")
        response = self.http.get(endpoint, headers={"Authorization": f"Bearer {access_token}",
                                                    "Accept": "application/json"})
        if response.status_code != 200:
            raise ProviderError(f"userinfo answered HTTP {response.status_code}")
        info = json_object(response, "userinfo")
        if id_token_claims is not None and info.get("sub") != id_token_claims.get("sub"):
            raise ProviderError("userinfo sub differs from the id_token sub")
        return info


def _host_key(url):
    """(host, port) of ``url`` with the scheme's default port filled in, for comparing servers."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = -1
    return ((parts.hostname or "").lower(), port or DEFAULT_PORTS.get(parts.scheme))


def _private_address(host):
    """True when ``host`` is an IP literal that is loopback, private, link-local or otherwise not public."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return not address.is_global


def _copy_failure(failure):
    """A fresh exception like the remembered ``failure`` (an exception object must not be raised twice
    from several threads), keeping what callers read: its class (DiscoveryNotFound stays one), detail and reason."""
    return type(failure)(f"{failure.detail} (remembered for {METADATA_FAILURE_TTL_SECONDS} s)", reason=failure.reason)


def _check_audience(claims, client_id):
    audience = claims.get("aud")
    audiences = [audience] if isinstance(audience, str) else audience
    if not isinstance(audiences, list) or client_id not in audiences:
        raise ValueError("aud does not contain the client id")
    if len(audiences) > 1 and claims.get("azp") != client_id:
        raise ValueError("several audiences and azp is not the client id")


def basic_auth(username, password, form_encode=True):
    """HTTP Basic credentials. RFC 6749 2.3.1 form-urlencodes them first; some servers (Spring Security
    OAuth 2.x) compare them undecoded, hence ``form_encode=False``."""
    if form_encode:
        username, password = quote(username or "", safe=""), quote(password or "", safe="")
    raw = f"{username or ''}:{password or ''}"
    return "Basic " + base64.b64encode(raw.encode()).decode()


def _checked_token_response(response):
    """The token response as a dict, refused unless it has a usable bearer access token and a numeric
    expires_in (when present)."""
    tokens = json_object(response, "token response")
    if not isinstance(tokens.get("access_token"), str) or not tokens["access_token"]:
        raise ProviderError("token response has no access_token")
    if not ACCESS_TOKEN.fullmatch(tokens["access_token"]):  # it goes into an Authorization header
        raise ProviderError("token response has an access_token with characters a bearer token cannot have")
    if not isinstance(tokens.get("token_type"), str) or tokens["token_type"].lower() != "bearer":
        raise ProviderError(f"token response has token_type {tokens.get('token_type')!r}, not Bearer")
    if "expires_in" in tokens and (isinstance(tokens["expires_in"], bool)
                                   or not isinstance(tokens["expires_in"], (int, float))):
        raise ProviderError("token response has a non-numeric expires_in")
    return tokens


def _error_summary(response):
    try:
        data = json_object(response, "error")
    except ProviderError:
        return "(not a JSON error)"
    return f"error={data.get('error')!r} description={data.get('error_description')!r}"


def issued_tokens(response):
    """The Tokens of a checked token response (exchange_code checked the access token and expires_in)."""
    refresh = response.get("refresh_token")
    scope = response.get("scope")
    return Tokens(access_token=response["access_token"],
                  refresh_token=refresh if isinstance(refresh, str) and refresh else None,
                  expires_in=response.get("expires_in"), scope=scope if isinstance(scope, str) else None)
