"""Administrators' screens: users (users.py), identity providers (providers.py), applications (apps.py), groups
(groups.py) and the audit trail (audit.py), all under the one admin blueprint and its guard (blueprint.py)."""
from . import users  # noqa: F401  (its routes join the blueprint)
from .apps import bp as apps_bp
from .audit import bp as audit_bp
from .blueprint import bp
from .groups import bp as groups_bp
from .providers import bp as providers_bp

# Nested, so require_admin guards them too (endpoints admin.providers.*, admin.apps.*, admin.groups.*, admin.audit.*).
bp.register_blueprint(providers_bp)
bp.register_blueprint(apps_bp)
bp.register_blueprint(groups_bp)
bp.register_blueprint(audit_bp)  # the audit screen and its CSV export (no URL prefix: /admin/audit, /admin/audit.csv)

__all__ = ["bp"]
