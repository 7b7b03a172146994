"""mod_tomograph end to end: real requests through httpd, spans checked where they land
(our Zipkin receiver, the real statsd, the span file, the access log) and in the app."""

import json
import re
import time
import unittest
import uuid
from pathlib import Path

from harness import (TracingTestCase, load_modules, now_us, osprofiler_headers, random_hex,
                     sign, span_file_lines, span_matches, validate_span_file, wait_for)

HMAC_KEYS = ("first-key", "second-key")
# Clocks of httpd and of this process agree; the slack covers scheduling only.
CLOCK_SLACK_US = 500_000


class ZipkinStatsdTest(TracingTestCase):
    ZIPKIN = True
    STATSD = True
    DIRECTIVES = tuple(f"TomographHMACKey {key}" for key in HMAC_KEYS)

    # --- the span itself -------------------------------------------------------------

    def test_server_span_has_the_zipkin_v2_shape(self):
        before = now_us()
        _, span = self.traced("/app/shape")
        after = now_us()
        self.assertEqual(span["kind"], "SERVER")
        self.assertEqual(span["name"], "get /app/shape")
        self.assertNewTrace(span)
        self.assertEqual(span["localEndpoint"]["serviceName"], "demo")
        self.assertEqual(span["tags"].get("http.method"), "GET")
        self.assertEqual(span["tags"].get("http.path"), "/app/shape")
        self.assertEqual(span["tags"].get("http.status_code"), "200")
        self.assertNotIn("error", span["tags"])
        start, duration = span["timestamp"], span["duration"]
        self.assertGreaterEqual(start, before - CLOCK_SLACK_US, span)
        self.assertGreaterEqual(duration, 1, span)
        self.assertLessEqual(start + duration, after + CLOCK_SLACK_US, span)
        notes = span.get("annotations", [])
        self.assertGreaterEqual(len(notes), 2, span)
        self.assertEqual((notes[0]["value"], notes[-1]["value"]), ("start", "stop"), span)
        stamps = [note["timestamp"] for note in notes]
        self.assertEqual(stamps, sorted(stamps), span)
        self.assertGreaterEqual(stamps[0], start - 1000, span)
        self.assertLessEqual(stamps[-1], start + duration + 1000, span)

    def test_name_and_path_leave_out_the_query(self):
        _, span = self.traced("/app/Query-Check?q=1&secret=x")
        self.assertEqual(span["name"], "get /app/query-check")
        self.assertEqual(span["tags"].get("http.path"), "/app/Query-Check")

    def test_method_is_in_name_and_tag(self):
        _, span = self.traced("/app/posted", method="POST")
        self.assertEqual(span["name"], "post /app/posted")
        self.assertEqual(span["tags"].get("http.method"), "POST")

    def test_static_file_is_traced(self):
        _, span = self.traced("/static.txt")
        self.assertEqual(span["name"], "get /static.txt")
        self.assertEqual(span["tags"].get("http.status_code"), "200")

    def test_server_error_is_tagged_error(self):
        _, span = self.traced("/app/status/500", expect_status=500)
        self.assertEqual(span["tags"].get("http.status_code"), "500")
        self.assertIn("error", span["tags"], span)

    def test_client_error_is_not_tagged_error(self):
        _, span = self.traced("/missing.txt", expect_status=404)
        self.assertEqual(span["tags"].get("http.status_code"), "404")
        self.assertNotIn("error", span["tags"], span)

    def test_service_name_is_set_per_location_and_lowercased(self):
        _, span = self.traced("/app/other-service/x")
        self.assertEqual(span["localEndpoint"]["serviceName"], "other-service")

    def test_each_request_gets_its_own_trace(self):
        for _ in range(3):
            self.request("/app/thrice")
        wait_for(lambda: len(self.spans_of("/app/thrice")) >= 3, "three spans of /app/thrice",
                 context=self.describe_exports)
        time.sleep(0.3)
        spans = [s for s, _ in self.spans_of("/app/thrice")]
        self.assertEqual(len(spans), 3, spans)
        self.assertEqual(len({s["traceId"] for s in spans}), 3, spans)
        self.assertEqual(len({s["id"] for s in spans}), 3, spans)

    def test_every_exported_span_is_valid(self):
        self.traced("/app/valid-check")
        records = self.receiver.records()
        invalid = [r for r in records if not r["valid"]]
        self.assertEqual(invalid, [])

    def test_export_is_json_marked_untraced(self):
        self.traced("/app/export-headers")
        record = next(r for r in self.receiver.records()
                      if span_matches(r["span"] or {}, "GET", "/app/export-headers"))
        self.assertTrue(record["headers"].get("content-type", "").startswith("application/json"),
                        record["headers"])
        self.assertEqual(record["headers"].get("b3"), "0", record["headers"])

    # --- incoming context ------------------------------------------------------------

    def test_continues_traceparent(self):
        trace_id, caller = random_hex(32), random_hex(16)
        _, span = self.traced("/app/in-traceparent", {"traceparent": f"00-{trace_id}-{caller}-01"})
        self.assertContinues(span, trace_id, caller)

    def test_continues_b3_single_header(self):
        trace_id, caller = random_hex(32), random_hex(16)
        _, span = self.traced("/app/in-b3", {"b3": f"{trace_id}-{caller}-1"})
        self.assertContinues(span, trace_id, caller)

    def test_continues_b3_multi_headers(self):
        trace_id, caller = random_hex(32), random_hex(16)
        _, span = self.traced("/app/in-x-b3", {
            "X-B3-TraceId": trace_id, "X-B3-SpanId": caller, "X-B3-Sampled": "1"})
        self.assertContinues(span, trace_id, caller)

    def test_continues_signed_x_trace_info(self):
        for key in HMAC_KEYS:
            with self.subTest(key=key):
                base_id, parent_id = uuid.uuid4(), uuid.uuid4()
                path = f"/app/in-osprofiler-{key}"
                _, span = self.traced(path, osprofiler_headers(key, str(base_id), str(parent_id)))
                self.assertContinues(span, base_id.hex, parent_id.hex[:16])

    def test_malformed_or_unsigned_context_starts_a_new_trace(self):
        trace_id, caller = random_hex(32), random_hex(16)
        base_id, parent_id = uuid.uuid4(), uuid.uuid4()
        signed = osprofiler_headers(HMAC_KEYS[0], str(base_id), str(parent_id))
        not_base64 = "!!not*base64!!"
        cases = {
            "traceparent-version-ff": {"traceparent": f"ff-{trace_id}-{caller}-01"},
            "traceparent-uppercase": {"traceparent": f"00-{trace_id.upper()}-{caller.upper()}-01"},
            "traceparent-zero-trace": {"traceparent": f"00-{'0' * 32}-{caller}-01"},
            "traceparent-zero-parent": {"traceparent": f"00-{trace_id}-{'0' * 16}-01"},
            "traceparent-short": {"traceparent": f"00-{trace_id}-{caller[:15]}-01"},
            "b3-garbage": {"b3": "garbage"},
            "b3-short-span": {"b3": f"{trace_id}-{caller[:15]}-1"},
            "b3-uppercase": {"b3": f"{trace_id.upper()}-{caller.upper()}-1"},
            "x-b3-bad-span": {"X-B3-TraceId": trace_id, "X-B3-SpanId": "xyz", "X-B3-Sampled": "1"},
            "x-trace-info-not-base64": {"X-Trace-Info": not_base64,
                                        "X-Trace-HMAC": sign(HMAC_KEYS[0], not_base64)},
            "x-trace-info-wrong-key": osprofiler_headers("wrong-key", str(base_id), str(parent_id)),
            "x-trace-info-unsigned": {"X-Trace-Info": signed["X-Trace-Info"]},
            "x-trace-info-bad-hmac": {"X-Trace-Info": signed["X-Trace-Info"],
                                      "X-Trace-HMAC": "0" * 40},
        }
        for label, headers in cases.items():
            with self.subTest(label):
                response, span = self.traced(f"/app/malformed-{label}", headers)
                self.assertNewTrace(span, trace_id, base_id.hex)
                self.assertEqual(response.json().get("TOMOGRAPH_TRACE_ID"), span["traceId"])

    # --- what the app sees -----------------------------------------------------------

    def check_app_view(self, mount, process_group):
        trace_id, caller = random_hex(32), random_hex(16)
        incoming = {"new trace": None, "traceparent": {"traceparent": f"00-{trace_id}-{caller}-01"}}
        for label, headers in incoming.items():
            with self.subTest(label):
                path = f"{mount}/app-view-{label.replace(' ', '-')}"
                response, span = self.traced(path, headers)
                env = response.json()
                self.assertEqual(env["mod_wsgi.process_group"], process_group)
                self.assertAppSeesSpan(env, span, HMAC_KEYS)
                if headers:
                    self.assertContinues(span, trace_id, caller)

    def test_app_in_daemon_mode_sees_the_server_span(self):
        self.check_app_view("/app", "tomograph-app")

    def test_app_in_embedded_mode_sees_the_server_span(self):
        self.check_app_view("/embedded", "")

    def test_proxied_hop_stays_in_the_trace(self):
        trace_id, caller = random_hex(32), random_hex(16)
        response, front = self.traced("/proxy/hop", {"traceparent": f"00-{trace_id}-{caller}-01"})
        self.assertContinues(front, trace_id, caller)
        back = self.server_span("/app/hop")
        self.assertEqual(back["traceId"], trace_id, back)
        # One trace: the front's SERVER span, its CLIENT span, the backend's SERVER span.
        clients = [span for span, _ in self.spans_of("/app/hop", kind="CLIENT")]
        self.assertEqual(len(clients), 1, clients)
        self.assertEqual(clients[0]["parentId"], front["id"], (front, clients))
        self.assertEqual(back.get("parentId"), clients[0]["id"], (clients, back))
        self.assertAppSeesSpan(response.json(), back, HMAC_KEYS)

    # --- other outputs ---------------------------------------------------------------

    def assertStatsdTimes(self, metric):
        """statsd gets the metric's timer and its start and stop counters."""
        expected = {f"{metric}.start:1|c", f"{metric}.stop:1|c"}
        timer = re.compile(rf"^{re.escape(metric)}:[0-9]+(\.[0-9]+)?\|ms$")
        wait_for(lambda: expected <= set(self.statsd.lines())
                 and any(timer.match(line) for line in self.statsd.lines()),
                 f"statsd lines {sorted(expected)} and a timer",
                 context=lambda: "\n".join(self.statsd.lines()))

    def test_statsd_gets_a_timer_and_a_counter_per_note(self):
        self.request("/app/hello")
        self.assertStatsdTimes("demo.get_app_hello")

    def test_statsd_names_no_id(self):
        """Each image would otherwise be a metric of its own: ids in the path are "id"."""
        for _ in range(2):
            self.request(f"/app/v2/images/{uuid.uuid4()}/file")
        self.assertStatsdTimes("demo.get_app_v2_images_id_file")
        self.assertFalse([line for line in self.statsd.lines() if "images" in line
                          and "images_id_file" not in line], self.statsd.lines())

    def test_enable_off_makes_no_span(self):
        self.request("/app/untraced/ping")
        self.assertNoSpanOf("/app/untraced/ping")
        self.assertFalse([line for line in self.statsd.lines() if "app_untraced" in line])

    def test_access_log_carries_the_trace_id(self):
        _, span = self.traced("/app/logged?x=1")
        lines = wait_for(
            lambda: [line for line in self.httpd.access_log.read_text().splitlines()
                     if "/app/logged?x=1" in line],
            "the access log line", context=self.httpd.describe)
        self.assertIn(f"trace={span['traceId']}", lines[0])
        self.assertIn(f"span={span['id']}", lines[0])


