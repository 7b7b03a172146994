"""TomographOTLP end to end: the spans of real requests reach our receiver's POST /v1/traces
as OTLP/HTTP JSON that holds to the OTLP JSON mapping (otlp_trace_request.schema.json), with
the ids, kind, service, status and addresses a collector reads; with Zipkin beside it, both
get the same span, on a listener for IPv4 and IPv6 alike."""

import json
import os
import shutil
import tempfile
import time
import unittest
from pathlib import Path

from harness import (REPO_ROOT, TracingTestCase, ZipkinReceiver, now_us, random_hex, wait_for)

# The receiver's example too, and overridden by the same variable.
OTLP_EXAMPLE = Path(os.environ.get("OTLP_EXAMPLE",
                                   REPO_ROOT.parent / "shared" / "specs" / "otlp" / "trace.json"))
SPAN_KIND_SERVER = 2
STATUS_CODE_ERROR = 2
# Clocks of httpd and of this process agree; the slack covers scheduling only.
CLOCK_SLACK_US = 500_000


def attributes_of(message):
    """{key: AnyValue} of an OTLP message's attributes."""
    return {kv["key"]: kv.get("value", {}) for kv in message.get("attributes", [])}


def string_attributes(message):
    return {key: value.get("stringValue") for key, value in attributes_of(message).items()}


def network_attributes(message):
    """The attributes that carry the span's endpoints."""
    return {key: value for key, value in attributes_of(message).items()
            if key.startswith("network.")}


def network_attributes_of_zipkin(span):
    """The network attributes that say what a Zipkin span's endpoints say: the names
    OpenTelemetry's Zipkin mapping reads them from, a port an int64."""
    expected = {}
    for member, side in (("localEndpoint", "local"), ("remoteEndpoint", "peer")):
        endpoint = span.get(member, {})
        address = endpoint.get("ipv4") or endpoint.get("ipv6")
        if address:
            expected[f"network.{side}.address"] = {"stringValue": address}
        if "port" in endpoint:
            expected[f"network.{side}.port"] = {"intValue": str(endpoint["port"])}
    return expected


class OtlpReceiverTest(unittest.TestCase):
    """The receiver's /v1/traces itself: takes the spec's example, refuses what breaks the
    mapping, and says which span was wrong."""

    @classmethod
    def setUpClass(cls):
        cls.workdir = Path(tempfile.mkdtemp(prefix="tomograph-it-otlp-"))
        cls.addClassCleanup(shutil.rmtree, cls.workdir, ignore_errors=True)
        cls.receiver = ZipkinReceiver(cls.workdir)
        cls.addClassCleanup(cls.receiver.stop)

    def post(self, request, content_type="application/json"):
        return self.receiver.post(json.dumps(request), content_type, path="/v1/traces")

    def example(self):
        return json.loads(OTLP_EXAMPLE.read_text())

    def test_example_of_the_spec_is_taken_and_recorded_flat(self):
        status, body = self.post(self.example())
        self.assertEqual((status, json.loads(body)), (200, {}))
        record = self.receiver.records("otlp")[-1]
        self.assertTrue(record["valid"], record)
        self.assertEqual(record["service"], "my.service")
        self.assertEqual(record["scope"]["name"], "my.library")
        self.assertEqual(record["span"]["spanId"], "EEE19B7EC3C1B174")
        self.assertEqual(self.receiver.records("zipkin"), [], "OTLP records are told apart")

    def test_broken_requests_are_refused_and_recorded_invalid(self):
        cases = {
            "enum-name": ("kind", "SPAN_KIND_SERVER"),
            "time-as-number": ("startTimeUnixNano", 1544712660000000000),
            "base64-id": ("traceId", "W47/95gDgQPSabYzgT/GDA=="),
            "unknown-field": ("durationNano", "1000"),
        }
        for label, (field, value) in cases.items():
            with self.subTest(label):
                request = self.example()
                request["resourceSpans"][0]["scopeSpans"][0]["spans"][0][field] = value
                status, _ = self.post(request)
                self.assertEqual(status, 400)
                record = self.receiver.records("otlp")[-1]
                self.assertFalse(record["valid"])
                self.assertIn("/spans/0", json.dumps(record["errors"]))

    def test_body_not_marked_json_is_refused(self):
        status, _ = self.post(self.example(), "application/x-protobuf")
        self.assertEqual(status, 415)
        self.assertFalse(self.receiver.records("otlp")[-1]["valid"])


