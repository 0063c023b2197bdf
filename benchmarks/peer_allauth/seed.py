"""Seeds the peer site's database (run in its venv): ``python seed.py SPEC.json``; prints one JSON line.

SPEC: {"users": [{"username", "password"}], "dhis2": {"provider_id", "name", "server_url", "client_id",
"secret"}}. Every user gets a password (argon2id at geologin's parameters) and a SocialAccount linking it to
its DHIS2 account (uid = the id_token's ``sub``, the username on 2.42+), as geologin's bound users."""
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "peer_site.settings")

import django  # noqa: E402

django.setup()

from allauth.socialaccount.models import SocialAccount, SocialApp  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.contrib.auth.hashers import make_password  # noqa: E402
from django.core.management import call_command  # noqa: E402


def main():
    spec = json.loads(Path(sys.argv[1]).read_text())
    started = time.monotonic()
    call_command("migrate", verbosity=0)
    User = get_user_model()
    dhis2 = spec["dhis2"]
    app = SocialApp.objects.create(provider="openid_connect", provider_id=dhis2["provider_id"],
                                   name=dhis2["name"], client_id=dhis2["client_id"], secret=dhis2["secret"],
                                   settings={"server_url": dhis2["server_url"]})
    for user in spec["users"]:
        row = User.objects.create(username=user["username"], password=make_password(user["password"]))
        SocialAccount.objects.create(user=row, provider=app.provider_id, uid=user["username"])
    print(json.dumps({"seconds": round(time.monotonic() - started, 2),
                      "counts": {"users": User.objects.count(), "social_accounts": SocialAccount.objects.count()}}))


if __name__ == "__main__":
    main()
