"""docs/security.md maps every checklist item to its tests; keep the map and the tests honest."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# A-G, then H (geologin as an OpenID provider), then I (forward-auth), then J (kept tokens, directories).
CHECKLIST_ITEMS = [*range(1, 76)]


KIT = ROOT / "geologin" / "providers" / "testing"  # the plugin contract: every plugin's tests run it


def _security_tests():
    found = {}
    kit = list(KIT.glob("*.py"))
    for path in [*(ROOT / "tests").rglob("test_*.py"), *kit]:
        where = path.relative_to(ROOT if path in kit else ROOT / "tests")
        for name in re.findall(r"def (test_sec_\w+)", path.read_text()):
            found[f"{where}::{name}"] = {int(n) for n in re.findall(r"sec_(\d+)", name)}
    return found


def test_every_checklist_item_has_a_test_named_after_it():
    covered = set().union(*_security_tests().values())
    assert [item for item in CHECKLIST_ITEMS if item not in covered] == []


def test_security_doc_names_only_existing_tests_and_every_item():
    doc = (ROOT / "docs" / "security.md").read_text()
    named = set(re.findall(r"`([\w/]+\.py::test_sec_\w+)`", doc))
    assert named - set(_security_tests()) == set()
    rows = {int(n) for n in re.findall(r"^\| (\d+) \|", doc, flags=re.MULTILINE)}
    assert rows == set(CHECKLIST_ITEMS)


@pytest.mark.parametrize("prefix", ["test_oidcc", "test_reg"])
def test_security_doc_names_only_existing_named_tests(prefix):
    """The tests the doc lists by an OpenID conformance name (``test_oidcc_...``) or in its regression tables
    (``test_reg_...``) exist, so a renamed or deleted test shows up here."""
    doc = (ROOT / "docs" / "security.md").read_text()
    named = set(re.findall(rf"`([\w/]+\.py::{prefix}_\w+)`", doc))
    existing = {f"{path.relative_to(ROOT / 'tests')}::{name}" for path in (ROOT / "tests").rglob("test_*.py")
                for name in re.findall(rf"def ({prefix}_\w+)", path.read_text())}
    assert named and named - existing == set()
