"""The settings table (``SETTINGS`` in geologin/config.py) is the one list of settings: the README's
configuration table, instance/config.example.py and docs/deploy.md must say what it says, and loading gives
every value its type or refuses it with one line."""
import ast
import re
from pathlib import Path

import pytest

from geologin.config import (
    ENVIRONMENT_ALIASES, ENVIRONMENT_ONLY, SETTINGS, SETTINGS_BY_NAME, ConfigError, environment_overrides,
)
from tests.conftest import TEST_SECRET_KEY
from tests.test_config import _app

ROOT = Path(__file__).resolve().parent.parent


def _readme_rows():
    """(names, default cell) of each row of the README's configuration table."""
    section = ROOT.joinpath("README.md").read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if not line.startswith("|") or len(cells) < 3 or set(cells[0]) <= set("- "):
            continue
        outside_brackets = re.sub(r"\([^()]*\)", "", cells[0])
        names = [ENVIRONMENT_ALIASES.get(name, name)
                 for name in re.findall(r"`(?:GEOLOGIN_)?([A-Z][A-Z0-9_]+)`", outside_brackets)]
        if names and names != ["setting"]:
            yield names, cells[1]


def _stated_default(part):
    """A default as the README states it, without its remark in brackets or its unit (``15 s``, ``19456 KiB``)."""
    part = re.sub(r"\s*\([^()]*\)", "", part).strip()
    number_and_unit = re.fullmatch(r"(\d+(?:\.\d+)?) [A-Za-z]+", part)
    return number_and_unit.group(1) if number_and_unit else part


def test_readme_configuration_table_names_every_setting_once_with_its_default():
    documented = []
    for names, defaults in _readme_rows():
        if names[0] in ENVIRONMENT_ONLY:
            continue
        parts = defaults.split(" / ")
        assert len(parts) == len(names), f"README row {names}: {len(names)} settings but defaults {defaults!r}"
        for name, part in zip(names, parts):
            assert name in SETTINGS_BY_NAME, f"the README names {name}, which geologin/config.py's SETTINGS lacks"
            assert _stated_default(part) == SETTINGS_BY_NAME[name].shown(), \
                f"the README says {name} defaults to {part!r}; SETTINGS says {SETTINGS_BY_NAME[name].shown()}"
            documented.append(name)
    assert sorted(documented) == sorted(set(documented)), "a setting has two rows in the README"
    assert set(SETTINGS_BY_NAME) - set(documented) == set(), "settings missing from the README's table"


def _example_assignments():
    for line in ROOT.joinpath("instance", "config.example.py").read_text().splitlines():
        code = line.lstrip("#").strip()
        if re.match(r"[A-Z][A-Z0-9_]* = ", code):
            assignment = ast.parse(code).body[0]
            yield assignment.targets[0].id, ast.literal_eval(assignment.value)


def test_config_example_lists_every_setting_once_with_its_default():
    seen = []
    for name, value in _example_assignments():
        assert name in SETTINGS_BY_NAME, f"config.example.py sets {name}, which SETTINGS lacks"
        setting = SETTINGS_BY_NAME[name]
        if setting.default is None:  # no default: an example, which must be a value loading accepts
            setting.convert(value)
        else:
            assert value == setting.default, \
                f"config.example.py gives {name} = {value!r}; its default is {setting.default!r}"
        seen.append(name)
    assert sorted(seen) == sorted(set(seen)), "a setting appears twice in config.example.py"
    assert set(SETTINGS_BY_NAME) - set(seen) == set(), "settings missing from config.example.py"


@pytest.mark.parametrize("document", ["README.md", "docs/deploy.md"])
def test_documents_name_only_real_settings(document):
    named = set(re.findall(r"GEOLOGIN_([A-Z][A-Z0-9_]*[A-Z0-9])", ROOT.joinpath(document).read_text()))
    unknown = {name for name in named if name not in SETTINGS_BY_NAME and name not in ENVIRONMENT_ONLY
               and not name.startswith("TEST_")}
    assert unknown == set(), f"{document} names settings geologin does not have"


def test_every_default_is_a_value_loading_accepts():
    for setting in SETTINGS:
        assert setting.convert(setting.default) == setting.default, setting.name


