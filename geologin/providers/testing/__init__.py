"""The plugin author's test kit. Mix :class:`ProviderContract` (or :class:`OIDCContract` for an OpenID
Connect server) into a pytest class, give it the plugin's settings and canned server answers, and it runs
the whole login through geologin: the happy path, every failure reason code, and the security checklist
items whose outcome depends on the plugin. Needs the ``test`` extras (pytest, requests-mock). See
docs/plugins.md.

Modules: ``app`` (the test app, the canned server, the steps of a login), ``contract`` (what every plugin
passes), ``oidc`` (what an OpenID Connect plugin passes too), ``tokens`` (signing keys and forged tokens).
"""
from .app import JSON, Account, Login, LoginHarness, csrf_token_of
from .contract import ProviderContract
from .oidc import OIDCContract
from .tokens import EC_KEY, ROTATED_KEY, RSA_KEY

__all__ = ["JSON", "Account", "Login", "LoginHarness", "ProviderContract", "OIDCContract", "RSA_KEY", "EC_KEY",
           "ROTATED_KEY", "csrf_token_of"]
