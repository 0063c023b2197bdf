"""``create_app`` (one fake DHIS2 server as a Flask app) and the command line
(``python -m tests.fakes.dhis2 --port 0 --version 2.40 ...``)."""
from __future__ import annotations

import argparse
import json
import logging
import sys
import time

from flask import Flask, Response, g, request
from werkzeug.serving import make_server

# Importing the endpoint modules adds their routes to the ``dhis`` blueprint.
from . import api, legacy, login, oidc  # noqa: F401
from .control import control
from .state import DEFAULT_REDIRECT_URI, FakeState, REDACTED_PARAMS, S, SESSION_COOKIE, split_list
from .web import basic_credentials, dhis


def record_request():
    """before_request: remember what was asked (never secret values)."""
    if "/__fake__/" in request.path:
        return
    header = request.headers.get("Authorization", "")
    scheme = header.split(" ", 1)[0] if header else None
    entry = {"time": time.time(), "method": request.method, "path": request.path,
             "args": {k: ("<redacted>" if k in REDACTED_PARAMS else v)
                      for k, v in request.args.items()},
             "form_keys": sorted(request.form.keys()),
             "auth_scheme": scheme,
             "auth_user": (basic_credentials() or (None,))[0] if scheme == "Basic" else None,
             "has_session_cookie": SESSION_COOKIE in request.cookies,
             "x_requested_with": request.headers.get("X-Requested-With")}
    state = S()
    with state.lock:
        state.request_log.append(entry)
        del state.request_log[:-2000]


def set_session_cookie(resp: Response) -> Response:
    """after_request: send JSESSIONID when a session was created, clear it after logout."""
    path = S().base or "/"
    if g.get("clear_session"):
        resp.delete_cookie(SESSION_COOKIE, path=path)
    if g.get("session_id"):
        resp.set_cookie(SESSION_COOKIE, g.session_id, path=path, httponly=True, samesite="Lax")
    return resp


def create_app(config: dict | None = None) -> Flask:
    """A Flask app for one fake DHIS2 server.  ``config`` keys: version, base_path, public_url,
    users, clients, stall_seconds, huge_bytes, legacy_token_seconds (all optional)."""
    config = dict(config or {})
    app = Flask(__name__)
    app.json.sort_keys = False
    state = FakeState(config)
    app.extensions["fake_dhis2"] = state
    app.register_blueprint(dhis, url_prefix=state.base or None)
    app.register_blueprint(control, url_prefix="/__fake__")
    if state.base:
        app.register_blueprint(control, url_prefix=state.base + "/__fake__", name="fake_in_base")
    app.before_request(record_request)
    app.after_request(set_session_cookie)
    return app


def parse_user_arg(text: str) -> dict:
    parts = text.split(":", 3)
    if len(parts) < 2:
        raise argparse.ArgumentTypeError("--user USERNAME:PASSWORD[:UID[:EMAIL]]")
    user = {"username": parts[0], "password": parts[1]}
    if len(parts) > 2 and parts[2]:
        user["uid"] = parts[2]
    if len(parts) > 3 and parts[3]:
        user["email"] = parts[3]
    return user


def parse_client_arg(text: str) -> dict:
    parts = text.split(":", 2)
    if len(parts) < 2:
        raise argparse.ArgumentTypeError("--client CLIENT_ID:SECRET:REDIRECT_URI[,URI2...]")
    client = {"client_id": parts[0], "secret": parts[1]}
    client["redirect_uris"] = split_list(parts[2]) if len(parts) > 2 else [DEFAULT_REDIRECT_URI]
    return client


def build_config(args) -> dict:
    config = {}
    if args.config:
        with open(args.config, encoding="utf-8") as fh:
            config = json.load(fh)
    if args.version:
        config["version"] = args.version
    config.setdefault("version", "2.40")
    if args.base_path is not None:
        config["base_path"] = args.base_path
    if args.public_url:
        config["public_url"] = args.public_url
    if args.user:
        config["users"] = list(config.get("users") or []) + args.user
    if args.bcrypt_secrets:
        config["bcrypt_secrets"] = True
    if args.client:
        by_id = {c.get("client_id") or c.get("clientId") or c.get("cid"): c
                 for c in config.get("clients") or []}
        by_id.update({c["client_id"]: c for c in args.client})
        config["clients"] = list(by_id.values())
    if config.get("bcrypt_secrets"):
        config["clients"] = [bcrypt_secret(c) for c in config.get("clients") or []]
    return config


def bcrypt_secret(client: dict) -> dict:
    """The client with its plain secret stored as DHIS2 2.42+ stores it (BCryptPasswordEncoder, strength 10), so
    every token request pays the bcrypt check a real server pays (benchmarks; off by default, tests stay fast)."""
    import bcrypt
    secret = client.get("secret") or client.get("client_secret") or client.get("clientSecret")
    if not secret or secret.startswith(("$2a$", "$2b$", "$2y$")):
        return client
    client = {k: v for k, v in client.items() if k not in ("client_secret", "clientSecret")}
    client["secret"] = bcrypt.hashpw(secret.encode("utf-8"), bcrypt.gensalt(10, prefix=b"2a")).decode("ascii")
    return client


def main(argv=None):
    parser = argparse.ArgumentParser(description="Fake DHIS2 server for tests and demos "
                                                 "(NOT for production).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080, help="0 = any free port")
    parser.add_argument("--version", default=None, help="DHIS2 version, e.g. 2.40 or 2.42.5")
    parser.add_argument("--base-path", default=None, help="path prefix, e.g. /dhis")
    parser.add_argument("--public-url", default=None,
                        help="external URL (default http://host:port + base path)")
    parser.add_argument("--config", default=None, help="JSON file with users and clients")
    parser.add_argument("--user", action="append", type=parse_user_arg, default=[],
                        help="USERNAME:PASSWORD[:UID[:EMAIL]] (repeatable)")
    parser.add_argument("--client", action="append", type=parse_client_arg, default=[],
                        help="CLIENT_ID:SECRET:REDIRECT_URI[,REDIRECT_URI2...] (repeatable)")
    parser.add_argument("--bcrypt-secrets", action="store_true",
                        help="store the clients' secrets bcrypt-hashed, as DHIS2 2.42+ does (each token request "
                             "then costs a bcrypt check)")
    parser.add_argument("--quiet", action="store_true", help="no per-request log on stderr")
    args = parser.parse_args(argv)

    if args.quiet:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
    app = create_app(build_config(args))
    state = app.extensions["fake_dhis2"]
    server = make_server(args.host, args.port, app, threaded=True)
    port = server.server_port
    host = f"[{args.host}]" if ":" in args.host else args.host
    if not state.public_url:
        state.public_url = f"http://{host}:{port}{state.base}"
    print(f"fake-dhis2 listening on http://{host}:{port}/{state.base.lstrip('/')}", flush=True)
    print(f"fake-dhis2: DHIS2 {state.version_text} ({state.generation} OAuth), public URL "
          f"{state.root}/", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0
