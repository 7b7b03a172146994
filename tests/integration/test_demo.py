"""The README's first command, `bash scripts/demo`, as a new user runs it (on a machine
already set up, it only checks and builds): a real httpd with the module and the demo app,
a span for each of its requests in the traces it shows with tomograph-view, the callers'
traces continued, the page it names written, and nothing left running."""

import os
import re
import subprocess
import unittest
from pathlib import Path

from harness import REPO_ROOT, STOP_WAIT, find_module, processes, wait_for

DEMO_TIMEOUT = 300
# What the demo sends (scripts/demo): its readiness probe and eight requests, one of which
# goes through mod_proxy back into the app, a request of its own.
SPANS = 11
TRACES = 9


@unittest.skipIf(os.environ.get("TOMOGRAPH_HTTPD_PRELOAD"),
                 "the demo starts httpd itself, without the sanitizer runtime")
class DemoTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        build = find_module().parent.parent
        done = subprocess.run(["bash", str(REPO_ROOT / "scripts" / "demo")],
                              env={**os.environ, "TOMOGRAPH_BUILD_DIR": str(build)},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              timeout=DEMO_TIMEOUT)
        cls.status, cls.output = done.returncode, done.stdout
        started = re.search(r"\(server root (/\S+), pid ([0-9]+)\)", cls.output)
        cls.root, cls.pid = (started.group(1), int(started.group(2))) if started else (None, None)

    def instance_processes(self):
        """Pids of the processes of the demo's httpd, its children and its shipper (whose
        title names no server root): its session, as httpd -k start makes one of its own."""
        return [pid for pid, (session, *_) in processes().items() if session == self.pid]

    def traces(self):
        """{trace id: [(span name, status, caller's span or None, error)]} as tomograph-view
        printed them."""
        traces, current = {}, None
        for line in self.output.splitlines():
            trace = re.match(r"^trace ([0-9a-f]{32})  ", line)
            span = re.match(r"^  demo +(\S+ \S+?) +(\d{3}) (ERROR|     ) +\+\S+ +\S+ +\|[^|]*\|"
                            r"  span [0-9a-f]{16}(?:  \(caller's span ([0-9a-f]{16})\))?$", line)
            if trace:
                current = traces.setdefault(trace.group(1), [])
            elif span and current is not None:
                current.append((span.group(1), span.group(2), span.group(4),
                                span.group(3) == "ERROR"))
        return traces

    def test_it_ends_well_and_leaves_nothing_behind(self):
        self.assertEqual(self.status, 0, self.output)
        self.assertIsNotNone(self.root, self.output)
        # The demo waits for httpd's parent; what it started is told to go with it.
        wait_for(lambda: not self.instance_processes(), "the demo's httpd and shipper to end",
                 STOP_WAIT, context=lambda: str(self.instance_processes()))
        self.assertFalse(Path(self.root).exists(), f"{self.root} is left")

    def test_every_request_has_its_span(self):
        traces = self.traces()
        self.assertEqual(len(traces), TRACES, self.output)
        self.assertEqual(sum(len(spans) for spans in traces.values()), SPANS, self.output)

    def test_callers_traces_are_continued(self):
        traces = self.traces()
        # The W3C and B3 callers of scripts/demo, with their ids.
        self.assertEqual(traces.get("4bf92f3577b34da6a3ce929d0e0e4736"),
                         [("get /app/orders", "200", "00f067aa0ba902b7", False)], self.output)
        self.assertEqual(traces.get("80f198ee56343ba864fe8b2a57d3eff7"),
                         [("get /embedded/orders", "200", "e457b5a2e4d86bd1", False)],
                         self.output)

    def test_the_proxied_hop_and_the_error_show(self):
        traces = self.traces()
        proxied = [spans for spans in traces.values() if spans[0][0] == "get /proxy/hello"]
        self.assertEqual([[name for name, *_ in spans] for spans in proxied],
                         [["get /proxy/hello", "get /app/hello", "get /app/hello"]], self.output)
        errors = [span for spans in traces.values() for span in spans if span[3]]
        self.assertEqual(errors, [("get /app/status/500", "500", None, True)], self.output)

    def test_it_names_the_page_it_wrote(self):
        page = re.search(r"^== the same traces as a page .*: (/\S+\.html)$", self.output,
                         re.MULTILINE)
        self.assertIsNotNone(page, self.output)
        text = Path(page.group(1)).read_text()
        for trace_id in self.traces():
            self.assertIn(trace_id, text)

    def test_the_access_log_carries_the_trace_ids(self):
        log = self.output.split("== the access log carries the trace ids", 1)[-1]
        log = log.split("== the traces, as tomograph-view", 1)[0]
        traced = re.findall(r'" \d{3} trace=([0-9a-f]{32}) span=[0-9a-f]{16}$', log,
                            re.MULTILINE)
        # A line a request: the CLIENT span of the proxied hop has none of its own.
        self.assertEqual(len(traced), SPANS - 1, log)
        self.assertLessEqual(set(traced), set(self.traces()), log)


if __name__ == "__main__":
    unittest.main()
