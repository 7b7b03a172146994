"""tomograph-view in a terminal: the waterfall of each trace (nesting, offsets, durations,
status, errors, bars), newest first, the filters, malformed lines counted, standard input,
--follow picking up appended spans (and a rotated file), and --help."""

import gzip
import os
import random
import re
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

from spans import (DB, GLANCE, IMAGE, IMAGE_DB, KEYSTONE, NOVA, ROOT, T0, VIEW, run_view,
                   sample_lines, span)

ROW = re.compile(r"^  (?P<service>\S+)(?P<pad> +)(?P<name>\S.*?)\s+(?P<status>\d{3}|-) "
                 r"(?P<error>ERROR|     )\s+(?P<offset>\+\S+|\?)\s+(?P<duration>\S+)"
                 r"\s+\|(?P<bar>[^|]*)\|  span (?P<id>\S+)"
                 r"(?:  \(caller's span (?P<caller>[0-9a-f]+)\))?$")


def parse(output):
    """[(trace id, header, [row dict])] in the order printed; a row's depth is told by how
    far right of its trace's first row its name starts."""
    traces = []
    for line in output.splitlines():
        if line.startswith("trace "):
            traces.append((line.split()[1], line, []))
        elif line.strip():
            row = ROW.match(line)
            assert row, f"not a span row: {line!r}"
            found = row.groupdict()
            found["at"] = 2 + len(found["service"]) + len(found.pop("pad"))
            traces[-1][2].append(found)
    for _, _, rows in traces:
        for row in rows:
            row["depth"] = (row["at"] - rows[0]["at"]) // 2
    return traces


class TerminalTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.TemporaryDirectory(prefix="tomograph-view-")
        cls.file = Path(cls.work.name) / "spans.json"
        cls.file.write_text("\n".join(sample_lines()) + "\n")

    @classmethod
    def tearDownClass(cls):
        cls.work.cleanup()

    def view(self, *args, **kwargs):
        status, out, err = run_view(*args, **kwargs)
        self.assertEqual(status, 0, err)
        return parse(out), out, err

    def test_newest_first_nested_timed(self):
        traces, out, err = self.view(self.file)
        self.assertEqual([t[0] for t in traces], [GLANCE, KEYSTONE, NOVA], out)
        rows = traces[2][2]
        self.assertEqual([(r["id"], r["depth"], r["service"], r["name"]) for r in rows],
                         [(ROOT, 0, "nova", "get /servers"), (DB, 1, "nova", "select servers"),
                          (IMAGE, 1, "glance", "get /images/7"),
                          (IMAGE_DB, 2, "glance", "select images")], out)
        self.assertEqual([(r["offset"], r["duration"], r["status"]) for r in rows],
                         [("+0us", "10.000ms", "200"), ("+1.000ms", "2.000ms", "-"),
                          ("+4.000ms", "5.000ms", "500"), ("+5.000ms", "1.000ms", "-")])
        self.assertEqual([r["error"] for r in rows], ["     ", "     ", "ERROR", "     "])
        # The bars to the trace's scale (40 columns, 10 ms): the image call from 16 to 36.
        bar = rows[2]["bar"]
        self.assertEqual(len(bar), 40)
        self.assertEqual(re.search(r"[^.\u00b7]+", bar).span(), (16, 36), bar)
        self.assertTrue(set(rows[0]["bar"]) <= {"\u2588", "#"}, rows[0]["bar"])
        self.assertIn("4 spans  10.000ms  glance, nova  1 error", traces[2][1])
        self.assertIn("2025-12-07 14:00:00.000Z", traces[2][1])
        # A span continued from a caller's names it.
        self.assertEqual(traces[1][2][0]["caller"], "e457b5a2e4d86bd1")
        self.assertEqual(err, "")

    def test_filters(self):
        ids = lambda *args: [t[0] for t in self.view(self.file, *args)[0]]  # noqa: E731
        self.assertEqual(ids("--trace", KEYSTONE[:8]), [KEYSTONE])
        self.assertEqual(ids("--trace", NOVA, "--trace", GLANCE), [GLANCE, NOVA])
        self.assertEqual(ids("--service", "GLANCE"), [GLANCE, NOVA])
        self.assertEqual(ids("--errors"), [NOVA])
        self.assertEqual(ids("--slowest", "2"), [GLANCE, NOVA])
        self.assertEqual(ids("--limit", "1"), [GLANCE])
        self.assertEqual(ids("--since", "2025-12-07T14:00:30Z"), [GLANCE, KEYSTONE])
        self.assertEqual(ids("--since", "2025-12-07 14:01:30"), [GLANCE])
        self.assertEqual(ids("--since", "10m"), [])
        self.assertEqual(ids("--errors", "--service", "keystone"), [])
        status, _, err = run_view(self.file, "--since", "yesterday")
        self.assertEqual(status, 2)
        self.assertIn("not a time", err)

    def test_since_relative(self):
        now = int(time.time() * 1e6)
        with tempfile.NamedTemporaryFile("w", suffix=".json") as spans:
            spans.write(span("d4" * 16, "4000000000000001", None, "old", "nova",
                             now - 7200_000_000, 10) + "\n"
                        + span("e5" * 16, "5000000000000001", None, "new", "nova",
                               now - 60_000_000, 10) + "\n")
            spans.flush()
            self.assertEqual([t[0] for t in self.view(spans.name, "--since", "10m")[0]],
                             ["e5" * 16])
            self.assertEqual(len(self.view(spans.name, "--since", "3h")[0]), 2)

    def test_malformed_lines_skipped_and_counted(self):
        lines = sample_lines()
        broken = [lines[0], "not json", lines[1][:40], '{"traceId":"ff","name":"no id"}',
                  "[1, 2]", '{"traceId":' + '"' * 5000, "", *lines[2:],
                  '{"traceId":"' + "d4" * 16 + '","id":"x","timestamp":"soon","tags":7}']
        status, out, err = run_view("-", stdin="\n".join(broken) + "\n")
        self.assertEqual(status, 0, err)
        traces = parse(out)
        self.assertEqual(len([t for t in traces if t[0] == NOVA][0][2]), 3, out)  # one cut short
        # The span with its times and tags of the wrong type is shown, without them.
        self.assertIn("d4" * 16, [t[0] for t in traces])
        self.assertEqual(err.strip(), "tomograph-view: 5 malformed lines skipped")

    def test_standard_input(self):
        traces, out, _ = self.view(stdin=self.file.read_text())
        self.assertEqual([t[0] for t in traces], [GLANCE, KEYSTONE, NOVA])
        self.assertEqual(out, run_view(self.file)[1])

    def test_shared_span_goes_under_its_client(self):
        trace = "f6" * 16
        lines = [span(trace, "6000000000000001", None, "get /proxy", "front", T0, 900),
                 span(trace, "6000000000000002", "6000000000000001", "get", "front", T0 + 100,
                      700, kind="CLIENT"),
                 span(trace, "6000000000000002", "6000000000000001", "get /app", "back",
                      T0 + 200, 500, shared=True),
                 span(trace, "6000000000000003", "6000000000000002", "query", "back",
                      T0 + 300, 100, kind="CLIENT")]
        rows = parse(run_view("-", stdin="\n".join(lines))[1])[0][2]
        self.assertEqual([(r["name"], r["depth"]) for r in rows],
                         [("get /proxy", 0), ("get", 1), ("get /app", 2), ("query", 3)])

    def test_the_writers_lines_read_fast_as_in_full(self):
        """The writer's lines are read by a pattern, others decoded in full: a line read
        both ways (a space ahead of it makes it another's) shows the same."""
        trace = "0a" * 16
        lines = sample_lines() + [
            span(trace, "8000000000000001", None, 'a "quoted" \\ name \u00e9\t', "s\u00e9rvice",
                 T0, 70, 503),
            '{"traceId":"' + trace + '","parentId":"8000000000000001","id":"8000000000000002",'
            '"localEndpoint":{"ipv4":"127.0.0.1"},"annotations":[{"timestamp":1,"value":"x"}]}',
            span(trace, "8000000000000003", "8000000000000001", "get", "back", T0 + 5, 20,
                 shared=True)]
        fast = run_view("-", stdin="\n".join(lines) + "\n")
        full = run_view("-", stdin="".join(" " + line + "\n" for line in lines))
        self.assertEqual(fast, full)
        self.assertIn('a "quoted" \\ name \u00e9\\x09', fast[1])

    def test_files_together_and_gzip(self):
        lines = sample_lines()
        first, second = Path(self.work.name) / "a.json", Path(self.work.name) / "b.json.gz"
        first.write_text("\n".join(lines[:3]) + "\n")
        with gzip.open(second, "wt") as out:
            out.write("\n".join(lines[3:]))  # no newline at the end
        traces, out, _ = self.view(first, second)
        self.assertEqual([(t[0], len(t[2])) for t in traces], [(GLANCE, 1), (KEYSTONE, 1),
                                                                (NOVA, 4)], out)

    def test_terminal_escapes_are_not_sent(self):
        line = span("ab" * 16, "7000000000000001", None, "evil\x1b]0;owned\x07\x1b[2J",
                    "svc\u202e", T0, 10)
        status, out, _ = run_view("-", stdin=line)
        self.assertEqual(status, 0)
        self.assertNotIn("\x1b", out)
        self.assertNotIn("\u202e", out)
        self.assertIn("evil\\x1b]0;owned\\x07\\x1b[2J", out)

    def test_colours_when_asked(self):
        done = subprocess.run(["/usr/bin/python3", str(VIEW), "--colour", "always",
                               "--trace", NOVA, str(self.file)], capture_output=True,
                              text=True, timeout=60)
        self.assertIn("\x1b[1;31mERROR\x1b[0m", done.stdout)
        self.assertIn("\x1b[1;31m1 error\x1b[0m", done.stdout)
        self.assertEqual(len(re.findall(r"\x1b\[\d+m\|", done.stdout)), 4)  # the bars

    def test_html_names_what_it_left_out(self):
        page = Path(self.work.name) / "page.html"
        status, _, err = run_view("--html", page, "--limit", "2", self.file)
        self.assertEqual(status, 0, err)
        self.assertIn("<title>tomograph-view: 2 of 3 traces</title>", page.read_text())
        self.assertIn("2 traces written to", err)

    def test_a_lone_surrogate_is_no_crash(self):
        line = ('{"traceId":"' + "ab" * 16 + '","id":"0000000000000001","name":"x\\ud800y",'
                '"timestamp":1,"duration":2,"tags":{"k\\udfff":"v"}}')
        status, out, err = run_view("-", stdin=line)
        self.assertEqual((status, err), (0, ""))
        self.assertIn("x?y", out)
        page = Path(self.work.name) / "surrogate.html"
        status, _, err = run_view("--html", page, "-", stdin=line)
        self.assertEqual(status, 0, err)
        self.assertIn("x\\ud800y", page.read_text())

    def test_broken_lines_are_no_crash(self):
        """Every cut of the sample's lines, and lines with a few characters changed: each
        view runs to its end and counts what it skipped."""
        rng = random.Random(18)
        lines = [line[:cut] for line in sample_lines() for cut in range(0, len(line), 7)]
        for _ in range(1000):
            line = list(rng.choice(sample_lines()))
            for _ in range(rng.randint(1, 4)):
                line[rng.randrange(len(line))] = rng.choice('"\\{}[],:0a\u00e9\x00\u202e Z')
            lines.append("".join(line))
        text = "\n".join(lines) + "\n"
        page = Path(self.work.name) / "broken.html"
        for args in ([], ["--errors"], ["--service", "nova"], ["--slowest", "2"],
                     ["--html", page]):
            status, _, err = run_view(*args, "-", stdin=text)
            self.assertEqual(status, 0, err)
            self.assertRegex(err, r"tomograph-view: \d+ malformed lines skipped")
            self.assertNotIn("Traceback", err)

    def test_a_missing_file_says_so(self):
        status, _, err = run_view("/nonexistent/spans.json")
        self.assertEqual(status, 1)
        self.assertIn("/nonexistent/spans.json", err)

    def test_help_is_a_manual(self):
        status, out, _ = run_view("--help")
        self.assertEqual(status, 0)
        for word in ("--trace", "--service", "--errors", "--slowest", "--since", "--follow",
                     "--settle", "--html", "malformed", "Examples:", "Exit status"):
            self.assertIn(word, out)


