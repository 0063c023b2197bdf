"""Admin screens laid out for reading at the browsers' usual widths: at 1100 px the audit table never
breaks a word (an event type, a username, an address) across two lines, and the page does not scroll
sideways; a table too wide for the window scrolls inside its own box."""
import pytest

from tests.browser.conftest import ADMIN, log_in_with_password, step_screenshot

pytestmark = pytest.mark.browser

SPLIT_WORDS = """(columns) => {
  const split = [];
  for (const row of document.querySelectorAll('table.audit tbody tr')) {
    [...row.cells].slice(0, columns).forEach((cell, column) => {
      const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
      for (let node = walker.nextNode(); node; node = walker.nextNode()) {
        for (const match of node.data.matchAll(/\\S+/g)) {
          const range = document.createRange();
          range.setStart(node, match.index);
          range.setEnd(node, match.index + match[0].length);
          const lines = new Set([...range.getClientRects()].map(box => Math.round(box.top)));
          if (lines.size > 1) split.push({column, word: match[0]});
        }
      }
    });
  }
  return split;
}"""


@pytest.fixture(scope="module")
def busy_site(start_geologin):
    geologin = start_geologin("layout")
    geologin.flask("users", "create", ADMIN[0], "--admin", "--password-stdin", stdin=ADMIN[1] + "\n")
    for name in ("amina.rahman-abdullah", "jean-baptiste.nkurunziza"):
        geologin.flask("users", "create", name, "--no-password", "--display-name", name.title())
        geologin.flask("users", "deactivate", name)
    return geologin


@pytest.mark.parametrize("locale", ["en", "fr"])
def test_reg_audit_table_keeps_words_whole_at_1100px(busy_site, open_page, locale):
    stranger = open_page()
    for _ in range(2):  # failures with reason codes
        log_in_with_password(stranger, busy_site, "amina.rahman-abdullah", "not-her-password-at-all")
    page = open_page(locale=locale, viewport={"width": 1100, "height": 800})
    page.goto(busy_site.url + "/login")  # in the page's language: fields by id, not by English label
    page.locator("#username").fill(ADMIN[0])
    page.locator("#password").fill(ADMIN[1])
    page.locator("main form button.primary").click()
    page.goto(busy_site.url + "/admin/audit")
    assert page.locator("table.audit tbody tr").count() >= 6
    step_screenshot(page, f"21-audit-1100-{locale}")
    split = page.evaluate(SPLIT_WORDS, 8)  # every column but the free-text detail
    assert split == [], f"words broken across lines: {split}"
    widths = page.evaluate("({scroll: document.documentElement.scrollWidth,"
                           " client: document.documentElement.clientWidth})")
    assert widths["scroll"] <= widths["client"], "the page scrolls sideways"
