from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from django.urls import include, path


@login_required
def landing(request):
    return render(request, "peer_site/landing.html")


urlpatterns = [
    path("", landing),
    path("accounts/", include("allauth.urls")),
]
