"""Compile the message catalogs: every ``.po`` of the core and of the plugins in the source tree becomes the
``.mo`` Flask-Babel reads. The ``.mo`` files are build output (never committed); they are made by
``make install``/``make install-test`` (so ``make run`` and ``make test`` have them), by the package build
(setup.py's build_py hook) and by the test suite's start when a ``.po`` is newer than its ``.mo``.

This module needs Babel only, not Flask or geologin: setup.py loads it by path during an isolated build.
Usage: ``python geologin/i18n/catalogs.py [--force]``.
"""
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# The core's catalogs, then each plugin folder's (plugins/<name>/translations/).
CATALOG_GLOBS = ("geologin/i18n/translations/*/LC_MESSAGES/*.po", "plugins/*/translations/*/LC_MESSAGES/*.po")


def po_files(root=ROOT):
    return sorted(path for pattern in CATALOG_GLOBS for path in Path(root).glob(pattern))


def compile_catalog(po_path, mo_path=None):
    """Write the ``.mo`` beside ``po_path``. Fuzzy and untranslated messages are left out, so they show in
    English rather than wrongly (the catalog-completeness test keeps them from being committed)."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    po_path = Path(po_path)
    mo_path = Path(mo_path) if mo_path else po_path.with_suffix(".mo")
    with po_path.open("rb") as handle:
        catalog = read_po(handle, locale=po_path.parent.parent.name)
    tmp = mo_path.with_name(mo_path.name + ".tmp")
    with tmp.open("wb") as handle:
        write_mo(handle, catalog, use_fuzzy=False)
    tmp.replace(mo_path)  # atomic: a running server never reads half a file
    return mo_path


def compile_all(root=ROOT, force=False):
    """Compile every catalog whose ``.mo`` is missing or older than its ``.po``; return those compiled."""
    compiled = []
    for po_path in po_files(root):
        mo_path = po_path.with_suffix(".mo")
        if force or not mo_path.exists() or mo_path.stat().st_mtime < po_path.stat().st_mtime:
            compiled.append(compile_catalog(po_path, mo_path))
    return compiled


if __name__ == "__main__":
    done = compile_all(force="--force" in sys.argv[1:])
    print(f"message catalogs: {len(done)} compiled, {len(po_files()) - len(done)} up to date")
