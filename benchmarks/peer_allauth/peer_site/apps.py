from django.apps import AppConfig


class PeerSiteConfig(AppConfig):
    name = "peer_site"

    def ready(self):
        from . import audit  # noqa: F401 - connects the signal receivers
