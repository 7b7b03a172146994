"""tomograph-view --html, opened in headless Chromium (Debian's chromium, driven through
chromedriver's WebDriver API): a screenshot is taken, and the page's DOM shows the traces
to pick from, the spans of the one picked with their nesting and errors, and a span's
tags and notes after a click.  Span names and tags that are HTML or script stay text."""

import os
import re
import struct
import tempfile
import unittest
import zlib
from pathlib import Path

import webdriver
from spans import (DB, GLANCE, IMAGE, IMAGE_DB, KEYSTONE, NOVA, ROOT, T0, run_view,
                   sample_lines, span)

EVIL = "e7" * 16
EVIL_NAME = "<script>alert(1)</script>"
EVIL_TAG = '"><img src=x onerror="window.pwned=1">'


def png_size(data):
    """A PNG's (width, height), after checking its signature and header chunk."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", data[:8]
    length, kind = struct.unpack(">I4s", data[8:16])
    assert kind == b"IHDR" and length == 13
    assert zlib.crc32(data[12:29]) == struct.unpack(">I", data[29:33])[0]
    return struct.unpack(">II", data[16:24])


class HtmlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not webdriver.available():
            raise RuntimeError("chromium and chromium-driver are needed: run scripts/setup")
        cls.work = tempfile.TemporaryDirectory(prefix="tomograph-view-html-")
        work = Path(cls.work.name)
        lines = sample_lines() + [
            span(EVIL, "7000000000000001", None, EVIL_NAME, "</style><b>svc", T0 - 60_000_000,
                 50, 200, tags={"user": EVIL_TAG, "u2028": "a\u2028b</script><!--"}),
            "not a span"]
        (work / "spans.json").write_text("\n".join(lines) + "\n")
        cls.page = work / "traces.html"
        status, _, cls.stderr = run_view("--html", cls.page, work / "spans.json")
        assert status == 0, cls.stderr
        cls.browser = webdriver.Browser(work / "profile")
        cls.browser.open(cls.page.as_uri())

    @classmethod
    def tearDownClass(cls):
        cls.browser.quit()
        cls.work.cleanup()

    def pick(self, trace_id):
        self.browser.click(self.browser.find(f'#traces li[data-trace-id="{trace_id}"]'))

    def spans(self):
        b = self.browser
        return [(b.attribute(g, "data-span-id"), int(b.attribute(g, "data-depth")),
                 b.attribute(g, "data-service"), "error" in b.attribute(g, "class"))
                for g in b.find_all("#trace-svg g.span")]

    def test_self_contained(self):
        text = self.page.read_text()
        self.assertNotRegex(text, r'(?i)<(script|link|img|iframe)[^>]+(src|href)=')
        self.assertNotRegex(text, r"https?://(?!www\.w3\.org/2000/svg)")
        self.assertIn("default-src 'none'", text)
        self.assertIn("1 malformed line skipped", self.stderr)

    def test_traces_listed_newest_first(self):
        b = self.browser
        items = b.find_all("#traces li")
        self.assertEqual([b.attribute(li, "data-trace-id") for li in items],
                         [GLANCE, KEYSTONE, NOVA, EVIL])
        self.assertIn("put /images/9/file", b.text(items[0]))
        self.assertIn("1 error", b.text(items[2]))

    def test_timeline_nesting_and_a_click_shows_tags_and_notes(self):
        b = self.browser
        self.pick(NOVA)
        self.assertIn(NOVA, b.text(b.find("#trace-title")))
        self.assertEqual(self.spans(), [(ROOT, 0, "nova", False), (DB, 1, "nova", False),
                                        (IMAGE, 1, "glance", True),
                                        (IMAGE_DB, 2, "glance", False)])
        # Coloured by service: the two services' bars differ, a service's are alike.
        fills = [b.attribute(bar, "fill") for bar in b.find_all("#trace-svg g.span rect.bar")]
        self.assertEqual(fills[0], fills[1])
        self.assertEqual(fills[2], fills[3])
        self.assertNotEqual(fills[0], fills[2])
        # Nested: a child's label starts right of its parent's, its bar within its parent's.
        labels = [float(b.attribute(t, "x")) for t in b.find_all("#trace-svg text.label")]
        self.assertLess(labels[0], labels[1])
        self.assertLess(labels[2], labels[3])
        bars = [(float(b.attribute(r, "x")), float(b.attribute(r, "width")))
                for r in b.find_all("#trace-svg rect.bar")]
        self.assertAlmostEqual(bars[2][0] - bars[0][0], bars[0][1] * 0.4, delta=1)
        self.assertAlmostEqual(bars[2][1], bars[0][1] * 0.5, delta=1)
        self.assertEqual(len(b.find_all("#trace-svg g.span.error .error-mark")), 1)
        # A click on the failed span: its fields, tags and notes.
        b.click(b.find(f'#trace-svg g.span[data-span-id="{IMAGE}"] rect.bar'))
        details = b.text(b.find("#details"))
        self.assertIn("get /images/7", details)
        tags = {b.attribute(tr, "data-tag"): b.text(tr)
                for tr in b.find_all("#span-tags tr")}
        self.assertEqual(set(tags), {"http.status_code", "error"})
        self.assertIn("500", tags["http.status_code"])
        notes = b.text(b.find("#span-notes"))  # from the trace's start, as Zipkin shows them
        self.assertEqual(re.findall(r"\+(\S+ \S+) (.+)", notes),
                         [("4.000 ms", "start"), ("4.500 ms", "body read"), ("9.000 ms", "stop")])
        self.assertIn("+4.000 ms", details)
        # Another span: its own fields, what it called, its tags only.
        b.click(b.find(f'#trace-svg g.span[data-span-id="{DB}"] rect.bar'))
        fields = b.text(b.find("#span-fields"))
        self.assertIn("kind CLIENT", fields)
        self.assertIn("remote service mysql", fields)
        self.assertEqual([b.attribute(tr, "data-tag") for tr in b.find_all("#span-tags tr")],
                         ["db.statement"])
        self.assertEqual(len(b.find_all("#trace-svg g.span.selected")), 1)
        self.check_screenshot("nova.png")

    def test_untrusted_text_stays_text(self):
        b = self.browser
        self.pick(EVIL)
        b.click(b.find("#trace-svg g.span rect.bar"))
        self.assertIsNone(b.alert_text())
        self.assertIsNone(b.script("return window.pwned;"))
        # Shown as written, in the list, the timeline and the details.
        self.assertIn(EVIL_NAME, b.text(b.find(f'#traces li[data-trace-id="{EVIL}"]')))
        self.assertIn(EVIL_NAME, b.text(b.find("#trace-svg text.label")))
        tags = {b.attribute(tr, "data-tag"): b.text(tr) for tr in b.find_all("#span-tags tr")}
        self.assertIn(EVIL_TAG, tags["user"])
        self.assertEqual(b.find_all("#details img, #details script, #traces b, #traces img"), [])
        self.assertEqual(b.script("return document.scripts.length;"), 2)
        self.check_screenshot("evil.png")

    def test_filter_box(self):
        b = self.browser
        box = b.find("#filter")
        b("POST", f"/element/{box}/value", {"text": "keystone"})
        visible = b.script('return [...document.querySelectorAll("#traces li")]'
                           '.filter(li => !li.hidden).map(li => li.dataset.traceId);')
        self.assertEqual(visible, [KEYSTONE])
        b("POST", f"/element/{box}/clear", {})
        b.script('const f = document.getElementById("filter");'
                 'f.dispatchEvent(new Event("input"));')
        self.assertEqual(len(b.script('return [...document.querySelectorAll("#traces li")]'
                                      '.filter(li => !li.hidden);')), 4)

    def check_screenshot(self, name):
        data = self.browser.screenshot()
        (Path(self.work.name) / name).write_bytes(data)
        if os.environ.get("TOMOGRAPH_VIEW_SHOTS"):  # to look at them
            (Path(os.environ["TOMOGRAPH_VIEW_SHOTS"]) / name).write_bytes(data)
        width, height = png_size(data)
        self.assertGreaterEqual((width, height), (800, 400))
        self.assertGreater(len(data), 10000)  # more than a blank page


if __name__ == "__main__":
    unittest.main()
