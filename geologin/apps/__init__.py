"""Applications: what geologin offers the applications that rely on its logins. An OpenID provider
(server.py: Authlib's authorization server; views.py: its endpoints), the registered applications
(clients.py), who may use each (access.py), back-channel logout (logout.py), the signing keys (keys.py), and
forward-auth for sites behind a reverse proxy (forward_auth.py)."""


def init_app(app):
    from . import forward_auth, logout, server, views
    server.init_app(app)
    views.init_app(app)
    logout.init_app(app)
    forward_auth.init_app(app)
