"""Issue 9: the Arabic login page in headless Chromium reads right to left, and nothing on it overflows the
window or overlaps anything else (element bounding boxes), on a desktop and on a phone-sized window; axe-core
finds no serious accessibility violation on it (the language picker included).
``GEOLOGIN_SCREENSHOTS=docs/screenshots`` (make screenshots) saves what it saw."""
import pytest

import json

from tests.browser.conftest import ADMIN, axe_script, step_screenshot

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips (or, in CI, fails) these tests first
    expect = None

pytestmark = pytest.mark.browser

# What a person sees and uses on the login page; each must be inside the window and clear of the others.
LOGIN_PARTS = ("header .brand", "header nav a", "#language-picker", ".language-picker label",
               ".language-picker button", "main h1", "label[for=username]", "#username", "label[for=password]",
               "#password", "main form button.primary", ".or span", ".external-logins label", "#dhis2-server",
               ".dhis2-login button")

BOXES = """(selectors) => {
  const found = [], seen = new Set();
  for (const selector of selectors) {
    for (const element of document.querySelectorAll(selector)) {
      if (seen.has(element)) continue;
      seen.add(element);
      const box = element.getBoundingClientRect();
      if (box.width === 0 || box.height === 0) continue;
      found.push({selector, text: (element.innerText || element.value || '').slice(0, 30),
                  left: box.left, right: box.right, top: box.top + window.scrollY,
                  bottom: box.bottom + window.scrollY, width: box.width});
    }
  }
  return {boxes: found, scrollWidth: document.documentElement.scrollWidth,
          clientWidth: document.documentElement.clientWidth};
}"""

TEXT_BOX = """(selector) => {
  const range = document.createRange();
  range.selectNodeContents(document.querySelector(selector));
  const box = range.getBoundingClientRect();
  return {left: box.left, right: box.right};
}"""


def _overlap(a, b, tolerance=1):
    return (min(a["right"], b["right"]) - max(a["left"], b["left"]) > tolerance
            and min(a["bottom"], b["bottom"]) - max(a["top"], b["top"]) > tolerance)


@pytest.fixture(scope="module")
def arabic_site(browser, start_geologin):
    geologin = start_geologin("rtl")
    geologin.flask("users", "create", ADMIN[0], "--admin", "--password-stdin", stdin=ADMIN[1] + "\n")
    for slug, label in (("moh", "وزارة الصحة DHIS2"), ("malaria", "Malaria programme (DHIS2 2.42)")):
        # Never contacted here: the login page only lists them (two servers: the server select shows).
        geologin.flask("providers", "add", "dhis2", "--slug", slug, "--label", label, "--base-url",
                       "http://127.0.0.1:9/", "--client-id", "geologin", "--client-secret-stdin", "--enabled", stdin="x\n")
    return geologin


@pytest.mark.parametrize("viewport", [{"width": 1100, "height": 800}, {"width": 360, "height": 740}],
                         ids=["desktop", "phone"])
def test_arabic_login_page_reads_right_to_left_and_nothing_overflows(arabic_site, open_page, viewport):
    page = open_page(locale="ar", viewport=viewport)  # Accept-Language: ar
    page.goto(arabic_site.url + "/login")
    expect(page.locator("html")).to_have_attribute("dir", "rtl")
    expect(page.locator("html")).to_have_attribute("lang", "ar")
    assert page.evaluate("getComputedStyle(document.querySelector('main form')).direction") == "rtl"
    step_screenshot(page, f"20-login-arabic-{viewport['width']}")

    seen = page.evaluate(BOXES, list(LOGIN_PARTS))
    boxes = seen["boxes"]
    assert {b["selector"] for b in boxes} >= {"#username", "#password", "#dhis2-server", "#language-picker",
                                              ".or span", "main form button.primary"}
    assert seen["scrollWidth"] <= seen["clientWidth"], "the page scrolls sideways"
    outside = [b for b in boxes if b["left"] < -0.5 or b["right"] > seen["clientWidth"] + 0.5]
    assert not outside, f"outside the window: {outside}"
    overlapping = [(a["selector"], a["text"], b["selector"], b["text"])
                   for i, a in enumerate(boxes) for b in boxes[i + 1:] if _overlap(a, b)]
    assert not overlapping, f"overlapping: {overlapping}"

    # Right to left: a label starts at the right edge of its field, and the brand is at the right.
    def box(selector):
        return next(b for b in boxes if b["selector"] == selector)

    for label, field in (("label[for=username]", "#username"), ("label[for=password]", "#password")):
        text = page.evaluate(TEXT_BOX, label)  # the words, not the (full-width) label box
        assert abs(text["right"] - box(field)["right"]) <= 2, (label, text, box(field))
        assert text["left"] > box(field)["left"] + 20, (label, text, box(field))
    if viewport["width"] > 600:
        assert box("header .brand")["left"] > box("#language-picker")["right"]


def test_arabic_login_page_has_no_serious_accessibility_violations(arabic_site, open_page):
    axe_js = axe_script()  # skips (fails in CI) when axe-core is not installed
    page = open_page(locale="ar", bypass_csp=True)  # only this checking browser ignores the CSP
    page.goto(arabic_site.url + "/login")
    page.add_script_tag(path=str(axe_js))
    results = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    blocking = [v for v in results["violations"] if v["impact"] in ("serious", "critical")]
    assert not blocking, json.dumps([{"rule": v["id"], "help": v["help"],
                                      "where": [n["target"] for n in v["nodes"]][:5]} for v in blocking], indent=2)