class BehindLoadBalancerTest(TracingTestCase):
    """httpd behind a load balancer (haproxy in front of OpenStack's APIs) with mod_remoteip:
    the span's remote endpoint is the client the balancer names in X-Forwarded-For, not the
    balancer; a header that names no address leaves the balancer's."""
    ZIPKIN = True
    SITE_CONFIG = load_modules("remoteip") + ("RemoteIPHeader X-Forwarded-For",
                                              "RemoteIPInternalProxy 127.0.0.1")

    def remote_endpoint(self, forwarded_for):
        path = f"/app/balanced-{uuid.uuid4().hex[:12]}"
        _, span = self.traced(path, {"X-Forwarded-For": forwarded_for})
        return span.get("remoteEndpoint")

    def test_the_remote_endpoint_is_the_client(self):
        # The client's port is not forwarded: none is given.
        self.assertEqual(self.remote_endpoint("203.0.113.7"), {"ipv4": "203.0.113.7"})
        self.assertEqual(self.remote_endpoint("2001:db8::1"), {"ipv6": "2001:db8::1"})
        # The last address that is not a trusted proxy's.
        self.assertEqual(self.remote_endpoint("198.51.100.2, 203.0.113.9"), {"ipv4": "203.0.113.9"})

    def test_no_address_leaves_the_balancer(self):
        endpoint = self.remote_endpoint("not-an-address")
        self.assertEqual(endpoint.get("ipv4"), "127.0.0.1", endpoint)
        self.assertIn("port", endpoint)


