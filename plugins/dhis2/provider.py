"""DHIS2 specifics over geologin's shared OAuth base: where the endpoints are for each generation, how
the generation is detected, and how a DHIS2 answer maps to an Identity."""
import re
import time
from dataclasses import replace
from urllib.parse import urljoin, urlsplit

from flask_babel import lazy_gettext as _l

from geologin.providers import (ACCESS_DENIED, Attribute, Check, DiscoveryNotFound, Group, Identity, LoginFailure,
                                OAuth2Provider, ProviderError, ProviderUnavailable, Setting, SettingsError, basic_auth,
                                json_object)

LEGACY = "legacy"
OIDC = "oidc"
AUTO = "auto"
GENERATION_TTL_SECONDS = 300
# Path segments under DHIS2's own address: its apps, the Web API, and the OAuth and login endpoints.
DHIS2_PATH = re.compile(r"/(dhis-web-[^/]*|api|uaa|oauth2|\.well-known|login)(/|$)", re.I)
# Exactly what geologin reads of /api/me; 2.37-2.40 keep roles (and up to 2.37 the username) under
# userCredentials, which 2.42 no longer has.
ME_FIELDS = ("id,username,firstName,surname,email,userGroups[id,name],userRoles[id,name],"
             "organisationUnits[id,name,path]")
LEGACY_ME_FIELDS = ME_FIELDS + ",userCredentials[username,userRoles[id,name]]"
# What geologin reads of each member of a group for ``users import-from`` (up to 2.37 the username sits
# under userCredentials only), and how many users one page holds.
MEMBER_FIELDS = "id,username,firstName,surname,email,userCredentials[username]"
MEMBERS_PAGE_SIZE = 200
MAX_MEMBER_PAGES = 500
UID = re.compile(r"[A-Za-z][A-Za-z0-9]{10}")
# Paths GeoPrism Registry used over its versions (1.0, 1.1, 1.2+); a DHIS2 already configured for it works.
GEOPRISM_CALLBACK_PATHS = ("/cgrsession/ologin", "/api/cgrsession/ologin", "/api/session/ologin")


