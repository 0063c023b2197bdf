"""gunicorn settings of a checkout (`gunicorn -c gunicorn.conf.py wsgi:app`): the package's, so a checkout
and an installed package serve alike (see geologin/gunicorn_conf.py)."""
from geologin.gunicorn_conf import *  # noqa: F401,F403
