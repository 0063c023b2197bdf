"""Loading provider plugins into the app: discovery, their templates, their fixed callback paths (their
translations are merged by i18n.py)."""
import os

from flask import Blueprint

from . import resource_folder
from .external import register_callback_paths
from .providers.registry import discover


def discover_plugins(app):
    """Find the plugins early: i18n needs their translations folders before Flask-Babel starts."""
    folders = app.config.get("PLUGINS_FOLDER") or [resource_folder("plugins")]
    if isinstance(folders, str):
        folders = folders.split(os.pathsep)
    registry = discover(folders, disabled=set(app.config.get("DISABLED_PLUGINS") or ()))
    app.extensions["geologin.plugins"] = registry
    return registry


def init_app(app):
    registry = app.extensions.get("geologin.plugins") or discover_plugins(app)
    for type_name, plugin in sorted(registry.plugins.items()):
        if plugin.templates:
            # Templates only: a plugin adds no routes of its own, so every route stays under core guards.
            app.register_blueprint(Blueprint(f"plugin_{type_name}", __name__, template_folder=str(plugin.templates)))
    register_callback_paths(app, registry)
