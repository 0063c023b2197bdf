"""gunicorn settings for geologin: `gunicorn -c python:geologin.gunicorn_conf geologin.wsgi:app` (installed),
or `make serve` in a checkout. Every value can be overridden with the GEOLOGIN_* variable named beside it."""
import multiprocessing
import os

bind = os.environ.get("GEOLOGIN_BIND", "127.0.0.1:" + os.environ.get("PORT", "8000"))
# Logins mostly wait on identity servers, so threads: each worker serves several requests at once.
worker_class = "gthread"
workers = int(os.environ.get("GEOLOGIN_WORKERS", min(multiprocessing.cpu_count() * 2 + 1, 8)))
threads = int(os.environ.get("GEOLOGIN_THREADS", 4))
# The app keeps calls in flight to one identity server below this (HTTP_MAX_CONCURRENT_PER_SERVER), so a
# stalled server always leaves a thread free; the workers inherit the variable.
os.environ["GEOLOGIN_WORKER_THREADS"] = str(threads)
# Longer than the outbound calls (each ends within HTTP_TOTAL_TIMEOUT, 15 s; a login makes up to four), so
# a slow identity server ends in a "server unavailable" page, not a killed worker.
timeout = int(os.environ.get("GEOLOGIN_WORKER_TIMEOUT", 90))
graceful_timeout = 30
keepalive = 5
# geologin logs one line per request itself (path only, never the query string with codes and state).
accesslog = None
errorlog = "-"
loglevel = os.environ.get("GEOLOGIN_GUNICORN_LOGLEVEL", "info")
# Behind a reverse proxy, geologin trusts X-Forwarded-* for GEOLOGIN_TRUSTED_PROXIES hops itself.
forwarded_allow_ips = "*" if int(os.environ.get("GEOLOGIN_TRUSTED_PROXIES", "0")) else "127.0.0.1"
preload_app = False
