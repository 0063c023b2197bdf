"""Build hook (the metadata is in pyproject.toml): compile the plugin's .po catalogs into the .mo files
Flask-Babel reads, so every wheel and `pip install .` ships them. Never commit the .mo files."""
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithCatalogs(build_py):
    def run(self):
        from babel.messages.mofile import write_mo
        from babel.messages.pofile import read_po

        for po in Path(__file__).parent.glob("geologin_example/translations/*/LC_MESSAGES/*.po"):
            with po.open("rb") as source, po.with_suffix(".mo").open("wb") as target:
                write_mo(target, read_po(source, locale=po.parent.parent.name))
        super().run()


setup(cmdclass={"build_py": BuildPyWithCatalogs})
