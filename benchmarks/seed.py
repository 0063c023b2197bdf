"""Seed one throwaway geologin database for the benchmarks: ``python benchmarks/seed.py SPEC`` with the
instance's GEOLOGIN_* environment (run.py does this). SPEC is a JSON object:

  providers        [{slug, label, base_url, client_secret[, generation]}]: real DHIS2 providers (the fakes),
                   created through geologin's own ``idp.create_provider`` (validated, secret encrypted)
  filler_providers how many more DHIS2 providers to register (bulk INSERT; https://dhis2-NNNN.example.org/,
                   never contacted), enabled or not per ``filler_enabled``
  bench_users      [{username, password, uid[, subject_scheme]}]: the users that log in; a password hash each (argon2id at the
                   configured cost), allowed on every real provider and already bound to their DHIS2 uid
  filler_users     how many more users (bulk INSERT, no password hash). Each is allowed on the first real
                   provider and on two filler providers, bound to a DHIS2 account there, and has one open
                   session and one audit event, so every table a login touches holds as many rows as users.

Bulk rows go in with SQLAlchemy Core ``insert()`` on geologin's own tables (column defaults applied), in
chunks. Prints a JSON line: the seconds taken and the row counts.
"""
import hashlib
import json
import sys
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select  # noqa: E402

CHUNK = 20_000


def _chunks(rows):
    for start in range(0, len(rows), CHUNK):
        yield rows[start:start + CHUNK]


def _bulk(db, model, rows):
    for chunk in _chunks(rows):
        db.session.execute(insert(model.__table__), chunk)


def seed(spec):
    from flask_migrate import upgrade

    from geologin import create_app
    from geologin import idp as instances
    from geologin.extensions import db
    from geologin.models import (AuditEvent, ExternalIdentity, User, UserProviderPermission, UserSession, utcnow)
    from geologin.models import IdentityProvider
    from geologin.accounts.passwords import hash_password

    app = create_app()
    with app.app_context():
        upgrade()
        now = utcnow()
        real = [instances.create_provider(
            "dhis2", slug=p["slug"], label=p["label"], description="fake DHIS2 on loopback (benchmark)",
            settings={"base_url": p["base_url"], "client_id": "geologin", "generation": p.get("generation", "legacy")},
            secrets={"client_secret": p["client_secret"]}, actor="benchmark") for p in spec["providers"]]
        filler_count = int(spec.get("filler_providers", 0))
        _bulk(db, IdentityProvider, [{
            "slug": f"dhis2-{n:04d}", "type": "dhis2", "label": f"DHIS2 server {n:04d}",
            "description": "", "enabled": bool(spec.get("filler_enabled", True)), "position": len(real) + n,
            "allow_all_users": False, "secrets_json": real[0].secrets_json,
            "settings_json": json.dumps({"base_url": f"https://dhis2-{n:04d}.example.org/", "client_id": "geologin",
                                         "generation": "legacy", "redirect_uri": None}, sort_keys=True),
        } for n in range(1, filler_count + 1)])
        filler_ids = list(db.session.scalars(select(IdentityProvider.id).where(
            IdentityProvider.id.not_in([p.id for p in real])).order_by(IdentityProvider.id)))

        users = [{"username": "bench-admin", "display_name": "Benchmark administrator", "is_admin": True}]
        for user in spec["bench_users"]:
            users.append({"username": user["username"], "display_name": user["username"].title(),
                          "password_hash": hash_password(user["password"]), "password_changed_at": now})
        filler_users = int(spec.get("filler_users", 0))
        users += [{"username": f"user{n:06d}", "display_name": f"User {n}", "email": f"user{n:06d}@example.org"}
                  for n in range(1, filler_users + 1)]
        for row in users:
            row.setdefault("email", None)
            row.setdefault("password_hash", None)
            row.setdefault("password_changed_at", None)
            row.setdefault("is_admin", False)
        _bulk(db, User, users)
        ids = dict(db.session.execute(select(User.username, User.id)).all())

        permissions, identities = [], []
        for user in spec["bench_users"]:
            for provider in real:
                permissions.append({"user_id": ids[user["username"]], "provider_id": provider.id})
                identities.append({"user_id": ids[user["username"]], "provider_id": provider.id,
                                   "subject": user["uid"], "subject_scheme": user.get("subject_scheme", "dhis2-uid"),
                                   "external_username": user["username"]})
        sessions, events = [], []
        for n in range(1, filler_users + 1):
            user_id = ids[f"user{n:06d}"]
            permissions.append({"user_id": user_id, "provider_id": real[0].id})
            identities.append({"user_id": user_id, "provider_id": real[0].id, "subject": f"F{n:010d}",
                               "subject_scheme": "dhis2-uid", "external_username": f"user{n:06d}"})
            if filler_ids:
                for other in {filler_ids[n % len(filler_ids)], filler_ids[(n * 7 + 3) % len(filler_ids)]}:
                    permissions.append({"user_id": user_id, "provider_id": other})
            sessions.append({"id": hashlib.sha256(f"filler-session-{n}".encode()).hexdigest(), "user_id": user_id,
                             "auth_method": f"provider:{real[0].slug}", "client_ip": "127.0.0.1",
                             "user_agent": "seed", "created_at": now - timedelta(minutes=n % 600),
                             "last_seen_at": now - timedelta(minutes=n % 50)})
            events.append({"event_type": "login", "outcome": "success", "actor": f"user{n:06d}",
                           "target": f"user{n:06d}", "provider": real[0].slug, "client_ip": "127.0.0.1",
                           "created_at": now - timedelta(seconds=n)})
        _bulk(db, UserProviderPermission, permissions)
        _bulk(db, ExternalIdentity, identities)
        _bulk(db, UserSession, sessions)
        _bulk(db, AuditEvent, events)
        db.session.commit()
        counts = {model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
                  for model in (User, IdentityProvider, UserProviderPermission, ExternalIdentity, UserSession,
                                AuditEvent)}
    return counts


def main():
    started = time.perf_counter()
    counts = seed(json.loads(Path(sys.argv[1]).read_text()))
    print(json.dumps({"seconds": round(time.perf_counter() - started, 2), "counts": counts}))


if __name__ == "__main__":
    main()