@pytest.mark.parametrize("variable, raw, value", [
    ("HSTS_MAX_AGE", "0", 0), ("HSTS_MAX_AGE", " 600 ", 600), ("ALLOW_INSECURE_HTTP", "0", False),
    ("ALLOW_INSECURE_HTTP", "Yes", True), ("HTTP_QUEUE_TIMEOUT", "0.2", 0.2), ("HTTP_CONNECT_TIMEOUT", "3", 3.0),
    ("DISABLED_PLUGINS", "dhis2, oidc", ["dhis2", "oidc"]), ("DISABLED_PLUGINS", '["dhis2"]', ["dhis2"]),
    ("PLUGINS_FOLDER", "/a:/b", ["/a", "/b"]), ("AUDIT_RETENTION_DAYS", "", None),
    ("AUDIT_RETENTION_DAYS", "1", 1), ("SQLITE_JOURNAL_MODE", "wal", "WAL"), ("LOG_FORMAT", "JSON", "json"),
    ("SESSION_COOKIE_SECURE", "", None), ("SQLALCHEMY_ENGINE_OPTIONS", '{"pool_size": 5}', {"pool_size": 5}),
    ("SECRET_KEY", "0", "0"), ("LOGIN_RATE_LIMIT", "10 per minute", "10 per minute"),
])
def test_environment_values_become_their_settings_type(variable, raw, value):
    converted = environment_overrides({"GEOLOGIN_" + variable: raw})[variable]
    assert converted == value and type(converted) is type(value)


@pytest.mark.parametrize("variable, raw, message", [
    ("HSTS_MAX_AGE", "-1", "GEOLOGIN_HSTS_MAX_AGE is '-1', but it must be a whole number, not below 0."),
    ("HSTS_MAX_AGE", "a year", "GEOLOGIN_HSTS_MAX_AGE is 'a year', but it must be a whole number, not below 0."),
    ("USERS_PER_PAGE", "2.5", "GEOLOGIN_USERS_PER_PAGE is '2.5', but it must be a whole number, not below 1."),
    ("ALLOW_INSECURE_HTTP", "maybe",
     "GEOLOGIN_ALLOW_INSECURE_HTTP is 'maybe', but it must be true or false (1/0, yes/no, on/off)."),
    ("HTTP_TOTAL_TIMEOUT", "nan", "GEOLOGIN_HTTP_TOTAL_TIMEOUT is 'nan', but it must be a number, not below 0.001."),
    ("LOG_FORMAT", "xml", "GEOLOGIN_LOG_FORMAT is 'xml', but it must be one of 'text', 'json'."),
    ("PASSWORD_MAX_LENGTH", "20", "GEOLOGIN_PASSWORD_MAX_LENGTH is '20', but it must be a whole number, not below 64."),
    ("SQLALCHEMY_ENGINE_OPTIONS", "[1]", "GEOLOGIN_SQLALCHEMY_ENGINE_OPTIONS is '[1]', but it must be a JSON object."),
])
def test_bad_environment_value_refuses_to_start_with_one_line(tmp_path, monkeypatch, variable, raw, message):
    with pytest.raises(ConfigError) as refused:
        _app(tmp_path, monkeypatch, {"GEOLOGIN_SECRET_KEY": TEST_SECRET_KEY, "GEOLOGIN_" + variable: raw})
    assert str(refused.value) == message


def test_bad_instance_file_value_refuses_to_start_naming_the_setting(tmp_path, monkeypatch):
    with pytest.raises(ConfigError) as refused:
        _app(tmp_path, monkeypatch, {"GEOLOGIN_SECRET_KEY": TEST_SECRET_KEY},
             instance_config="SESSION_IDLE_MINUTES = True\n")
    assert str(refused.value) == "SESSION_IDLE_MINUTES is True, but it must be a whole number, not below 1."


def test_instance_file_text_is_converted_like_the_environment(tmp_path, monkeypatch):
    app = _app(tmp_path, monkeypatch, {"GEOLOGIN_SECRET_KEY": TEST_SECRET_KEY},
               instance_config='USERS_PER_PAGE = "30"\nALLOW_INSECURE_HTTP = "off"\n')
    assert app.config["USERS_PER_PAGE"] == 30 and app.config["ALLOW_INSECURE_HTTP"] is False


def test_a_secret_in_the_wrong_type_is_refused_without_repeating_it(tmp_path, monkeypatch):
    with pytest.raises(ConfigError) as refused:
        _app(tmp_path, monkeypatch, {}, instance_config="SECRET_KEY = 1234567890123456789012345678901234567\n")
    assert str(refused.value) == "SECRET_KEY must be text (or empty for none)."


def test_configuration_error_is_one_line_from_the_wsgi_entry_point(tmp_path):
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if not k.startswith("GEOLOGIN_") and k != "DATABASE_URL"}
    env.update(GEOLOGIN_INSTANCE=str(tmp_path), GEOLOGIN_HSTS_MAX_AGE="forever", GEOLOGIN_SECRET_KEY=TEST_SECRET_KEY)
    result = subprocess.run([sys.executable, "-c", "import geologin.wsgi"], env=env, capture_output=True, text=True,
                            cwd=ROOT)
    assert result.returncode == 1
    assert result.stderr == ("geologin: configuration error: GEOLOGIN_HSTS_MAX_AGE is 'forever', but it must be a "
                             "whole number, not below 0.\n")
