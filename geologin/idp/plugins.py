"""Loading provider plugins into the app: discovery and their templates (their translations are merged by
i18n, their fixed callback paths are added by login/external.py)."""
import os

from flask import Blueprint

from ..providers.registry import discover


def discover_plugins(app, default_folder):
    """Find the plugins early (i18n needs their translations folders before Flask-Babel starts): in
    PLUGINS_FOLDER, else in ``default_folder`` (the checkout's or the installed package's plugins/)."""
    folders = app.config.get("PLUGINS_FOLDER") or [default_folder]
    if isinstance(folders, str):
        folders = folders.split(os.pathsep)
    registry = discover(folders, disabled=set(app.config.get("DISABLED_PLUGINS") or ()))
    app.extensions["geologin.plugins"] = registry
    return registry


def init_app(app):
    for type_name, plugin in sorted(app.extensions["geologin.plugins"].plugins.items()):
        if plugin.templates:
            # Templates only: a plugin adds no routes of its own, so every route stays under core guards.
            app.register_blueprint(Blueprint(f"plugin_{type_name}", __name__, template_folder=str(plugin.templates)))