class SpanFileTest(TracingTestCase):
    """Neither Zipkin nor statsd: spans go to <ServerRoot>/logs/tomograph-spans.json."""

    SPAN_FILE = "logs/tomograph-spans.json"

    def span_file(self):
        return Path(self.httpd.root) / self.SPAN_FILE

    def span_records(self):
        records = []
        for line in span_file_lines(self.span_file()):
            try:
                records.append((json.loads(line), None))
            except ValueError as err:
                records.append((line, f"not JSON: {err}"))
        return records

    def describe_exports(self):
        return "\n".join(span_file_lines(self.span_file())[-20:]) + "\n" + self.httpd.describe()

    def test_spans_are_written_one_valid_json_span_per_line(self):
        self.traced("/app/to-the-file")
        self.traced("/static.txt")
        lines = span_file_lines(self.span_file())
        self.assertGreaterEqual(len(lines), 2)
        for line in lines:
            self.assertIsInstance(json.loads(line), dict, line)
        ok, report = validate_span_file(self.span_file())
        self.assertTrue(ok, report)


class ConfiguredSpanFileTest(SpanFileTest):
    """TomographSpanFile, relative to ServerRoot, and a small queue."""

    SPAN_FILE = "logs/custom-spans.jsonl"
    DIRECTIVES = (f"TomographSpanFile {SPAN_FILE}", "TomographQueueSize 64")


