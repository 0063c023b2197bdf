"""Configuration layers and the SECRET_KEY rules (checklist item 31)."""
import os
import stat

import pytest

from tests.conftest import TEST_ENCRYPTION_KEY, TEST_SECRET_KEY, AuthActions
from geologin import create_app
from geologin.config import ConfigError, environment_overrides


def _app(tmp_path, monkeypatch, env=None, instance_config=None):
    instance = tmp_path / "inst"
    instance.mkdir(exist_ok=True)
    if instance_config is not None:
        (instance / "config.py").write_text(instance_config)
    for name in list(os.environ):
        if name.startswith("GEOLOGIN_") or name == "DATABASE_URL":
            monkeypatch.delenv(name)
    monkeypatch.setenv("GEOLOGIN_INSTANCE", str(instance))
    monkeypatch.setenv("GEOLOGIN_ENCRYPTION_KEY", TEST_ENCRYPTION_KEY)
    for name, value in (env or {}).items():
        monkeypatch.setenv(name, value)
    return create_app()


@pytest.mark.parametrize("key, reason", [
    (None, "is not set"), ("", "is not set"), ("dev", "well-known default"), ("changeme", "well-known default"),
    ("short-but-random-1234", "shorter than 32"), ("a" * 40, "too little variety"),
])
def test_sec_31_refuses_to_start_without_strong_key_outside_development(tmp_path, monkeypatch, key, reason):
    env = {"GEOLOGIN_SECRET_KEY": key} if key is not None else {}
    with pytest.raises(ConfigError, match=reason):
        _app(tmp_path, monkeypatch, env)


def test_sec_31_strong_key_from_environment_or_instance_file(tmp_path, monkeypatch):
    app = _app(tmp_path, monkeypatch, {"GEOLOGIN_SECRET_KEY": TEST_SECRET_KEY})
    assert app.config["SECRET_KEY"] == TEST_SECRET_KEY
    app = _app(tmp_path, monkeypatch, instance_config=f"SECRET_KEY = {TEST_SECRET_KEY[::-1]!r}\n")
    assert app.config["SECRET_KEY"] == TEST_SECRET_KEY[::-1]


def test_sec_31_development_generates_a_private_key_once(tmp_path, monkeypatch):
    first = _app(tmp_path, monkeypatch, {"GEOLOGIN_ENV": "development"})
    key_file = tmp_path / "inst" / "secret_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(first.config["SECRET_KEY"]) >= 32
    second = _app(tmp_path, monkeypatch, {"GEOLOGIN_ENV": "development"})
    assert second.config["SECRET_KEY"] == first.config["SECRET_KEY"]


def test_development_generates_a_private_encryption_key(tmp_path, monkeypatch):
    monkeypatch.delenv("GEOLOGIN_ENCRYPTION_KEY", raising=False)
    app = _app(tmp_path, monkeypatch, {"GEOLOGIN_ENV": "development", "GEOLOGIN_ENCRYPTION_KEY": ""})
    key_file = tmp_path / "inst" / "encryption_key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    with app.app_context():
        from geologin.encryption import decrypt, encrypt
        token = encrypt("s3cret")
        assert "s3cret" not in token and decrypt(token) == "s3cret"


@pytest.mark.parametrize("key, message", [("", "ENCRYPTION_KEY is not set"), ("not-a-key", "Fernet key")])
def test_production_refuses_to_start_without_valid_encryption_key(tmp_path, monkeypatch, key, message):
    with pytest.raises(ConfigError, match=message):
        _app(tmp_path, monkeypatch, {"GEOLOGIN_SECRET_KEY": TEST_SECRET_KEY, "GEOLOGIN_ENCRYPTION_KEY": key})


def test_sec_31_cookie_signed_with_another_key_is_rejected(app_factory, make_user):
    app = app_factory()
    make_user("amina")
    client = app.test_client()
    AuthActions(client).login("amina")
    assert client.get("/").status_code == 200
    other = app_factory(SECRET_KEY="anOther-kEy-not-secret_Qw8Er5Ty2Ui9Op3As6Df1Gh4Jk7")
    forged = other.test_client()
    # Sign a session naming the very same server-side session, but with the wrong key.
    with client.session_transaction() as real_session:
        stolen = dict(real_session)
    with forged.session_transaction() as session:
        session.update(stolen)
    cookie = forged.get_cookie("geologin_session").value
    victim_app_client = app.test_client()
    victim_app_client.set_cookie("geologin_session", cookie)
    assert victim_app_client.get("/").status_code == 302


def test_environment_layer_parses_types():
    overrides = environment_overrides({
        "GEOLOGIN_USERS_PER_PAGE": "50", "GEOLOGIN_ALLOW_INSECURE_HTTP": "1", "GEOLOGIN_PUBLIC_URL": "https://x.org",
        "DATABASE_URL": "postgresql://u@h/db", "GEOLOGIN_SECRET_KEY": "12345678901234567890123456789012345",
        "OTHER": "ignored",
    })
    assert overrides == {"USERS_PER_PAGE": 50, "ALLOW_INSECURE_HTTP": True, "PUBLIC_URL": "https://x.org",
                         "SQLALCHEMY_DATABASE_URI": "postgresql://u@h/db",
                         "SECRET_KEY": "12345678901234567890123456789012345"}


def test_environment_beats_instance_file_and_database_defaults(tmp_path, monkeypatch):
    app = _app(tmp_path, monkeypatch, {"GEOLOGIN_SECRET_KEY": TEST_SECRET_KEY, "GEOLOGIN_USERS_PER_PAGE": "7"},
               instance_config="USERS_PER_PAGE = 3\nPASSWORD_MIN_LENGTH = 15\n")
    assert app.config["USERS_PER_PAGE"] == 7
    assert app.config["PASSWORD_MIN_LENGTH"] == 15
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "sqlite:///" + str(tmp_path / "inst" / "geologin.sqlite3")
    app = _app(tmp_path, monkeypatch, {"GEOLOGIN_SECRET_KEY": TEST_SECRET_KEY,
                                       "DATABASE_URL": "postgres://u:p@db.example/geo"})
    assert app.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u:p@db.example/geo"


