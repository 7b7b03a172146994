"""The fixtures themselves work and can fail: the receiver rejects bad spans, statsd hears
UDP lines, httpd serves the app in both mod_wsgi modes without mod_tomograph."""

import json
import shutil
import subprocess
import tempfile
import unittest
from pathlib import Path

from harness import (NODE, RECEIVER_JS, START_WAIT, Httpd, StatsdDaemon, ZipkinReceiver,
                     validate_span_file, wait_for)

VALID_SPAN = {
    "traceId": "4e441824ec2b6a44ffdc9bb9a6453df3",
    "id": "352bff9a74ca9ad2",
    "kind": "SERVER",
    "name": "get /app",
    "timestamp": 1556604172355737,
    "duration": 1431,
    "localEndpoint": {"serviceName": "demo"},
    "tags": {"http.method": "GET", "http.path": "/app", "http.status_code": "200"},
}
SHORT_ID_SPAN = dict(VALID_SPAN, id="352bff9a74ca9ad")
UPPERCASE_TRACE_SPAN = dict(VALID_SPAN, traceId="4E441824EC2B6A44FFDC9BB9A6453DF3")


class WorkdirTestCase(unittest.TestCase):
    def setUp(self):
        self.workdir = Path(tempfile.mkdtemp(prefix="tomograph-it-harness-"))
        self.addCleanup(shutil.rmtree, self.workdir, ignore_errors=True)


class ZipkinReceiverTest(WorkdirTestCase):
    def setUp(self):
        super().setUp()
        self.receiver = ZipkinReceiver(self.workdir)
        self.addCleanup(self.receiver.stop)

    def test_self_check_passes(self):
        done = subprocess.run([NODE, str(RECEIVER_JS), "--self-check"], capture_output=True,
                              timeout=START_WAIT, check=False)
        self.assertEqual(done.returncode, 0, done.stdout.decode() + done.stderr.decode())

    def test_accepts_valid_spans_with_202(self):
        status, _ = self.receiver.post(json.dumps([VALID_SPAN, dict(VALID_SPAN, id="0" * 16)]))
        self.assertEqual(status, 202)
        records = self.receiver.records()
        self.assertEqual([r["valid"] for r in records], [True, True])
        self.assertEqual(records[0]["span"], VALID_SPAN)
        self.assertEqual(records[0]["headers"]["content-type"], "application/json")

    def test_rejects_a_batch_with_one_invalid_span(self):
        for bad in (SHORT_ID_SPAN, UPPERCASE_TRACE_SPAN):
            with self.subTest(bad=bad):
                status, text = self.receiver.post(json.dumps([VALID_SPAN, bad]))
                self.assertEqual(status, 400, text)
                self.assertFalse(self.receiver.records()[-1]["valid"])
                self.assertTrue(self.receiver.records()[-1]["errors"])

    def test_rejects_a_body_that_is_not_a_list_of_spans(self):
        for body in ("{not json", json.dumps(VALID_SPAN)):
            with self.subTest(body=body):
                status, _ = self.receiver.post(body)
                self.assertEqual(status, 400)
                self.assertIsNone(self.receiver.records()[-1]["span"])

    def test_span_file_validation_finds_the_bad_line(self):
        good = self.workdir / "good.json"
        good.write_text(json.dumps(VALID_SPAN) + "\n")
        bad = self.workdir / "bad.json"
        bad.write_text(json.dumps(VALID_SPAN) + "\n" + json.dumps(SHORT_ID_SPAN) + "\n")
        self.assertEqual(validate_span_file(good)[0], True)
        ok, report = validate_span_file(bad)
        self.assertFalse(ok)
        self.assertIn('"line":2', report)


class StatsdDaemonTest(WorkdirTestCase):
    def test_prints_every_line_of_a_datagram(self):
        statsd = StatsdDaemon(self.workdir)
        self.addCleanup(statsd.stop)
        statsd.send("harness.timer:12|ms\nharness.count:1|c")
        wait_for(lambda: {"harness.timer:12|ms", "harness.count:1|c"} <= set(statsd.lines()),
                 "statsd to print both lines", context=statsd.process.output)


class BareHttpdTest(unittest.TestCase):
    """httpd with the demo configuration but without mod_tomograph."""

    @classmethod
    def setUpClass(cls):
        cls.httpd = Httpd(with_module=False)
        cls.addClassCleanup(cls.httpd.stop)
        cls.httpd.start()

    def test_serves_the_static_file(self):
        response = self.httpd.request("GET", "/static.txt")
        self.assertEqual((response.status, response.body), (200, Httpd.STATIC_TEXT))

    def test_app_runs_in_the_daemon_process(self):
        response = self.httpd.request("GET", "/app/hello", headers={"b3": "1" * 32 + "-" + "2" * 16})
        self.assertEqual(response.status, 200)
        self.assertEqual(response.json(), {"mod_wsgi.process_group": "tomograph-app",
                                           "HTTP_B3": "1" * 32 + "-" + "2" * 16})

    def test_app_runs_embedded(self):
        response = self.httpd.request("GET", "/embedded/hello")
        self.assertEqual(response.json(), {"mod_wsgi.process_group": ""})

    def test_app_answers_the_status_asked(self):
        self.assertEqual(self.httpd.request("GET", "/app/status/503").status, 503)

    def test_proxy_reaches_the_app(self):
        response = self.httpd.request("GET", "/proxy/hello")
        self.assertEqual(response.status, 200)
        self.assertEqual(response.json()["mod_wsgi.process_group"], "tomograph-app")


if __name__ == "__main__":
    unittest.main()