class RotatedSpanFileTest(SpanFileTest):
    """The span file renamed, then httpd reloaded, as Debian's logrotate does with
    /var/log/apache2/*.log: the spans after go to a new file at the configured path."""

    SPAN_FILE = "logs/tomograph-spans.log"
    DIRECTIVES = (f"TomographSpanFile {SPAN_FILE}",)

    def test_spans_go_to_a_new_file_once_rotated(self):
        self.traced("/app/before-rotation")
        rotated = self.span_file().with_name("tomograph-spans.log.1")
        self.span_file().rename(rotated)
        self.httpd.graceful_restart()
        self.traced("/app/after-rotation")
        names = {path: {json.loads(line)["name"] for line in span_file_lines(path)}
                 for path in (rotated, self.span_file())}
        self.assertIn("get /app/before-rotation", names[rotated], names)
        self.assertNotIn("get /app/after-rotation", names[rotated], names)
        self.assertNotIn("get /app/before-rotation", names[self.span_file()], names)


class UnopenableSpanFileTest(TracingTestCase):
    """A TomographSpanFile in a directory that does not exist: the error log says so, and
    Zipkin gets the spans all the same."""

    ZIPKIN = True
    MISSING = "/nonexistent-tomograph-dir/spans.json"
    DIRECTIVES = (f"TomographSpanFile {MISSING}",)

    def test_the_other_exporters_go_on(self):
        self.traced("/app/despite-the-span-file")
        log = self.httpd.error_log.read_text()
        self.assertRegex(log, rf"TG00002: shipper: cannot open TomographSpanFile {self.MISSING}; "
                              "shipping to the other exporters without it")
        self.assertNotIn("TG00006", log)


