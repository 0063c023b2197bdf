"""The WSGI application (``gunicorn geologin.wsgi:app``, ``flask --app geologin.wsgi``), for checkouts and
installed packages alike. A configuration error ends the process with one line, never a traceback."""
import sys

from geologin import create_app
from geologin.config import ConfigError, release_start_up_memory

try:
    app = create_app()
except ConfigError as error:
    print(f"geologin: configuration error: {error}", file=sys.stderr)
    raise SystemExit(1) from None

release_start_up_memory()
