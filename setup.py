"""Build hook (the rest of the metadata is in setup.cfg): compile the message catalogs before build_py
copies the package, so every wheel and every `pip install .` ships the .mo files next to the .po files.
The .mo files are build output and never committed (see geologin/catalogs.py)."""
import importlib.util
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent


def _catalogs():
    # By path: importing the geologin package would need Flask, which an isolated build does not have.
    spec = importlib.util.spec_from_file_location("geologin_catalogs", HERE / "geologin" / "catalogs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class BuildPyWithCatalogs(build_py):
    def run(self):
        _catalogs().compile_all(HERE)
        super().run()


setup(cmdclass={"build_py": BuildPyWithCatalogs})
