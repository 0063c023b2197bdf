"""WSGI entry point: ``flask --app wsgi ...`` and any WSGI server (``gunicorn wsgi:app``)."""
from geologin import create_app

app = create_app()
