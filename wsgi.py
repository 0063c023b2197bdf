"""WSGI entry point of a checkout: ``flask --app wsgi ...`` and ``gunicorn wsgi:app`` (geologin.wsgi)."""
from geologin.wsgi import app  # noqa: F401
