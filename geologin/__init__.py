"""geologin: a Flask login server with local users and identity-provider plugins (DHIS2 first)."""
import os
from pathlib import Path

import click
from flask import Flask

ROOT = Path(__file__).resolve().parent.parent
# An installed wheel carries the checkout's top-level templates/, static/ and plugins/ here (setup.py).
BUNDLED = Path(__file__).resolve().parent / "_bundled"


def resource_folder(name):
    """Where ``templates``, ``static`` or ``plugins`` are: the checkout's top-level folder, or the copy an
    installed package carries."""
    return BUNDLED / name if BUNDLED.is_dir() else ROOT / name


def default_instance_path():
    """The checkout's ``instance/``; an installed package uses ``./instance`` of the folder it runs in."""
    return Path.cwd() / "instance" if BUNDLED.is_dir() else ROOT / "instance"


def create_app(test_config=None):
    """Build the application; ``test_config`` replaces the environment layer for tests."""
    instance_path = ((test_config or {}).get("INSTANCE_PATH") or os.environ.get("GEOLOGIN_INSTANCE")
                     or default_instance_path())
    app = Flask(
        __name__,
        instance_path=str(Path(instance_path).resolve()),
        instance_relative_config=True,
        template_folder=str(resource_folder("templates")),
        static_folder=str(resource_folder("static")),
    )
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    from .config import load_config
    load_config(app, test_config)
    from . import logs
    logs.configure(app)

    from . import encryption, extensions, i18n, validation, web
    from .idp import plugins
    from .login import loader, throttle
    encryption.init_app(app)
    extensions.db.init_app(app)
    extensions.configure_engines(app)
    app.extensions["migrate"] = _Migrations(app)
    app.cli.add_command(_MigrationCommands("db", help="Perform database migrations (Flask-Migrate)."))
    extensions.csrf.init_app(app)
    throttle.init_app(app)
    plugins.discover_plugins(app, resource_folder("plugins"))  # before i18n: every plugin's catalogs join the core's
    i18n.init_app(app)
    loader.init_app(app)

    validation.init_app(app)  # before the routes: it bounds their <int:...> ids
    from . import admin, apps, cli, health, proxy
    from .accounts import views as account_views
    from .login import external
    from .login import views as login_views
    app.register_blueprint(login_views.bp)
    app.register_blueprint(account_views.bp)
    app.register_blueprint(admin.bp)
    app.register_blueprint(external.bp)
    app.register_blueprint(health.bp)
    apps.init_app(app)
    proxy.init_app(app)
    plugins.init_app(app)
    external.init_app(app)  # the fixed callback paths the plugins declare
    web.init_app(app)

    cli.init_app(app)
    return app


def init_migrations(app):
    """Binds Flask-Migrate to ``app`` and returns its ``app.extensions["migrate"]``."""
    from flask_migrate import Migrate

    from . import extensions
    from .models import alembic_render_item
    Migrate().init_app(app, extensions.db, directory=str(Path(__file__).parent / "migrations"),
                       render_as_batch=True, compare_type=True, render_item=alembic_render_item)
    return app.extensions["migrate"]


class _Migrations:
    """Stands in ``app.extensions["migrate"]`` until migrations are asked for (``flask db``, tests): Flask-Migrate
    imports Alembic, Mako and Pygments, about 11 MiB per worker that serving requests never uses."""

    def __init__(self, app):
        self._app = app

    def __getattr__(self, name):
        return getattr(init_migrations(self._app), name)


class _MigrationCommands(click.Group):
    """``flask db ...``: Flask-Migrate's command group, imported only when the command runs."""

    def make_context(self, info_name, args, parent=None, **extra):
        from flask_migrate.cli import db
        return db.make_context(info_name, args, parent=parent, **extra)
