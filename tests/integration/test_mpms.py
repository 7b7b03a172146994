"""mod_tomograph under the worker and prefork MPMs (the rest of the suite runs event): traced
requests to a static file and to the mod_wsgi app continue the caller's trace, a graceful
restart starts a new shipper (TG00005 again) and spans keep flowing, and a stop leaves no
process of the server behind."""

import re
import signal
import subprocess
import unittest

from harness import STOP_WAIT, TracingTestCase, processes, random_hex, wait_for

SHIPPER_STARTED = re.compile(r"TG00005: shipper ([0-9]+) started")


class MpmChecks:
    ZIPKIN = True

    def shipper_pids(self):
        return [int(pid) for pid in SHIPPER_STARTED.findall(self.httpd.error_log.read_text())]

    def server_processes(self):
        """{pid: (state, command line)} of the processes in httpd's session (it runs in a
        session of its own) or naming its server root."""
        session = self.httpd.process.popen.pid
        return {pid: (state, command) for pid, (sid, _, state, command) in processes().items()
                if sid == session or str(self.httpd.root) in command}

    def check_traced_requests(self, label):
        """A static file and the app, called with the same traceparent: two valid server
        spans in the caller's trace, each its child, and the app sees its own."""
        trace_id, caller = random_hex(32), random_hex(16)
        headers = {"traceparent": f"00-{trace_id}-{caller}-01"}
        self.request("/static.txt", headers)
        response = self.request(f"/app/{label}", headers)
        spans = {span["name"]: span for span in self.wait_for_trace(trace_id, 2)}
        self.assertEqual(set(spans), {"get /static.txt", f"get /app/{label}"}, spans)
        for span in spans.values():
            self.assertContinues(span, trace_id, caller)
        self.assertNotEqual(spans["get /static.txt"]["id"], spans[f"get /app/{label}"]["id"])
        invalid = [r for r in self.receiver.records()
                   if r["span"] and r["span"].get("traceId") == trace_id and not r["valid"]]
        self.assertEqual(invalid, [], "spans failing zipkin2-api.yaml")
        self.assertAppSeesSpan(response.json(), spans[f"get /app/{label}"])

    def test_traces_restarts_gracefully_and_stops_clean(self):
        self.assertIn(f"[mpm_{self.MPM}:notice]", self.httpd.error_log.read_text(),
                      f"httpd does not run mpm_{self.MPM}")
        self.check_traced_requests("first")

        first_shippers = wait_for(self.shipper_pids, "the shipper to start",
                                  context=self.httpd.describe)
        self.httpd.graceful_restart()
        shippers = wait_for(lambda: self.shipper_pids()[len(first_shippers):],
                            "a new shipper (TG00005) after the graceful restart",
                            context=self.httpd.describe)
        self.assertNotIn(shippers[-1], first_shippers)
        wait_for(lambda: first_shippers[-1] not in self.server_processes(),
                 "the old shipper to exit", STOP_WAIT, context=self.httpd.describe)
        self.check_traced_requests("after-restart")

        parent = self.httpd.process.popen
        running = self.server_processes()
        self.assertLessEqual({parent.pid, shippers[-1]}, set(running), running)
        self.assertTrue([c for _, c in running.values() if c.startswith("(wsgi:")], running)
        self.assertGreaterEqual(len(running), 4, f"parent, children, shipper, app: {running}")
        parent.send_signal(signal.SIGTERM)
        try:
            parent.wait(STOP_WAIT)
        except subprocess.TimeoutExpired:
            self.fail(f"httpd did not stop in {STOP_WAIT} s\n{self.httpd.describe()}")
        wait_for(lambda: not self.server_processes(), "no process of the server left",
                 STOP_WAIT, context=lambda: f"{self.server_processes()}\n{self.httpd.describe()}")


class WorkerTest(MpmChecks, TracingTestCase):
    MPM = "worker"


class PreforkTest(MpmChecks, TracingTestCase):
    MPM = "prefork"


if __name__ == "__main__":
    unittest.main()
