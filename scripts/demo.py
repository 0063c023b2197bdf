"""`make demo`: geologin plus two fake DHIS2 servers (a legacy 2.40 and a 2.42) on this machine, with
seeded users, so anyone can click through "Log in with DHIS2"; an application that signs its users in
through geologin (examples/flask-app, registered here); and, when Node.js and the test suite's OpenID
provider are installed (`make real-op-deps`), an OpenID Connect server (the npm oidc-provider) for
"Log in with Health ID"; and, when nginx is installed, a site behind nginx that asks geologin who may see it
(forward-auth, docs/forward-auth.md); and a second application, "Malaria dashboards", that only the
"Malaria programme" group may use (a geologin group mapped from DHIS2's user group, docs/groups.md), where
a member of that DHIS2 group without a local account gets one at their first login, and which lists the
person's DHIS2 org units asked with their own DHIS2 token (kept tokens, docs/dhis2-tokens.md). Not for
production; data is thrown away:
SQLite in DEMO_INSTANCE (instance/demo), or the PostgreSQL database DEMO_DATABASE_URL, emptied first."""
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PORT = int(os.environ.get("PORT", "5000"))
PUBLIC_URL = f"http://127.0.0.1:{PORT}"
INSTANCE = Path(os.environ.get("DEMO_INSTANCE", ROOT / "instance" / "demo"))  # wiped at every start
SERVERS = [  # slug, label, version, port
    ("moh-legacy", "Ministry of Health (DHIS2 2.40)", "2.40.3", PORT + 81),
    ("malaria", "Malaria programme (DHIS2 2.42)", "2.42.5", PORT + 82),
]
CLIENT_SECRET = secrets.token_hex(18)  # 36 characters, like the DHIS2 Settings app makes
APP_NAME, APP_SCRIPT = "Example app", ROOT / "examples" / "flask-app" / "app.py"
SITE_NAME = "Reports (behind nginx)"
GROUP, GROUP_DHIS2_ID = "Malaria programme", "wl5cDMuUhmF"  # DHIS2's user group (tests/fakes/dhis2/state.py)
MALARIA_APP = "Malaria dashboards"
# At the 2.42 server only, with no local account: gets one at her first login through it (accounts on first login).
CAROL = {"username": "carol", "password": "Carol-pass-123", "uid": "cArOl2x9Q1a", "firstName": "Carol",
         "surname": "Banda", "email": "carol@example.org", "userGroups": [{"id": GROUP_DHIS2_ID, "name": GROUP}],
         "organisationUnits": [{"id": "O6uvpzGd5pu", "name": "Bo", "path": "/ImspTQPwCqd/O6uvpzGd5pu"}]}


def app_url(offset=80):
    """Where the example application (or the site behind nginx) listens: PORT + offset, or any free port when
    that one is taken (its address is registered in geologin before it starts, so the port is chosen first)."""
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", PORT + offset))
        except OSError:
            sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def start_fake(slug, version, port):
    """Start a fake DHIS2 on ``port``, or on any free port when that one is taken."""
    callback = f"{PUBLIC_URL}/auth/{slug}/callback"
    for candidate in (port, 0):
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.fakes.dhis2", "--port", str(candidate),
             "--version", version, "--quiet", "--client", f"geologin:{CLIENT_SECRET}:{callback}"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = process.stdout.readline().strip()
        if "listening on" in line:
            return process, line.rsplit(" ", 1)[-1]
        process.wait(10)
    raise SystemExit(f"fake DHIS2 {version} did not start")


OIDC_SLUG, OIDC_LABEL = "health-id", "Health ID"


def start_openid_provider():
    """The npm oidc-provider of tests/realop, or None (and why) when it cannot run here."""
    from tests.realop import CLIENT_SECRET as OIDC_SECRET, RealOP, op_config, realop_available

    available, why = realop_available()
    if not available:
        return None, why
    op = RealOP(op_config([f"{PUBLIC_URL}/auth/{OIDC_SLUG}/callback"], [f"{PUBLIC_URL}/login"]),
                path="/realms/health")
    return (op, OIDC_SECRET), None


