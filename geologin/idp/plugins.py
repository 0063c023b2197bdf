"""Loading provider plugins into the app: discovery and their templates (their translations are merged by
i18n, their fixed callback paths are added by login/external.py)."""
import os

from flask import Blueprint

from .. import resource_folder
from ..providers.registry import discover


def discover_plugins(app):
    """Find the plugins early: i18n needs their translations folders before Flask-Babel starts."""
    folders = app.config.get("PLUGINS_FOLDER") or [resource_folder("plugins")]
    if isinstance(folders, str):
        folders = folders.split(os.pathsep)
    registry = discover(folders, disabled=set(app.config.get("DISABLED_PLUGINS") or ()))
    app.extensions["geologin.plugins"] = registry
    return registry


def registry_of(app):
    return app.extensions.get("geologin.plugins") or discover_plugins(app)


def init_app(app):
    for type_name, plugin in sorted(registry_of(app).plugins.items()):
        if plugin.templates:
            # Templates only: a plugin adds no routes of its own, so every route stays under core guards.
            app.register_blueprint(Blueprint(f"plugin_{type_name}", __name__, template_folder=str(plugin.templates)))
