"""The ``geologin`` command of an installed package (``geologin users list`` is ``flask --app geologin.wsgi
users list``), also reachable as ``python -m geologin``."""
from flask.cli import FlaskGroup


def _load_app():
    from geologin.wsgi import app  # a configuration error ends the process with one line
    return app


def main():
    FlaskGroup(create_app=_load_app, help="geologin's administration commands (flask --app geologin.wsgi).")(
        prog_name="geologin")


if __name__ == "__main__":
    main()
