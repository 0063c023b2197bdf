"""A protected site for forward-auth tests and `make demo`: a tiny web app with no login of its own that
shows who the proxy says the visitor is. It answers every path with the request's headers (JSON for
programs, a page for browsers) and remembers each request, so a test can tell what reached it."""
import argparse
import html
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

IDENTITY = ("Remote-User", "Remote-Name", "Remote-Email", "Remote-Groups", "X-Forwarded-User")


class Site:
    """The site on a free loopback port, served by a background thread; ``received`` lists (method, path,
    headers as a list of (name, value)) of every request that reached it."""

    def __init__(self, title="Reports", logout_url=None, port=0):
        self.title, self.logout_url, self.received = title, logout_url, []
        self.server = ThreadingHTTPServer(("127.0.0.1", port), _handler(self))
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def _handler(site):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            headers = list(self.headers.items())
            site.received.append((self.command, self.path, headers))
            if "text/html" in self.headers.get("Accept", ""):
                body, kind = _page(site, self.path, headers), "text/html; charset=utf-8"
            else:
                body, kind = json.dumps({"path": self.path, "headers": headers}), "application/json"
            data = body.encode()
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        do_POST = do_GET

        def log_message(self, *args):  # quiet: tests and the demo print what matters
            pass

    return Handler


def _page(site, path, headers):
    sent = {name.lower(): value for name, value in headers}
    rows = "".join(f"<tr><th>{html.escape(name)}</th><td>{html.escape(sent.get(name.lower(), '(not sent)'))}</td>"
                   f"</tr>" for name in IDENTITY)
    logout = (f'<p><a id="logout" href="{html.escape(site.logout_url)}">Log out</a></p>' if site.logout_url else "")
    return (f"<!doctype html><html lang=en><head><meta charset=utf-8><title>{html.escape(site.title)}</title></head>"
            f"<body><h1>{html.escape(site.title)}</h1><p>Signed in as <strong id=\"user\">"
            f"{html.escape(sent.get('remote-user', '(nobody)'))}</strong></p><p>Page: <code id=\"path\">"
            f"{html.escape(path)}</code></p><table>{rows}</table>{logout}</body></html>")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--title", default="Reports")
    parser.add_argument("--logout-url")
    args = parser.parse_args()
    running = Site(args.title, args.logout_url, args.port)
    print(f"protected site listening on {running.url}", flush=True)
    running.thread.join()