def seed(urls, openid=None, example_app_url=None, site_url=None, malaria_url=None):
    """Users, providers, the "Malaria programme" group, the example applications, and the site behind nginx
    when there is one; returns the admin's password and each application's (client_id, secret)."""
    from geologin import create_app
    from geologin import idp as instances
    from geologin.accounts import users
    from geologin.apps import clients
    from geologin.extensions import db
    from geologin.groups import service as groups
    from geologin.idp import permissions

    app = create_app()
    with app.app_context():
        admin_password = secrets.token_urlsafe(12)
        users.create_user("demo-admin", display_name="Demo administrator", password=admin_password,
                          is_admin=True, actor="demo")
        alice = users.create_user("alice", display_name="Alice (both servers)", actor="demo")
        bob = users.create_user("bob", display_name="Bob (2.40 server only)", actor="demo")
        users.create_user("admin", display_name="DHIS2 admin, not enabled anywhere", actor="demo")
        created = []
        for (slug, label, version, _), url in zip(SERVERS, urls):
            created.append(instances.create_provider(
                "dhis2", slug=slug, label=label, description=f"Fake DHIS2 {version} on this machine",
                settings={"base_url": url, "client_id": "geologin"}, secrets={"client_secret": CLIENT_SECRET},
                actor="demo"))
        instances.allow([alice, bob], created[0], actor="demo")
        instances.allow([alice], created[1], actor="demo")
        if openid:
            op, secret = openid
            health = instances.create_provider(
                "oidc", slug=OIDC_SLUG, label=OIDC_LABEL, description="oidc-provider (npm) on this machine",
                settings={"issuer": op.issuer, "client_id": "geologin"}, secrets={"client_secret": secret},
                actor="demo")
            instances.allow([alice], health, actor="demo")
        db.session.commit()
        # The group applications see, filled from DHIS2's own user group on both servers.
        group = groups.create(GROUP, "Members of DHIS2's Malaria programme user group", actor="demo")
        for provider in created:
            groups.add_mapping(group, provider, GROUP_DHIS2_ID, GROUP, actor="demo")
        permissions.set_create_groups(created[1], [group], actor="demo")
        permissions.set_account_creation(created[1], create_accounts=True, actor="demo")
        instances.update_provider(created[1], keep_tokens=True, actor="demo")
        application, app_secret = clients.create(
            APP_NAME, [f"{example_app_url}/callback"], post_logout_uris=[f"{example_app_url}/"], actor="demo")
        malaria, malaria_secret = clients.create(
            MALARIA_APP, [f"{malaria_url}/callback"], post_logout_uris=[f"{malaria_url}/"], all_users=False,
            groups=[GROUP], attribute_claims=["roles", "org_units"], token_providers=[SERVERS[1][0]], actor="demo")
        if site_url:
            # A host-only cookie for 127.0.0.1 reaches every port of it: no SESSION_COOKIE_DOMAIN needed here.
            clients.create(SITE_NAME, forward_auth=True, hosts=[site_url.split("//", 1)[1]], actor="demo")
        return admin_password, (application.client_id, app_secret), (malaria.client_id, malaria_secret)


