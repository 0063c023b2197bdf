"""Finding provider plugins: a plugins/ folder and installed distributions' entry points. A broken
plugin is reported and never takes the app down."""
import logging
import textwrap

from geologin import ROOT

PROVIDER_SOURCE = textwrap.dedent('''
    from geologin.providers import Provider, Setting

    class {cls}(Provider):
        type = "{type}"
        display_name = "{display}"
        settings = (Setting("server_url", "Server", kind="url", required=True),)

    provider = {cls}
''')


def _folder_plugin(folder, name, source):
    (folder / name).mkdir(parents=True)
    (folder / name / "__init__.py").write_text(source)


def _installed_plugin(site, dist, module, entry_name, source):
    """What `pip install` leaves on sys.path: a module and a dist-info with an entry point."""
    (site / module).mkdir(parents=True)
    (site / module / "__init__.py").write_text(source)
    info = site / f"{dist}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[geologin.providers]\n{entry_name} = {module}\n")


def test_the_bundled_plugins_are_found_in_the_plugins_folder(app):
    registry = app.extensions["geologin.plugins"]
    assert registry.types() == ["dhis2", "oidc"]
    assert registry.plugins["dhis2"].origin == f"folder {ROOT / 'plugins' / 'dhis2'}"
    assert registry.plugins["oidc"].origin == f"folder {ROOT / 'plugins' / 'oidc'}"
    assert registry.broken == {}


def test_folder_plugin_is_loaded_with_its_settings(app_factory, tmp_path):
    _folder_plugin(tmp_path / "extra", "acme", PROVIDER_SOURCE.format(cls="Acme", type="acme", display="Acme ID"))
    app = app_factory(PLUGINS_FOLDER=[str(ROOT / "plugins"), str(tmp_path / "extra")])
    registry = app.extensions["geologin.plugins"]
    assert registry.types() == ["acme", "dhis2", "oidc"]
    assert [s.name for s in registry.get("acme").settings] == ["server_url"]


def test_entry_point_plugin_is_loaded(app_factory, tmp_path, monkeypatch):
    _installed_plugin(tmp_path / "site", "geologin-example", "geologin_example_idp", "example",
                      PROVIDER_SOURCE.format(cls="Example", type="example", display="Example"))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    app = app_factory()
    registry = app.extensions["geologin.plugins"]
    assert "example" in registry.types()
    assert registry.plugins["example"].origin == "entry point geologin_example_idp (geologin-example)"


def test_broken_plugins_are_reported_and_the_app_still_serves(app_factory, tmp_path, monkeypatch, caplog):
    extra = tmp_path / "extra"
    _folder_plugin(extra, "syntax", "def broken(:\n")
    _folder_plugin(extra, "noprovider", "x = 1\n")
    _folder_plugin(extra, "badtype", PROVIDER_SOURCE.format(cls="Bad", type="Not Valid", display="Bad"))
    _folder_plugin(extra, "twin", PROVIDER_SOURCE.format(cls="Twin", type="dhis2", display="Another DHIS2"))
    _installed_plugin(tmp_path / "site", "geologin-missing", "geologin_missing_dep", "missing",
                      "import a_module_that_is_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    with caplog.at_level(logging.ERROR, logger="geologin.plugins"):
        app = app_factory(PLUGINS_FOLDER=[str(ROOT / "plugins"), str(extra)])
    broken = app.extensions["geologin.plugins"].broken
    assert set(broken) == {"syntax", "noprovider", "badtype", "twin", "missing"}
    assert broken["syntax"].startswith("SyntaxError")
    assert "must define `provider" in broken["noprovider"]
    assert "lowercase identifier" in broken["badtype"]
    assert "already provided" in broken["twin"]
    assert broken["missing"].startswith("ModuleNotFoundError")
    assert "provider plugin syntax failed to load" in caplog.text.replace(str(extra) + "/", "")
    assert app.extensions["geologin.plugins"].types() == ["dhis2", "oidc"]
    assert app.test_client().get("/login").status_code == 200


def test_disabled_plugins_are_not_loaded(app_factory):
    app = app_factory(DISABLED_PLUGINS=["dhis2"])
    assert app.extensions["geologin.plugins"].types() == ["oidc"]
    assert "/api/session/ologin" not in {rule.rule for rule in app.url_map.iter_rules()}
