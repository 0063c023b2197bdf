"""Registered identity providers: what the admin screens, the CLI, the plugin contract kit and tests call.
Inside the core, modules import the submodule they need (service, cache, permissions, checks)."""
from ..models import ProviderInstance
from .cache import (InstanceError, build_provider, callback_url, has_secret, is_usable, ordered_instances,
                    plugin_registry, settings_of, usable, usable_by_id, usable_by_slug, usable_instances)
from .checks import all_passed, audit_summary, run_checks
from .permissions import (allow, allowed_instance_ids, allowed_users, disallow, identities_of, is_allowed,
                          set_user_permissions, unlink)
from .service import (SLUG, create_instance, delete_instance, holders_of_redirect_path, move_instance,
                      rotate_secrets, update_instance)

__all__ = [
    "InstanceError", "ProviderInstance", "SLUG", "allow", "allowed_instance_ids", "allowed_users", "build_provider",
    "callback_url", "create_instance", "delete_instance", "disallow", "has_secret", "holders_of_redirect_path",
    "identities_of", "is_allowed", "is_usable", "move_instance", "ordered_instances", "plugin_registry", "rotate_secrets",
    "run_checks", "all_passed", "audit_summary", "set_user_permissions", "settings_of", "unlink", "update_instance", "usable", "usable_by_id",
    "usable_by_slug", "usable_instances",
]