class DHIS2Provider(OAuth2Provider):
    type = "dhis2"
    display_name = "DHIS2"
    widget_template = "dhis2/widget.html"
    widget_cacheable = True  # the widget uses only its variables, the language and csrf_token()
    setup_template = "dhis2/setup.html"
    callback_paths = GEOPRISM_CALLBACK_PATHS
    lists_directory = True
    serves_api = True
    settings = (
        Setting("base_url", _l("DHIS2 address"), kind="url", required=True,
                help=_l("The address you open DHIS2 at, e.g. https://dhis2.example.org/ or "
                        "https://example.org/dhis/.")),
        Setting("client_id", _l("OAuth2 client ID"), required=True, default="geologin",
                help=_l("The client ID of the OAuth2 client created for geologin in DHIS2.")),
        Setting("client_secret", _l("OAuth2 client secret"), kind="secret", required=True,
                help=_l("Stored encrypted and never shown again.")),
        Setting("generation", _l("DHIS2 OAuth generation"), kind="choice", default=AUTO,
                choices=((AUTO, _l("Detect automatically")), (LEGACY, _l("DHIS2 2.30 to 2.41 (/uaa)")),
                         (OIDC, _l("DHIS2 2.42 and later (OpenID Connect)")))),
        Setting("redirect_uri", _l("Redirect URI"), kind="url",
                help=_l("Leave empty to use this provider's own callback URL. When DHIS2 is already set up for "
                        "GeoPrism Registry, enter PUBLIC_URL/api/session/ologin (or the path it used).")),
    )


    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._generation = None  # fixed for one login by the transaction data

    # -- settings -----------------------------------------------------------------------------------
    @classmethod
    def clean_settings(cls, values, context):
        cleaned = super().clean_settings(values, context)
        errors = {}
        base_url = cleaned.get("base_url")
        if base_url and not base_url.endswith("/"):
            cleaned["base_url"] = base_url + "/"  # every endpoint is built under it, path included
        redirect_uri = cleaned.get("redirect_uri") or None
        cleaned["redirect_uri"] = redirect_uri
        if redirect_uri and context.public_url:
            allowed = [context.public_url + path for path in GEOPRISM_CALLBACK_PATHS]
            if context.callback_url:
                allowed.insert(0, context.callback_url)
            if redirect_uri not in allowed:
                errors["redirect_uri"] = _l("Use this provider's own callback URL or one of GeoPrism Registry's: "
                                            "%(urls)s.", urls=", ".join(allowed))
        elif redirect_uri and not context.public_url:
            errors["redirect_uri"] = _l("Set GEOLOGIN_PUBLIC_URL first: redirect URIs are built from it.")
        if errors:
            raise SettingsError(errors)
        return cleaned

    def redirect_uri(self):
        return self.setting("redirect_uri") or self.default_redirect_uri

    # -- where things are ---------------------------------------------------------------------------
    def base_url(self):
        return self.setting("base_url")

    def discovery_url(self):
        return urljoin(self.base_url(), ".well-known/openid-configuration")

    def generation(self):
        """LEGACY or OIDC: as the admin forced it, else detected from the discovery document (cached)."""
        forced = self.setting("generation") or AUTO
        if self._generation:
            return self._generation
        if forced != AUTO:
            return forced
        cached = self.cache.get("generation")
        if cached and cached[0] > time.monotonic():
            return cached[1]
        try:
            self.metadata()
            detected = OIDC
        except DiscoveryNotFound:  # 2.42+ answers discovery; legacy servers say 404
            detected = LEGACY
        self.cache["generation"] = (time.monotonic() + GENERATION_TTL_SECONDS, detected)
        return detected

    def expected_issuers(self):
        # DHIS2's issuer is its configured server.base.url, with or without the trailing slash.
        return (self.base_url(), self.base_url().rstrip("/"))

    def endpoints(self):
        if self.generation() == OIDC:
            return self.metadata()
        base = self.base_url()
        return {"authorization_endpoint": urljoin(base, "uaa/oauth/authorize"),
                "token_endpoint": urljoin(base, "uaa/oauth/token")}

    def scopes(self):
        # Never "email": DHIS2 fails the token request for users without an email address.
        return ["openid", "username"] if self.generation() == OIDC else []

    def basic_auth_header(self):
        # Spring Security OAuth 2 (legacy) compares the Basic credentials without URL-decoding them.
        return basic_auth(self.client_id(), self.client_secret(), form_encode=self.generation() == OIDC)

    # -- the login --------------------------------------------------------------------------------
    def authorization_url(self, request):
        request.data["generation"] = self.generation()
        return super().authorization_url(request)

    def complete_login(self, callback):
        self._generation = callback.data.get("generation") or None
        return super().complete_login(callback)

    def check_authorization_response(self, params):
        try:
            return super().check_authorization_response(params)
        except LoginFailure as failure:
            if failure.reason != ACCESS_DENIED or self.generation() != OIDC:
                raise
            # 2.42+ (Spring Authorization Server) treats a consent page sent without "username" ticked,
            # or cancelled, as a refusal and says only "OAuth 2.0 Parameter: client_id".
            raise LoginFailure(
                'the user refused on the DHIS2 consent page ("username" not ticked, or Cancel); DHIS2 said '
                f"{params.get('error_description', '')[:200]!r}", reason=ACCESS_DENIED,
                hint=_l("On DHIS2's consent page, tick “username” and then submit: DHIS2 takes the page "
                        "without it as a refusal.")) from None

    def identity_from(self, tokens, claims):
        if claims is not None:
            username = claims.get("username") or claims["sub"]
            if not isinstance(username, str) or not username:
                raise ProviderError("id_token username claim is not a string")
            identity = Identity(subject=claims["sub"], subject_scheme="dhis2-sub", username=username,
                                email=_str(claims.get("email")), claims=claims,
                                raw={"id_token": claims})
            return self.with_memberships_of_2_42(identity, tokens["access_token"])
        return self.identity_from_me(tokens["access_token"])

    def with_memberships_of_2_42(self, identity, access_token):
        """``identity`` with the groups, roles and org units /api/me states. 2.42 accepts its own access
        token on /api only when configured to (2.42.5+: with the "username" scope); when it refuses, the
        login goes on with what the id_token says and the audit log says why the memberships are unknown."""
        try:
            me = self.me(access_token, ME_FIELDS)
        except LoginFailure as failure:
            return replace(identity, remarks=(
                f"groups, roles and org units unknown: {failure.detail} (DHIS2 2.42 accepts its access tokens "
                f"on /api only with JWT authentication configured, 2.42.5+ with the username scope)",))
        raw = {**identity.raw, "api/me": me}
        if me.get("username") != identity.username:
            return replace(identity, raw=raw, remarks=("groups, roles and org units unknown: /api/me named "
                                                       "another user than the id_token",))
        return replace(identity, raw=raw, **memberships(me))

    def me(self, access_token, fields):
        """/api/me with ``fields`` (only what geologin reads) as a JSON object."""
        response = self.http.get(urljoin(self.base_url(), "api/me"), params={"fields": fields},
                                 headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"})
        if response.status_code != 200:
            raise ProviderError(f"/api/me answered HTTP {response.status_code}")
        return json_object(response, "/api/me")

    def identity_from_me(self, access_token):
        me = self.me(access_token, LEGACY_ME_FIELDS)
        credentials = me.get("userCredentials") if isinstance(me.get("userCredentials"), dict) else {}
        username = me.get("username") or credentials.get("username")  # up to 2.37: only userCredentials
        uid = me.get("id")
        if not isinstance(username, str) or not username:
            raise ProviderError("/api/me has no username")
        if not isinstance(uid, str) or not uid:
            raise ProviderError("/api/me has no user id")
        name = " ".join(p for p in (_str(me.get("firstName")), _str(me.get("surname"))) if p)
        return Identity(subject=uid, subject_scheme="dhis2-uid", username=username, display_name=name or None,
                        email=_str(me.get("email")),
                        claims={k: me[k] for k in ("id", "username", "firstName", "surname") if k in me},
                        raw={"api/me": me}, **memberships(me))

    def api_url(self, path):
        return urljoin(self.base_url(), "api/" + path)

    # -- the directory ----------------------------------------------------------------------------
    def directory_members(self, group_id, credentials):
        """The users of DHIS2 user group ``group_id`` (/api/users filtered on it, page by page), asked with
        the administrator's username and password or personal access token (``ApiToken d2pat_...``)."""
        if not isinstance(group_id, str) or not UID.fullmatch(group_id):
            raise ProviderError(f"{str(group_id)[:40]!r} is not a DHIS2 user group id (11 letters and digits)")
        if credentials.token:
            authorization = f"ApiToken {credentials.token}"
        else:
            authorization = basic_auth(credentials.username, credentials.password, form_encode=False)
        members, page = [], 1
        while True:
            response = self.http.get(urljoin(self.base_url(), "api/users"), headers={
                "Authorization": authorization, "Accept": "application/json"}, params={
                "filter": f"userGroups.id:eq:{group_id}", "fields": MEMBER_FIELDS, "paging": "true",
                "page": str(page), "pageSize": str(MEMBERS_PAGE_SIZE), "order": "username:asc"})
            if response.status_code in (401, 403):
                raise ProviderError(f"DHIS2 refused these credentials for /api/users (HTTP {response.status_code})")
            if response.status_code != 200:
                raise ProviderError(f"/api/users answered HTTP {response.status_code}")
            answer = json_object(response, "/api/users")
            users = answer.get("users")
            if not isinstance(users, list):
                raise ProviderError("/api/users has no list of users")
            members += [member for member in map(_member, users) if member is not None]
            pager = answer.get("pager") if isinstance(answer.get("pager"), dict) else {}
            count = pager.get("pageCount")
            if not isinstance(count, int) or page >= min(count, MAX_MEMBER_PAGES) or not users:
                return members
            page += 1

    # -- administration -----------------------------------------------------------------------------
    def test_connection(self):
        """DHIS2 must first answer as DHIS2 at the address (item 16): only then is the client secret sent
        (item 13), so the check never hands it to whatever server an address happens to reach."""
        self.forget_metadata()
        self.cache.pop("generation", None)
        name = _l("Server reachable")
        try:
            version, identified = self._identify(self.base_url())
        except (ProviderError, ProviderUnavailable) as failure:
            return [Check(name, False, failure.detail)]
        if not identified:
            return [Check(name, False, self._not_dhis2_message())]
        checks = [Check(name, True, _l("DHIS2 %(version)s answers at %(url)s.", url=self.base_url(), version=version)
                        if version else _l("DHIS2 answers at %(url)s.", url=self.base_url()))]
        try:
            generation = self.generation()
        except (ProviderError, ProviderUnavailable) as failure:
            return checks + [Check(_l("OAuth generation"), False, failure.detail)]
        if generation == LEGACY and version and _version_tuple(version) >= (2, 42):
            return checks + [Check(_l("OAuth generation"), False,
                                   _l("DHIS2 %(version)s should publish %(url)s but does not: check that its "
                                      "server.base.url is this address.", version=version,
                                      url=self.discovery_url()))]
        checks.append(Check(_l("OAuth generation"), True,
                            _l("2.42+ (OpenID Connect), issuer %(issuer)s", issuer=self.endpoints()["issuer"])
                            if generation == OIDC else _l("legacy (/uaa), DHIS2 2.30 to 2.41")))
        checks.append(self.check_client_credentials("DHIS2"))
        return checks

    def check_refresh_grant(self):
        """Legacy (/uaa): a refresh with a token that cannot exist tells, without any user, whether the client
        has the refresh_token grant (Spring Security OAuth checks the grant type first: 401 "Unauthorized grant
        type", else 400 invalid_grant). 2.42+ looks the token up first and answers invalid_grant either way, and
        its client registration is visible to DHIS2 administrators only: None (the core judges from logins)."""
        if self.generation() != LEGACY:
            return None
        name = _l("Refresh token grant")
        try:
            response = self._token_request({"grant_type": "refresh_token", "refresh_token": "geologin-probe"})
        except (ProviderError, ProviderUnavailable) as failure:
            return Check(name, False, failure.detail)
        try:
            answer = json_object(response, "token endpoint")
        except ProviderError:
            answer = {}
        error, description = answer.get("error"), str(answer.get("error_description") or "")
        if response.status_code == 400 and error == "invalid_grant":
            return Check(name, True, _l("DHIS2 lets geologin's client refresh the tokens it keeps."))
        if response.status_code == 401 and error == "invalid_client" and "grant type" in description.lower():
            return Check(name, False, _l("geologin's OAuth2 client in DHIS2 does not have the Refresh token grant: "
                                         "tick “Refresh token” in its grant types, or kept tokens cannot be "
                                         "refreshed when they expire."))
        return Check(name, None, _l("Not checked: DHIS2 answered HTTP %(status)s %(error)s to the probe.",
                                    status=response.status_code, error=str(error or "")[:60]))

    def _identify(self, base):
        """(version or None, whether ``base`` answers as DHIS2): ``api/system/ping`` says "pong" (every
        version, no login needed) or ``api/loginConfig`` names an ``apiVersion`` (2.41+)."""
        version = self._version(base)
        response = self.http.get(urljoin(base, "api/system/ping"), headers={"Accept": "text/plain, */*"})
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        pong = (response.status_code == 200 and content_type in ("text/plain", "application/json")
                and response.content.strip().strip(b'"') == b"pong")
        return version, bool(pong or version)

    def _not_dhis2_message(self):
        message = _l("This is not the address of a DHIS2 server: use the address you open DHIS2 at, without "
                     "/dhis-web-... or /api/.")
        corrected = corrected_base_url(self.base_url())
        if not corrected:
            return message
        try:
            answers = self._identify(corrected)[1]
        except (ProviderError, ProviderUnavailable):
            answers = False
        if answers:
            return _l("%(message)s DHIS2 answers at %(url)s: use that address.", message=message, url=corrected)
        return _l("%(message)s Did you mean %(url)s?", message=message, url=corrected)

    def _version(self, base=None):
        try:
            response = self.http.get(urljoin(base or self.base_url(), "api/loginConfig"),
                                     headers={"Accept": "application/json"})
            if response.status_code == 200:
                value = json_object(response, "loginConfig").get("apiVersion")
                return value if isinstance(value, str) and value else None
        except ProviderError:
            pass
        return None

    def setup_context(self):
        redirect_uri = self.redirect_uri()
        return {"redirect_uri": redirect_uri, "client_id": self.client_id(), "base_url": self.base_url(),
                "generation": self.setting("generation") or AUTO,
                "redirect_host_note": urlsplit(redirect_uri).scheme if redirect_uri else None}

    def admin_action(self, name, form):
        if name != "bcrypt":
            raise LookupError(name)
        import bcrypt

        if not self.client_secret():
            return {"error": _l("No client secret is stored yet.")}
        hashed = bcrypt.hashpw(self.client_secret().encode(), bcrypt.gensalt(rounds=10)).decode()
        return {"bcrypt_hash": hashed}


def memberships(me):
    """The groups, roles and org units of an /api/me answer as Identity fields. Roles sit at the top from
    2.38 and under userCredentials up to 2.40 (both read, the same role counted once by the core)."""
    remarks = []

    def items(value, where):
        if value is None:
            return []
        if not isinstance(value, list):
            remarks.append(f"/api/me {where} is not a list")
            return []
        return [item for item in value if isinstance(item, dict)]

    credentials = me.get("userCredentials") if isinstance(me.get("userCredentials"), dict) else {}
    groups = tuple(Group(id=g.get("id"), name=g.get("name")) for g in items(me.get("userGroups"), "userGroups"))
    roles = tuple(Attribute(id=r.get("id"), name=r.get("name"))
                  for r in items(me.get("userRoles"), "userRoles")
                  + items(credentials.get("userRoles"), "userCredentials.userRoles"))
    units = tuple(Attribute(id=u.get("id"), name=u.get("name"), path=u.get("path"))
                  for u in items(me.get("organisationUnits"), "organisationUnits"))
    return {"groups": groups, "attributes": {"roles": roles, "org_units": units}, "remarks": tuple(remarks)}


def _member(user):
    """One /api/users entry as an Identity, or None when it names no account."""
    if not isinstance(user, dict):
        return None
    credentials = user.get("userCredentials") if isinstance(user.get("userCredentials"), dict) else {}
    username, uid = _str(user.get("username")) or _str(credentials.get("username")), _str(user.get("id"))
    if not username or not uid:
        return None
    name = " ".join(p for p in (_str(user.get("firstName")), _str(user.get("surname"))) if p)
    return Identity(subject=uid, subject_scheme="dhis2-uid", username=username, display_name=name or None,
                    email=_str(user.get("email")))


def corrected_base_url(url):
    """``url`` cut before the first path segment DHIS2 itself serves (an app, the API, the OAuth endpoints),
    i.e. the address DHIS2 is opened at; None when ``url`` has no such segment."""
    parts = urlsplit(url)
    match = DHIS2_PATH.search(parts.path)
    if not match:
        return None
    return f"{parts.scheme}://{parts.netloc}{parts.path[:match.start() + 1]}"


def _version_tuple(text):
    numbers = re.findall(r"\d+", text.split("-")[0])[:3]
    return tuple(int(n) for n in numbers)


def _str(value):
    return value if isinstance(value, str) and value else None
