"""The README's table "What it logs" has a row for each tag of the module's error-log lines
and the application library's (TGnnnnn), as the sources write them, and no other. (test_config checks its table of
directives against what httpd lists.)"""

import re
import unittest

from harness import REPO_ROOT

README = REPO_ROOT / "README.md"
SOURCES = sorted([*REPO_ROOT.glob("mod_tomograph*.c"), *(REPO_ROOT / "src").glob("*.c"),
                  *(REPO_ROOT / "lib").glob("*.c")])


class LogTagsTest(unittest.TestCase):
    def test_readme_explains_every_error_log_tag(self):
        logged = {f"TG{number}" for source in SOURCES
                  for number in re.findall(r"TGLOGNO\((\d{5})\)", source.read_text())}
        self.assertGreaterEqual(len(logged), 20, "the tags in mod_tomograph*.c, src/*.c and lib/*.c")
        table = README.read_text().split("## What it logs\n", 1)[1].split("\n## ", 1)[0]
        documented = {tag for row in re.findall(r"^\| (TG[^|]*)\|", table, re.MULTILINE)
                      for tag in re.findall(r"TG\d{5}", row)}
        self.assertEqual(documented, logged)


if __name__ == "__main__":
    unittest.main()