class FollowTest(unittest.TestCase):
    """--follow over a file that grows, is rotated and is truncated."""

    def setUp(self):
        self.work = tempfile.TemporaryDirectory(prefix="tomograph-view-")
        self.file = Path(self.work.name) / "spans.json"
        self.lines = sample_lines()
        self.file.write_text(self.lines[0] + "\n")
        self.out = Path(self.work.name) / "out"
        self.sink = self.out.open("w")
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", str(VIEW), "--follow", "--settle", "0.5", "--colour", "never",
             str(self.file)], stdout=self.sink, stderr=subprocess.PIPE, text=True)

    def tearDown(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stderr.close()
        self.sink.close()
        self.work.cleanup()

    def wait_for(self, what, seconds=10):
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            text = self.out.read_text()
            if what(text):
                return text
            time.sleep(0.1)
        self.fail(f"not seen in time; output:\n{self.out.read_text()}")

    def append(self, *lines, path=None):
        with open(path or self.file, "a") as spans:
            spans.write("".join(line + "\n" for line in lines))

    def test_appended_spans_show_once_settled(self):
        # What was there shows first.
        self.wait_for(lambda text: f"trace {NOVA}" in text)
        # The rest of the trace comes, half a line at a time: it shows again, whole.
        self.append(*self.lines[1:3])
        with open(self.file, "a") as spans:
            spans.write(self.lines[3][:50])
            spans.flush()
            time.sleep(0.3)
            spans.write(self.lines[3][50:] + "\n")
        text = self.wait_for(lambda text: "again: 3 more spans" in text)
        self.assertEqual(len(parse(text)[-1][2]), 4)
        # A new trace, then the file rotated: the new file is read from its start.
        self.append(self.lines[4])
        self.wait_for(lambda text: f"trace {KEYSTONE}" in text)
        os.rename(self.file, str(self.file) + ".1")
        self.append(self.lines[5])
        text = self.wait_for(lambda text: f"trace {GLANCE}" in text)
        # Cut short (copytruncate), then written again from the start.
        self.file.write_text("")
        time.sleep(0.5)
        self.append(span("d4" * 16, "4000000000000001", None, "after truncation", "nova",
                         T0, 5))
        text = self.wait_for(lambda text: "after truncation" in text)
        self.assertEqual([t[0] for t in parse(text)], [NOVA, NOVA, KEYSTONE, GLANCE, "d4" * 16])
        self.assertIsNone(self.proc.poll())

    def test_follow_standard_input(self):
        proc = subprocess.Popen(["/usr/bin/python3", str(VIEW), "-f", "--settle", "0.3",
                                 "--colour", "never"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, text=True)
        proc.stdin.write(self.lines[4] + "\n")
        proc.stdin.flush()
        line = proc.stdout.readline()  # shown while the input is still open
        self.assertTrue(line.startswith(f"trace {KEYSTONE}"), line)
        proc.stdin.write(self.lines[5] + "\n")
        proc.stdin.close()
        rest = proc.stdout.read()
        self.assertEqual(proc.wait(timeout=10), 0)
        self.assertIn(f"trace {GLANCE}", rest)
        proc.stdout.close()


if __name__ == "__main__":
    unittest.main()
