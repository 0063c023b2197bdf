"""Django's argon2 hasher at geologin's parameters."""
from django.contrib.auth.hashers import Argon2PasswordHasher


class GeologinArgon2PasswordHasher(Argon2PasswordHasher):
    """argon2id, 2 passes over 19 MiB in one lane: geologin's ARGON2_* defaults (geologin/config.py)."""

    time_cost = 2
    memory_cost = 19 * 1024
    parallelism = 1
