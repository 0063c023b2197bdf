"""Audit rows from Django's login signals (allauth's password and social logins both end in django's login())."""
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver

from .models import AuditEvent


def _ip(request):
    return request.META.get("REMOTE_ADDR") if request is not None else None


@receiver(user_logged_in)
def logged_in(sender, request, user, **kwargs):
    method = "dhis2" if request is not None and "/oidc/" in request.path else "password"
    AuditEvent.objects.create(kind="login", username=user.get_username(), ip=_ip(request), detail=method)


@receiver(user_login_failed)
def login_failed(sender, credentials, request=None, **kwargs):
    AuditEvent.objects.create(kind="login_failed", username=str(credentials.get("username", ""))[:150],
                              ip=_ip(request))