def test_password_minimum_cannot_be_set_below_8(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="below 8"):
        _app(tmp_path, monkeypatch, {"GEOLOGIN_SECRET_KEY": TEST_SECRET_KEY, "GEOLOGIN_PASSWORD_MIN_LENGTH": "6"})


@pytest.mark.parametrize("key", ["abcdefgh" * 4, "0123456789" * 4, "abcdefghijklmnopqrstuvwxyz0123456789",
                                 "qwertyuiopasdfghjklzxcvbnm123456", "Password1234Password1234Password1234"])
def test_reg_low_entropy_secret_key_refused(tmp_path, monkeypatch, key):
    """Keys with 8+ distinct characters still fail when they repeat a pattern or walk the keyboard/alphabet."""
    with pytest.raises(ConfigError, match="SECRET_KEY .*(pattern|sequence|random)"):
        _app(tmp_path, monkeypatch, {"GEOLOGIN_SECRET_KEY": key})


@pytest.mark.parametrize("generated", [lambda: __import__("secrets").token_urlsafe(48),
                                       lambda: __import__("secrets").token_hex(32),
                                       lambda: __import__("secrets").token_urlsafe(24)])
def test_reg_random_secret_keys_still_accepted(tmp_path, monkeypatch, generated):
    for _ in range(20):  # random keys, so any false refusal would show within a few draws
        key = generated()
        app = _app(tmp_path, monkeypatch, {"GEOLOGIN_SECRET_KEY": key})
        assert app.config["SECRET_KEY"] == key


@pytest.mark.parametrize("key", ["A" * 43 + "=", "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=",
                                 "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE="])
def test_reg_low_entropy_encryption_key_refused(tmp_path, monkeypatch, key):
    """An all-zero (or repeated-byte, or digits) Fernet key is well-formed but encrypts nothing worth the name."""
    with pytest.raises(ConfigError, match="ENCRYPTION_KEY .*random"):
        _app(tmp_path, monkeypatch, {"GEOLOGIN_SECRET_KEY": TEST_SECRET_KEY, "GEOLOGIN_ENCRYPTION_KEY": key})


def test_reg_old_weak_encryption_key_after_the_first_is_refused_too(tmp_path, monkeypatch):
    with pytest.raises(ConfigError, match="ENCRYPTION_KEY"):
        _app(tmp_path, monkeypatch, {"GEOLOGIN_SECRET_KEY": TEST_SECRET_KEY,
                                     "GEOLOGIN_ENCRYPTION_KEY": TEST_ENCRYPTION_KEY + "," + "A" * 43 + "="})


@pytest.mark.parametrize("env, message", [
    ({"GEOLOGIN_ALLOW_INSECURE_HTTP": "1"}, "ALLOW_INSECURE_HTTP"),
    ({"GEOLOGIN_PUBLIC_URL": "http://login.moh.example"}, "PUBLIC_URL"),
    ({"GEOLOGIN_PUBLIC_URL": "http://login.moh.example", "GEOLOGIN_ALLOW_INSECURE_HTTP": "1"}, "development"),
])
def test_sec_13_insecure_http_refused_outside_development(tmp_path, monkeypatch, env, message):
    with pytest.raises(ConfigError, match=message):
        _app(tmp_path, monkeypatch, {"GEOLOGIN_SECRET_KEY": TEST_SECRET_KEY, **env})


def test_sec_13_insecure_http_allowed_in_development(tmp_path, monkeypatch):
    app = _app(tmp_path, monkeypatch, {"GEOLOGIN_ENV": "development", "GEOLOGIN_ALLOW_INSECURE_HTTP": "1",
                                       "GEOLOGIN_PUBLIC_URL": "http://127.0.0.1:5000"})
    assert app.config["ALLOW_INSECURE_HTTP"] is True
    app = _app(tmp_path, monkeypatch, {"GEOLOGIN_SECRET_KEY": TEST_SECRET_KEY,
                                       "GEOLOGIN_PUBLIC_URL": "https://login.moh.example/"})
    assert app.config["PUBLIC_URL"] == "https://login.moh.example"


def test_reg_hsts_max_age_zero_from_environment_is_the_number_zero(tmp_path, monkeypatch):
    """GEOLOGIN_HSTS_MAX_AGE=0 (tell browsers to forget HSTS) sent ``max-age=False``: "0" parsed as a boolean."""
    app = _app(tmp_path, monkeypatch, {"GEOLOGIN_SECRET_KEY": TEST_SECRET_KEY, "GEOLOGIN_HSTS_MAX_AGE": "0",
                                       "GEOLOGIN_PUBLIC_URL": "https://login.example.org"})
    assert app.test_client().get("/healthz").headers["Strict-Transport-Security"] == "max-age=0"


def test_reg_one_disabled_plugin_named_in_the_environment_is_disabled(tmp_path, monkeypatch):
    """GEOLOGIN_DISABLED_PLUGINS=dhis2 disabled the plugins named d, h, i, s and 2: the string was used as a set."""
    app = _app(tmp_path, monkeypatch, {"GEOLOGIN_SECRET_KEY": TEST_SECRET_KEY, "GEOLOGIN_DISABLED_PLUGINS": "dhis2"})
    assert "dhis2" not in app.extensions["geologin.plugins"].plugins
    assert "oidc" in app.extensions["geologin.plugins"].plugins