def start_example_app(url, client_id, client_secret, env, **options):
    """examples/flask-app on its own loopback port, signing its users in through this geologin; ``options``
    are its optional settings (APP_TITLE, APP_SCOPE, APP_COOKIE)."""
    port = url.rsplit(":", 1)[1]
    app_env = {**env, "APP_ISSUER": PUBLIC_URL, "APP_URL": url, "APP_PORT": port, "APP_CLIENT_ID": client_id,
               "APP_CLIENT_SECRET": client_secret, "APP_SECRET_KEY": secrets.token_hex(32), **options}
    return subprocess.Popen([sys.executable, str(APP_SCRIPT)], cwd=APP_SCRIPT.parent, env=app_env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def start_site_behind_nginx(site_url):
    """tests/fakes/site.py behind Debian's nginx running docs/forward-auth.md's config, on ``site_url``;
    returns the nginx process."""
    from tests.fakes.site import Site
    from tests.forward_proxy import Nginx, site_block

    port = int(site_url.rsplit(":", 1)[1])
    site = Site(SITE_NAME, logout_url=f"{PUBLIC_URL}/forward-auth/logout?rd={site_url}/")
    return Nginx(INSTANCE / "nginx", site_block(port, site.url, PUBLIC_URL), port).proc


def _stop(signum, frame):
    raise KeyboardInterrupt


def main():
    signal.signal(signal.SIGTERM, _stop)  # so the fake servers and geologin stop with us
    shutil.rmtree(INSTANCE, ignore_errors=True)
    env = {**os.environ, "GEOLOGIN_ENV": "development", "GEOLOGIN_INSTANCE": str(INSTANCE),
           "GEOLOGIN_PUBLIC_URL": PUBLIC_URL, "GEOLOGIN_ALLOW_INSECURE_HTTP": "1"}
    env.pop("DATABASE_URL", None)  # never wipe a database named for something else
    if os.environ.get("DEMO_DATABASE_URL"):  # a PostgreSQL database for the demo alone: emptied first
        env["DATABASE_URL"] = os.environ["DEMO_DATABASE_URL"]
    os.environ.clear()
    os.environ.update(env)
    flask = [sys.executable, "-m", "flask", "--app", "wsgi"]
    if "DATABASE_URL" in env:
        subprocess.run(flask + ["db", "downgrade", "base"], cwd=ROOT, env=env, check=True, capture_output=True)
    subprocess.run(flask + ["db", "upgrade"], cwd=ROOT, env=env, check=True, capture_output=True)
    fakes = [start_fake(slug, version, port) for slug, _, version, port in SERVERS]
    children = [process for process, _ in fakes]
    requests.post(f"{fakes[1][1]}/__fake__/users", json=CAROL, timeout=10).raise_for_status()
    openid, no_openid = start_openid_provider()
    if openid:
        children.append(openid[0].proc)
    from tests.forward_proxy import nginx_missing

    no_nginx = nginx_missing()
    try:
        example_url, malaria_url = app_url(), app_url(84)
        site_url = None if no_nginx else app_url(83)
        admin_password, example_client, malaria_client = seed([url for _, url in fakes], openid, example_url,
                                                              site_url, malaria_url)
        children.append(start_example_app(example_url, *example_client, env))
        children.append(start_example_app(malaria_url, *malaria_client, env, APP_TITLE=MALARIA_APP,
                                          APP_SCOPE="openid profile email groups dhis2",
                                          APP_COOKIE="malaria_app_session",
                                          APP_DHIS2_ORG_UNITS=f"{PUBLIC_URL}/dhis2/{SERVERS[1][0]}/api/me"
                                                              "?fields=organisationUnits[name]"))
        if site_url:
            children.append(start_site_behind_nginx(site_url))
        from tests.realop import ALICE_PASSWORD

        site_text = (f"A site behind nginx that asks geologin who may see it (forward-auth, docs/forward-auth.md):\n"
                     f"    open {site_url}/ -> geologin's login page -> log in (demo-admin, or Log in with DHIS2\n"
                     f"    as alice) -> back on the page, which shows the Remote-User nginx passed on; its Log out\n"
                     f"    link ends the geologin session, and the page asks for a login again."
                     if site_url else f"(No site behind nginx: {no_nginx}; install it and run make demo again.)")
        openid_text = (f"Log in with {OIDC_LABEL} (OpenID Connect, {openid[0].issuer}):\n"
                       f"    alice / {ALICE_PASSWORD}   allowed -> logged in; Log out also logs out there"
                       if openid else f"(No OpenID Connect server: {no_openid}.)")
        print(f"""
geologin demo: open {PUBLIC_URL}/login

  Log in with DHIS2 -> pick a server -> sign in at the fake DHIS2 -> Authorize:
    alice / Alice-pass-123   allowed on both servers          -> logged in
    bob   / Bob-pass-123     allowed on the 2.40 server only  -> refused on the 2.42 one
    admin / district         exists locally but not enabled   -> "not allowed"
  Click "Deny" at DHIS2 to see that message too.

  {openid_text}

  An application that signs its users in through geologin ("{APP_NAME}", examples/flask-app):
    open {example_url} -> Sign in with geologin -> geologin's login page -> Log in with DHIS2 -> alice
    -> Authorize at DHIS2 -> Allow at geologin ("Allow {APP_NAME}?") -> back in the app as alice,
    with the claims geologin sent. Log out there ends the geologin session too.

  An application only the "{GROUP}" group may use ("{MALARIA_APP}"): the group is DHIS2's user group
  of the same name, mapped on both servers (Administration -> Groups):
    open {malaria_url} -> Sign in with geologin -> Log in with DHIS2 -> alice -> in, with her groups and
    her DHIS2 roles and org units as claims; bob (not in the group) -> refused by geologin.
    Through the 2.42 server (which keeps tokens), the page also lists her org units as DHIS2 tells them
    to her own token: the app asks geologin's DHIS2 proxy, which calls DHIS2 as alice.
    carol / Carol-pass-123 on the 2.42 server has no account here: as a member of the group she gets one
    at her first login (accounts on first login, docs/groups.md).
    Administrator: Identity providers -> Setup -> Test login shows what DHIS2 says of a person and what
    geologin would decide, logging nobody in.

  {site_text}

  Administrator (password login): demo-admin / {admin_password}
    Identity providers -> Setup -> Test connection; Users -> alice -> linked accounts.

  Fake DHIS2 servers: {", ".join(url for _, url in fakes)}
  Press Ctrl-C to stop everything. The demo's data lives in {INSTANCE} and is reset at each start.
""", flush=True)
        children.append(subprocess.Popen(flask + ["run", "--host", "127.0.0.1", "--port", str(PORT)], cwd=ROOT,
                                         env=env))
        children[-1].wait()
    except KeyboardInterrupt:
        pass
    finally:
        for process in children:
            process.terminate()
        for process in children:
            process.wait(10)


if __name__ == "__main__":
    main()
