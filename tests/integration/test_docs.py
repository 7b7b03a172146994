"""The README tells an operator of everything the module has them meet: each directive the
module takes (its table "Directives") and each tag of the module's error-log lines (its table
"What it logs"), no more and no fewer than the sources have."""

import re
import unittest

from harness import REPO_ROOT

README = REPO_ROOT / "README.md"
SOURCES = sorted([*REPO_ROOT.glob("mod_tomograph*.c"), *(REPO_ROOT / "src").glob("*.c")])


def readme_section(title):
    """The text of README's "## title" section."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README.read_text(),
                      re.MULTILINE | re.DOTALL)
    if not match:
        raise AssertionError(f"README has no section {title!r}")
    return match.group(1)


def first_cells(section):
    """The first cell of each row of the section's table, but the header."""
    return [line.split("|")[1].strip() for line in section.splitlines()
            if line.startswith("|") and not line.startswith("|-")][1:]


class ReadmeTest(unittest.TestCase):
    def test_every_directive_is_documented(self):
        declared = set(re.findall(r'AP_INIT_\w+\(\s*"(Tomograph\w+)"',
                                  (REPO_ROOT / "mod_tomograph_config.c").read_text()))
        documented = {re.match(r"`(Tomograph\w+)", cell).group(1)
                      for cell in first_cells(readme_section("Directives"))}
        self.assertTrue(declared, "no directive found in mod_tomograph_config.c")
        self.assertEqual(documented, declared)

    def test_every_error_log_tag_is_documented(self):
        logged = {f"TG{number}" for source in SOURCES
                  for number in re.findall(r"TGLOGNO\((\d{5})\)", source.read_text())}
        documented = {tag for cell in first_cells(readme_section("What it logs"))
                      for tag in re.findall(r"TG\d{5}", cell)}
        self.assertTrue(logged, "no TGLOGNO found in the sources")
        self.assertEqual(documented, logged)


if __name__ == "__main__":
    unittest.main()
