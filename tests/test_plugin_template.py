"""examples/plugin-template is a working plugin: built and installed like a third party's package (into a
throwaway folder, outside this repository), geologin finds it through its entry point, and its own test
(the plugin contract) passes against the installed copy."""
import os
import shutil
import subprocess
import sys

from geologin import ROOT

TEMPLATE = ROOT / "examples" / "plugin-template"


def test_the_plugin_template_installs_through_its_entry_point_and_passes_its_test(tmp_path):
    source, site = tmp_path / "source", tmp_path / "site"
    shutil.copytree(TEMPLATE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(source)], check=True, cwd=tmp_path)
    assert (site / "geologin_example" / "__init__.py").is_file()
    env = {**os.environ, "PYTHONPATH": str(site), "GEOLOGIN_INSTANCE": str(tmp_path / "instance")}
    found = subprocess.run([sys.executable, "-c", (
        "from geologin import create_app\n"
        "app = create_app({'TESTING': True, 'SECRET_KEY': 'tEst-kEy-not-secret_Vq3sXw9LpZr2Hn7Ty4Bd8Gk6Mc1Jf5Ue0', 'SQLALCHEMY_DATABASE_URI': 'sqlite://', 'ENCRYPTION_KEY': '7TSaOKjj0yW2GIQqPJmHlmz9Xw2kqzn_p6s0sNqD5sA='})\n"
        "plugin = app.extensions['geologin.plugins'].plugins['example']\n"
        "print(plugin.origin)\n"
        "with app.test_request_context(headers={'Accept-Language': 'fr'}):\n"
        "    print(plugin.provider.settings[0].label)")], env=env, cwd=tmp_path, capture_output=True, text=True)
    assert found.returncode == 0, found.stderr
    origin, label = found.stdout.strip().splitlines()
    assert origin == "entry point geologin_example (geologin-example)"
    assert label == "Adresse du serveur"  # the plugin's own catalog, compiled by its build, merged by geologin
    tests = tmp_path / "tests"
    shutil.copytree(source / "tests", tests)
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tests)],
                         env=env, cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and "failed" not in run.stdout
