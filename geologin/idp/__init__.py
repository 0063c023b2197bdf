"""Registered identity providers: what the admin screens, the CLI, the plugin contract kit and tests call.
Inside the core, modules import the submodule they need (service, cache, permissions, checks)."""
from ..models import IdentityProvider
from .cache import (ProviderChangeError, callback_url, has_secret, is_usable, ordered_providers, plugin_object,
                    plugin_registry, settings_of, usable, usable_by_id, usable_by_slug, usable_providers)
from .checks import all_passed, audit_summary, run_checks
from .permissions import (allow, allowed_provider_ids, allowed_users, disallow, identities_of, is_allowed,
                          set_user_permissions, unlink)
from .service import (SLUG, create_provider, delete_provider, holders_of_redirect_path, move_provider,
                      rotate_secrets, update_provider)


__all__ = [
    "IdentityProvider", "ProviderChangeError", "SLUG", "all_passed", "allow", "allowed_provider_ids", "allowed_users",
    "audit_summary", "callback_url", "create_provider", "delete_provider", "disallow", "has_secret",
    "holders_of_redirect_path", "identities_of", "is_allowed", "is_usable", "move_provider", "ordered_providers",
    "plugin_object", "plugin_registry", "rotate_secrets", "run_checks", "set_user_permissions", "settings_of",
    "unlink", "update_provider", "usable", "usable_by_id", "usable_by_slug", "usable_providers",
]
