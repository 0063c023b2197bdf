"""The generic OpenID Connect provider plugin: "Log in with LABEL" for any OpenID provider that publishes
a discovery document (Keycloak, Azure AD / Entra ID, Google, Okta, Authentik, oidc-provider, ...).

Everything OpenID-Connect-generic (PKCE, nonce, RFC 9207 ``iss``, id_token and userinfo checks, RP-initiated
logout) lives in geologin's shared OAuth base; this plugin maps settings and claims. See docs/plugins.md.
"""
from .provider import OIDCProvider

provider = OIDCProvider
