"""Build hook (the rest of the metadata is in setup.cfg): compile the message catalogs before build_py
copies the package, so every wheel and every `pip install .` ships the .mo files next to the .po files.
The .mo files are build output and never committed (see geologin/i18n/catalogs.py)."""
import importlib.util
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def _catalogs():
    # By path: importing the geologin package would need Flask, which an isolated build does not have.
    spec = importlib.util.spec_from_file_location("geologin_catalogs", HERE / "geologin" / "i18n" / "catalogs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The checkout keeps these at the top level (the project's layout); a wheel carries them inside the package,
# where geologin.resource_folder finds them. Test tooling (the fake servers among it) lives under tests/,
# which is never packaged.
BUNDLED = ("templates", "static", "plugins")
NOT_SHIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pot", "babel.cfg")


class BuildPyWithCatalogs(build_py):
    def run(self):
        _catalogs().compile_all(HERE)
        super().run()
        if not self.editable_mode:
            target = Path(self.build_lib) / "geologin" / "_bundled"
            shutil.rmtree(target, ignore_errors=True)
            for name in BUNDLED:
                shutil.copytree(HERE / name, target / name, ignore=NOT_SHIPPED)


setup(cmdclass={"build_py": BuildPyWithCatalogs})
