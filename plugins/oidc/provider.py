"""A generic OpenID Connect relying party: settings, which claim is the local username, and the setup page."""
import re

from flask_babel import lazy_gettext as _l

from geologin.providers import (Check, Group, Identity, OAuth2Provider, ProviderError, ProviderUnavailable, Setting,
                                SettingsError)

DEFAULT_SCOPES = "openid profile email"
SCOPE_TOKEN = re.compile(r"[\x21\x23-\x5b\x5d-\x7e]+")  # RFC 6749 3.3 scope-token
CLAIM_NAME = re.compile(r"[\x21-\x7e]{1,200}")


class OIDCProvider(OAuth2Provider):
    type = "oidc"
    display_name = "OpenID Connect"
    setup_template = "oidc/setup.html"
    settings = (
        Setting("issuer", _l("Issuer URL"), kind="url", required=True,
                help=_l("Exactly as the server's discovery document states it, e.g. "
                        "https://id.example.org/realms/health (geologin reads ISSUER/.well-known/openid-configuration).")),
        Setting("client_id", _l("Client ID"), required=True),
        Setting("client_secret", _l("Client secret"), kind="secret", required=True,
                help=_l("Stored encrypted and never shown again.")),
        Setting("scopes", _l("Scopes"), default=DEFAULT_SCOPES,
                help=_l("Separated by spaces; openid is required.")),
        Setting("username_claim", _l("Username claim"), default="preferred_username",
                help=_l("The claim whose value must equal the local username: preferred_username, email, sub or "
                        "any claim the server sends.")),
        Setting("groups_claim", _l("Groups claim"), default="groups",
                help=_l("The claim listing the person's groups at the server (a list of names, or one name), read "
                        "from the id_token or userinfo. Leave empty to take no groups.")),
        Setting("rp_logout", _l("Log out at the server too"), kind="bool", default=True,
                help=_l("When the server offers it (end_session_endpoint), logging out of geologin also ends the "
                        "session at the server.")),
    )

    @classmethod
    def clean_settings(cls, values, context):
        cleaned = super().clean_settings(values, context)
        errors = {}
        scopes = (cleaned.get("scopes") or DEFAULT_SCOPES).replace(",", " ").split()
        if "openid" not in scopes:
            errors["scopes"] = _l("The scopes must include openid.")
        elif not all(SCOPE_TOKEN.fullmatch(scope) for scope in scopes):
            errors["scopes"] = _l("A scope cannot contain quotes, backslashes or characters outside ASCII.")
        cleaned["scopes"] = " ".join(dict.fromkeys(scopes))
        claim = cleaned.get("username_claim") or "preferred_username"
        if not CLAIM_NAME.fullmatch(claim):
            errors["username_claim"] = _l("Enter a claim name without spaces, such as preferred_username.")
        cleaned["username_claim"] = claim
        groups_claim = cleaned.get("groups_claim") or ""
        if groups_claim and not CLAIM_NAME.fullmatch(groups_claim):
            errors["groups_claim"] = _l("Enter a claim name without spaces, such as groups, or nothing.")
        cleaned["groups_claim"] = groups_claim
        cleaned["rp_logout"] = bool(cleaned.get("rp_logout"))
        if errors:
            raise SettingsError(errors)
        return cleaned

    # -- where things are ---------------------------------------------------------------------------
    def issuer(self):
        return self.setting("issuer")

    def discovery_url(self):
        return self.issuer().rstrip("/") + "/.well-known/openid-configuration"

    def expected_issuers(self):
        return (self.issuer(),)

    def endpoints(self):
        return self.metadata()

    def scopes(self):
        return (self.setting("scopes") or DEFAULT_SCOPES).split()

    def username_claim(self):
        return self.setting("username_claim") or "preferred_username"

    # -- the login --------------------------------------------------------------------------------
    def identity_from(self, tokens, claims):
        claim = self.username_claim()
        needed = (claim, "email_verified") if claim == "email" else (claim,)
        raw = {"id_token": claims}
        if any(name not in claims for name in needed) and self.endpoints().get("userinfo_endpoint"):
            # Many servers put only sub in the id_token when an access token can fetch the rest.
            raw["userinfo"] = self.userinfo(tokens["access_token"], claims)
            claims = {**raw["userinfo"], **claims}
        username = claims.get(claim)
        if not isinstance(username, str) or not username:
            raise ProviderError(f"the server sent no {claim!r} claim usable as a username")
        if claim == "email" and claims.get("email_verified") is not True:  # absent, "true" or 1 is no promise
            raise ProviderError(f"the email address is not verified at the server "
                                f"(email_verified is {repr(claims.get('email_verified'))[:40]}, not true)")
        groups, remarks = self.groups_from(claims)
        return Identity(subject=claims["sub"], subject_scheme="oidc-sub", username=username,
                        display_name=_text(claims.get("name")), email=_text(claims.get("email")), claims=claims,
                        groups=groups, remarks=remarks, raw=raw)

    def groups_claim(self):
        """The claim naming the person's groups; "" when the admin wants none (unset: ``groups``)."""
        claim = self.setting("groups_claim")
        return "groups" if claim is None else claim

    def groups_from(self, claims):
        """(groups, remarks): the groups claim's names as groups (id = name); a claim that is neither a list
        nor one name is left out, and the audit log says so."""
        claim = self.groups_claim()
        value = claims.get(claim) if claim else None
        if value is None:
            return (), ()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, list):
            return (), (f"the {claim!r} claim is a {type(value).__name__}, not a list of names: no groups taken",)
        return tuple(Group(id=name, name=name) for name in value), ()

    def logout_url(self):
        return self.end_session_url() if self.setting("rp_logout") else None

    # -- administration -----------------------------------------------------------------------------
    def test_connection(self):
        # The secret goes out (the credentials check) only once discovery succeeded with the exact issuer
        # and every endpoint passed endpoint_problem; a remembered failure is not reused here.
        self.forget_metadata()
        try:
            metadata = self.metadata()
        except (ProviderError, ProviderUnavailable) as failure:
            return [Check(_l("Discovery"), False, failure.detail)]
        checks = [Check(_l("Discovery"), True, _l("The server publishes its configuration; issuer %(issuer)s.",
                                                  issuer=metadata["issuer"]))]
        methods = metadata.get("code_challenge_methods_supported")
        checks.append(Check(_l("PKCE"), methods is None or "S256" in methods,
                            _l("S256 is supported.") if methods and "S256" in methods else
                            _l("The server does not say; geologin sends S256 anyway.") if methods is None else
                            _l("The server offers only %(methods)s; geologin requires S256.",
                               methods=", ".join(map(str, methods)))))
        missing = [scope for scope in self.scopes() if scope not in (metadata.get("scopes_supported") or self.scopes())]
        checks.append(Check(_l("Scopes"), not missing,
                            _l("The server does not offer: %(scopes)s.", scopes=" ".join(missing)) if missing else
                            _l("Requested: %(scopes)s.", scopes=" ".join(self.scopes()))))
        checks.append(self.check_client_credentials(self.label))
        return checks

    def setup_context(self):
        cached = self.cache.get("metadata")  # known only once discovery ran (a login or Test connection)
        return {"redirect_uri": self.redirect_uri(), "post_logout_redirect_uri": self.post_logout_redirect_uri,
                "client_id": self.client_id(), "issuer": self.issuer(), "scopes": " ".join(self.scopes()),
                "username_claim": self.username_claim(), "groups_claim": self.groups_claim(), "rp_logout": bool(self.setting("rp_logout")),
                "end_session_offered": bool(cached[1].get("end_session_endpoint")) if cached else None}


def _text(value):
    return value if isinstance(value, str) and value else None
