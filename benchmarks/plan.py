"""What a benchmark run does: the two plans (full, quick) and the fixed inputs every part shares (the users
and their passwords, the clients' secrets, the sizes of the large database, the raised login limits)."""
import secrets
import time

FAKE_VERSION = "2.40.3"
CLIENT_SECRET = secrets.token_hex(18)      # 36 characters, like the DHIS2 Settings app makes
BASELINE_SECRET = secrets.token_hex(18)
PEER_SECRET = secrets.token_hex(18)
PEER_FAKE_VERSION = "2.42.5"          # the peer comparison's DHIS2 (OpenID Connect generation)
BENCH_PASSWORD = "Bench-login-correct-horse-42"
DHIS2_PASSWORD = "Dhis2-bench-pass-42"
BENCH_USERS = [f"bench{n:02d}" for n in range(1, 10)]   # + bench-admin = 10 users in a small database
LARGE_USERS = 100_000
LARGE_PROVIDERS = 1_000
RATE_LIMIT = "1000000 per minute"
LOCKOUT_MAX_FAILURES = "1000000"
COOKIE_DOMAIN = "bench.test"          # item 7: geologin at login.bench.test, the protected site beside it
SITE_HOST = "site." + COOKIE_DOMAIN
SITE_FILE_BYTES = 1024                # item 7's static file

PLANS = {
    "full": dict(reps=5, page_seconds=5, page_connections=16, seq_logins=80, flow_seconds=8, flow_warmup=2,
                 vus=50, password_seconds=8, password_vus=16, scale_page_seconds=3, scale_seq_logins=50,
                 scale_flow_seconds=5, hash_samples=30, profile_logins=40, profile_pages=300,
                 profile_passwords=30, forward_seconds=5, forward_connections=16, profile_forward=300,
                 peer_page_seconds=5, peer_password_seconds=8, peer_flow_seconds=8, peer_flow_warmup=2, peer_vus=8),
    # A smoke run: every part once more than needed for a median, in under 5 minutes on a busy 2-core machine.
    "quick": dict(reps=2, page_seconds=2, page_connections=16, seq_logins=20, flow_seconds=3, flow_warmup=1,
                  vus=50, password_seconds=3, password_vus=16, scale_page_seconds=2, scale_seq_logins=10,
                  scale_flow_seconds=2, hash_samples=10, profile_logins=10, profile_pages=50,
                  profile_passwords=5, forward_seconds=2, forward_connections=16, profile_forward=50,
                  peer_page_seconds=2, peer_password_seconds=3, peer_flow_seconds=3, peer_flow_warmup=1, peer_vus=8),
}


def dhis2_uid(username):
    return "Bench" + username[-6:].rjust(6, "0")


_BEGAN = time.monotonic()


def say(message):
    """Prints a progress line, stamped with the minutes and seconds since the run began."""
    elapsed = int(time.monotonic() - _BEGAN)
    print(f"[{elapsed // 60}:{elapsed % 60:02d}] {message}", flush=True)
