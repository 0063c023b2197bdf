"""Password hashing (argon2id) and the password policy, kept together so every form and command agrees."""
import ctypes
import ctypes.util
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from flask import current_app
from flask_babel import lazy_gettext as _l


M_MMAP_THRESHOLD = -3   # glibc's mallopt parameter number (malloc.h)


def return_hash_memory_to_system():
    """Makes glibc serve argon2's 19 MiB blocks with mmap, so each is given back when its hash ends: left to
    itself, glibc raises its mmap threshold after the first such block and every thread's arena keeps one
    (about 100 MiB more per worker after a password-login load). Fixing the threshold ends that; a no-op off
    glibc. Returns True when glibc took the setting."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, 128 * 1024))
    except (OSError, AttributeError):
        return False


return_hash_memory_to_system()


def _hasher():
    config = current_app.config
    return _cached_hasher(
        config["ARGON2_TIME_COST"], config["ARGON2_MEMORY_COST"], config["ARGON2_PARALLELISM"]
    )


@lru_cache(maxsize=4)
def _cached_hasher(time_cost, memory_cost, parallelism):
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_cost, parallelism=parallelism)


def hash_password(password):
    """An argon2id PHC string with a fresh random salt."""
    return _hasher().hash(password)


def verify_password(password_hash, password):
    """True when ``password`` matches; a missing hash still costs one hash so timing reveals nothing."""
    hasher = _hasher()
    if not password_hash:
        _burn(hasher, password)
        return False
    try:
        return hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash):
    return _hasher().check_needs_rehash(password_hash)


def _burn(hasher, password):
    try:
        hasher.verify(_dummy_hash(hasher), password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        pass


_DUMMY = {}


def _dummy_hash(hasher):
    key = (hasher.time_cost, hasher.memory_cost, hasher.parallelism)
    if key not in _DUMMY:
        _DUMMY[key] = hasher.hash("geologin-dummy-password-for-timing")
    return _DUMMY[key]


def _too_guessable(password, username):
    """zxcvbn's estimate (on the first 72 characters, its limit): under a million guesses covers the leaked-password lists it ships,
    keyboard walks, repeats and variations on the username."""
    from zxcvbn import zxcvbn

    return zxcvbn(password[:72], user_inputs=[username] if username else [])["score"] < 2


def password_problems(password, username=None):
    """The reasons ``password`` is refused (empty when acceptable). No composition rules, per ASVS 6.2."""
    config = current_app.config
    minimum, maximum = config["PASSWORD_MIN_LENGTH"], config["PASSWORD_MAX_LENGTH"]
    problems = []
    if len(password) < minimum:
        problems.append(_l("Use at least %(n)d characters.", n=minimum))
    if len(password) > maximum:
        problems.append(_l("Use at most %(n)d characters.", n=maximum))
    if username and password.lower() == username.lower():
        problems.append(_l("The password cannot be the same as the username."))
    elif password and _too_guessable(password, username):
        problems.append(_l("This password is too common or easy to guess; a few unrelated words make a "
                           "strong one."))
    return problems