class UnopenableSpanFileAloneTest(TracingTestCase):
    """The same with no other exporter: the shipper has nothing to do and says so once;
    requests are served all the same."""

    DIRECTIVES = (f"TomographSpanFile {UnopenableSpanFileTest.MISSING}",)

    def test_requests_are_served_and_the_error_log_says_why(self):
        self.request("/app/no-exporter")
        wait_for(lambda: "TG00006" in self.httpd.error_log.read_text(),
                 "the shipper's start-up failure", context=self.httpd.describe)
        log = self.httpd.error_log.read_text()
        self.assertIn(f"cannot open TomographSpanFile {UnopenableSpanFileTest.MISSING}\n", log)
        self.assertEqual(log.count("TG00006"), 1, "no restart loop")


class StatusTest(TracingTestCase):
    """mod_status's Tomograph section, and the shipper's start-up line: each exporter there,
    configured or not, with its counters and when it last delivered."""

    ZIPKIN = True
    SITE_CONFIG = (
        *load_modules("status"),
        "<Location /server-status>",
        "    SetHandler server-status",
        "    TomographEnable Off",
        "</Location>",
    )

    def test_last_sent_is_when_an_exporter_last_delivered(self):
        before = int(time.time())
        self.traced("/app/status-check")
        counters = wait_for(lambda: (c := self.httpd.status_counters())["ZipkinSent"] and c,
                            "Zipkin's counters to show the span", context=self.httpd.describe)
        self.assertGreaterEqual(counters["ZipkinLastSent"], before, counters)
        self.assertLessEqual(counters["ZipkinLastSent"], time.time(), counters)
        for name in ("OTLP", "Statsd", "File"):
            self.assertEqual(counters[f"{name}LastSent"], 0, f"{name} never sent: {counters}")
        page = self.httpd.request("GET", "/server-status").body
        sent_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(counters["ZipkinLastSent"]))
        self.assertRegex(page, rf"<tr><td>Zipkin</td>(<td>[0-9]+</td>){{5}}<td>{sent_at}</td>")
        self.assertRegex(page, r"<tr><td>Statsd</td>(<td>0</td>){5}<td>never</td>")

    def test_startup_line_says_where_each_exporter_sends(self):
        started = wait_for(lambda: re.search(r"TG00005: shipper [0-9]+ started: (.*)",
                                             self.httpd.error_log.read_text()),
                           "the shipper's start-up line", context=self.httpd.describe)
        self.assertEqual(started.group(1), f"Zipkin {self.receiver.url}, OTLP off, Statsd off, "
                                           "File off")


class GracefulRestartTest(TracingTestCase):
    """A graceful restart replaces the shipper; spans on both sides of it still arrive."""

    ZIPKIN = True

    def test_spans_before_and_after_a_graceful_restart_arrive(self):
        self.traced("/app/before-restart")
        self.httpd.graceful_restart()
        self.traced("/app/after-restart")


class StopFlushTest(TracingTestCase):
    """Stopping httpd right after a request loses no span: the shipper drains on the way out."""

    ZIPKIN = True

    def test_a_span_finished_just_before_stop_is_shipped(self):
        self.request("/app/last-words")
        # Stop once the request is over (logged), well before its 200 ms batch is due.
        wait_for(lambda: "/app/last-words" in self.httpd.access_log.read_text(),
                 "the access log line", context=self.httpd.describe)
        time.sleep(0.02)
        self.httpd.stop_server()
        self.assertEqual(len(self.spans_of("/app/last-words")), 1, self.describe_exports())


if __name__ == "__main__":
    unittest.main()
