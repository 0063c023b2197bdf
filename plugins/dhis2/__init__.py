"""The DHIS2 provider plugin: "Log in with DHIS2" for both DHIS2 OAuth generations.

Legacy (2.30-2.41, ``/uaa``): authorization code, client_secret_basic, the user from ``/api/me``
(``id`` is the stable user UID). 2.42+ (Spring Authorization Server, OpenID Connect): discovery, PKCE,
``openid username`` scopes, the user from the validated id_token. See docs/dhis2.md.
"""
from .provider import DHIS2Provider

provider = DHIS2Provider