class OtlpSpans:
    """The OTLP side of a TracingTestCase whose receiver takes OTLP."""

    def otlp_records_of(self, path, method="GET"):
        path = path.split("?", 1)[0]
        return [record for record in self.receiver.records("otlp")
                if isinstance(record["span"], dict)
                and (record["span"].get("name") == f"{method} {path}".lower()
                     or string_attributes(record["span"]).get("http.path") == path)]

    def otlp_span(self, path, method="GET"):
        """The record of the one OTLP span of the one request made to path, checked valid."""
        wait_for(lambda: self.otlp_records_of(path, method), f"the OTLP span of {method} {path}",
                 context=lambda: self.receiver.describe() + "\n" + self.httpd.describe())
        # A second span for the same request would come in the same or the next batch.
        time.sleep(0.3)
        found = self.otlp_records_of(path, method)
        self.assertEqual(len(found), 1, f"one OTLP span expected for {method} {path}: {found}")
        record = found[0]
        self.assertTrue(record["valid"], f"OTLP span of {method} {path} breaks the mapping: "
                                         f"{record['errors']}\n{record['span']}")
        return record


class OtlpTest(OtlpSpans, TracingTestCase):
    OTLP = True

    def test_server_span_continues_the_callers_trace(self):
        trace_id, caller = random_hex(32), random_hex(16)
        before = now_us()
        response = self.request("/app/otlp-continued", {"traceparent": f"00-{trace_id}-{caller}-01"})
        after = now_us()
        record = self.otlp_span("/app/otlp-continued")
        span = record["span"]
        self.assertEqual(span["traceId"], trace_id, span)
        self.assertEqual(span["parentSpanId"], caller, span)
        self.assertRegex(span["spanId"], r"^[0-9a-f]{16}$", "lowercase, as the app gets it")
        self.assertNotEqual(span["spanId"], caller, span)
        self.assertEqual(span["kind"], SPAN_KIND_SERVER, span)
        self.assertEqual(span["name"], "get /app/otlp-continued", span)
        self.assertEqual(record["service"], "demo", record)
        self.assertNotEqual(span.get("status", {}).get("code"), STATUS_CODE_ERROR, span)
        attributes = string_attributes(span)
        self.assertEqual((attributes.get("http.method"), attributes.get("http.status_code")),
                         ("GET", "200"), span)
        start, end = int(span["startTimeUnixNano"]), int(span["endTimeUnixNano"])
        self.assertGreaterEqual(start, (before - CLOCK_SLACK_US) * 1000, span)
        self.assertLess(start, end, span)
        self.assertLessEqual(end, (after + CLOCK_SLACK_US) * 1000, span)
        env = response.json()
        self.assertEqual((env["TOMOGRAPH_TRACE_ID"], env["TOMOGRAPH_SPAN_ID"]),
                         (trace_id, span["spanId"]))

    def test_new_trace_is_a_root_span(self):
        self.request("/static.txt")
        span = self.otlp_span("/static.txt")["span"]
        self.assertRegex(span["traceId"], r"^[0-9a-f]{32}$")
        self.assertNotIn("parentSpanId", span)
        self.assertEqual(span["kind"], SPAN_KIND_SERVER)

    def test_server_error_has_status_error(self):
        self.request("/app/status/500", expect_status=500)
        span = self.otlp_span("/app/status/500")["span"]
        self.assertEqual(span.get("status"), {"code": STATUS_CODE_ERROR}, span)
        self.assertEqual(string_attributes(span).get("http.status_code"), "500", span)

    def test_client_error_is_not_an_error(self):
        self.request("/otlp-missing.txt", expect_status=404)
        span = self.otlp_span("/otlp-missing.txt")["span"]
        self.assertNotEqual(span.get("status", {}).get("code"), STATUS_CODE_ERROR, span)

    def test_service_of_the_location_is_the_resources(self):
        self.request("/app/other-service/otlp")
        record = self.otlp_span("/app/other-service/otlp")
        self.assertEqual(record["service"], "other-service", record)
        self.assertEqual(record["scope"].get("name"), "mod_tomograph", record)

    def test_export_is_json_marked_untraced(self):
        self.request("/app/otlp-headers")
        headers = self.otlp_span("/app/otlp-headers")["headers"]
        self.assertEqual(headers.get("content-type", "").split(";")[0], "application/json", headers)
        self.assertEqual(headers.get("b3"), "0", headers)

    def test_zipkin_gets_nothing_when_not_configured(self):
        self.request("/app/otlp-only")
        self.otlp_span("/app/otlp-only")
        self.assertEqual(self.receiver.records("zipkin"), [])


