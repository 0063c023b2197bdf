"""The plugin API: the only part of geologin that provider plugins import.

A plugin subclasses :class:`Provider` (or :class:`OAuth2Provider`), declares its :class:`Setting` s, and
returns an :class:`Identity` from ``complete_login`` or raises :class:`LoginFailure`. The core does the
rest: instances, secrets, state, user matching, sessions and audit.
"""
from .base import (ACCESS_DENIED, Attribute, Check, CallbackContext, DirectoryCredentials, DiscoveryNotFound, Group, Identity, InstanceView, LoginFailure, LoginRequest, Provider,
                   ProviderError, ProviderUnavailable, REFRESH_REFUSED, Setting, SettingsContext, SettingsError, Tokens,
                   url_problem)
from .http import HttpClient, ResponseTooLarge, json_object
from .oauth import OAuth2Provider, basic_auth

__all__ = [
    "ACCESS_DENIED", "Attribute", "CallbackContext", "Check", "DirectoryCredentials", "DiscoveryNotFound", "Group", "HttpClient", "Identity", "InstanceView", "LoginFailure", "LoginRequest",
    "OAuth2Provider", "Provider", "ProviderError", "ProviderUnavailable", "REFRESH_REFUSED", "ResponseTooLarge", "Setting",
    "SettingsContext", "SettingsError", "Tokens", "basic_auth", "json_object", "url_problem",
]