class ZipkinAndOtlpTest(OtlpSpans, TracingTestCase):
    """Both exporters at once: each gets every span, and they tell the same story."""

    ZIPKIN = True
    OTLP = True

    def test_both_receive_the_same_span(self):
        trace_id, caller = random_hex(32), random_hex(16)
        for path, status in (("/app/both", 200), ("/app/both/status/500", 500)):
            with self.subTest(path):
                _, zipkin = self.traced(path, {"traceparent": f"00-{trace_id}-{caller}-01"},
                                        expect_status=status)
                otlp = self.otlp_span(path)["span"]
                self.assertEqual((otlp["traceId"], otlp["spanId"], otlp.get("parentSpanId")),
                                 (zipkin["traceId"], zipkin["id"], zipkin.get("parentId")))
                self.assertEqual((otlp["kind"], otlp["name"]), (SPAN_KIND_SERVER, zipkin["name"]))
                self.assertEqual(int(otlp["startTimeUnixNano"]), zipkin["timestamp"] * 1000)
                self.assertEqual(int(otlp["endTimeUnixNano"]),
                                 (zipkin["timestamp"] + zipkin["duration"]) * 1000)
                network = network_attributes(otlp)
                self.assertEqual({key: value for key, value in string_attributes(otlp).items()
                                  if key not in network}, zipkin.get("tags", {}))
                self.assertEqual(network, network_attributes_of_zipkin(zipkin), (otlp, zipkin))
                self.assertEqual([(e["name"], int(e["timeUnixNano"])) for e in otlp.get("events", [])],
                                 [(a["value"], a["timestamp"] * 1000)
                                  for a in zipkin.get("annotations", [])])
                self.assertEqual(otlp.get("status", {}).get("code") == STATUS_CODE_ERROR,
                                 "error" in zipkin.get("tags", {}), (otlp, zipkin))


class DualStackListenerTest(OtlpSpans, TracingTestCase):
    """`Listen <port>` with no address, as Debian's ports.conf has it: one socket on [::] that
    takes IPv4 clients as IPv4-mapped addresses. An IPv4 client's span has IPv4 endpoints
    (zipkin2-api.yaml's ipv6 is `format: ipv6`, no IPv4 text), an IPv6 client's IPv6 ones,
    in both exporters."""

    ZIPKIN = True
    OTLP = True
    DUAL_STACK = True

    def test_endpoints_are_of_the_clients_address_family(self):
        for host, family, other in (("127.0.0.1", "ipv4", "ipv6"), ("::1", "ipv6", "ipv4")):
            with self.subTest(host):
                path = f"/app/dual-stack-{family}"
                response = self.httpd.request("GET", path, address=host)
                self.assertEqual(response.status, 200, response.body)
                zipkin = self.server_span(path)
                for member in ("localEndpoint", "remoteEndpoint"):
                    endpoint = zipkin.get(member, {})
                    self.assertEqual(endpoint.get(family), host, zipkin)
                    self.assertNotIn(other, endpoint, zipkin)
                self.assertEqual(zipkin["localEndpoint"].get("port"), self.httpd.port, zipkin)
                self.assertIn("port", zipkin["remoteEndpoint"], zipkin)
                otlp = self.otlp_span(path)["span"]
                self.assertEqual(network_attributes(otlp), {
                    "network.local.address": {"stringValue": host},
                    "network.local.port": {"intValue": str(self.httpd.port)},
                    "network.peer.address": {"stringValue": host},
                    "network.peer.port": {"intValue": str(zipkin["remoteEndpoint"]["port"])},
                }, otlp)


if __name__ == "__main__":
    unittest.main()
