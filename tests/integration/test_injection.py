"""Nothing a request carries can be injected into what mod_tomograph writes: requests sent
byte for byte on a raw socket (http.client refuses control bytes) with nasty paths and trace
headers holding control bytes or oversized values. Each is served, or refused by httpd itself
(400 for a control byte in a header field, a bare CR, or a field over LimitRequestFieldSize;
404 for an encoded NUL in the path; mod_wsgi: 404 for a path beyond PATH_MAX); whatever
happens, every statsd line is a well-formed metric, every span-file line one JSON object
without a raw control byte, every span valid, and neither the app nor the client gets a
control byte or a header made from the request. An oversized trace header is ignored (a new
trace), never cut into an id (README, "Limits on what comes in").

httpd's default HttpProtocolOptions Strict refuses control bytes in header fields with 400
before the module sees them; a second server with Unsafe lets them through to the module."""

import base64
import json
import re
import socket
import unittest
import uuid

from harness import REQUEST_TIMEOUT, TracingTestCase, random_hex, wait_for

SPAN_FILE = "logs/injection-spans.jsonl"
TRACE_ID_HEADER = "X-Trace-Id"
CONTROL_BYTE = re.compile(rb"[\x00-\x1f\x7f]")
CONTROL_CHAR = re.compile(r"[\x00-\x1f\x7f]")
STATSD_LINE = re.compile(r"^[A-Za-z0-9_.-]+:[0-9]+(\.[0-9]+)?\|(ms|c)$")
# httpd's LimitRequestFieldSize (8190 by default) refuses longer header fields itself.
OVER_HTTPD_FIELD_LIMIT = 10 * 1024
# README: X-Trace-Info is read up to 4096 bytes.
X_TRACE_INFO_LIMIT = 4096


class RawResponse:
    def __init__(self, data):
        head, _, self.body = data.partition(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        self.status_line, self.header_lines = lines[0], lines[1:]
        match = re.match(rb"HTTP/1\.[01] ([0-9]{3}) ", self.status_line)
        if not match:
            raise AssertionError(f"not an HTTP response: {data[:200]!r}")
        self.status = int(match.group(1))

    def header(self, name):
        for line in self.header_lines:
            key, _, value = line.partition(b":")
            if key.strip().lower() == name.lower().encode():
                return value.strip().decode("latin-1")
        return None


def raw_request(port, target, headers=()):
    """GET target (bytes, sent as is) with headers ((bytes name, bytes value) pairs, as is)
    on a connection of its own; the whole response."""
    head = (b"GET " + target + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            + b"".join(name + b": " + value + b"\r\n" for name, value in headers) + b"\r\n")
    data = b""
    with socket.create_connection(("127.0.0.1", port), timeout=REQUEST_TIMEOUT) as sock:
        sock.sendall(head)
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return RawResponse(data)


def x_trace_info(base_id, parent_id, size):
    """An unsigned X-Trace-Info of `size` bytes (give or take 3) whose JSON is valid, padded by
    a member osprofiler does not read."""
    def encoded(pad):
        info = {"base_id": str(base_id), "parent_id": str(parent_id), "pad": "p" * pad}
        return base64.urlsafe_b64encode(json.dumps(info).encode())
    bare = len(encoded(0))
    return encoded(max(0, (size - bare) * 3 // 4))


class InjectionChecks:
    """The trace-header cases; HEADER_CONTROL_STATUS: what httpd answers to a header field
    with a control byte."""

    ZIPKIN = True
    STATSD = True
    DIRECTIVES = (f"TomographSpanFile {SPAN_FILE}", f"TomographResponseHeader {TRACE_ID_HEADER}")
    HEADER_CONTROL_STATUS = None

    def send(self, target, headers=(), expect_status=200):
        response = raw_request(self.httpd.port, target, headers)
        self.assertEqual(response.status, expect_status,
                         f"{target[:80]!r} {[(n, v[:80]) for n, v in headers]}: {response.body[:300]!r}")
        for line in response.header_lines:
            self.assertIsNone(CONTROL_BYTE.search(line), f"control byte in the response head: {line!r}")
            self.assertFalse(line.lower().startswith(b"x-injected"), response.header_lines)
        return response

    def span_of(self, response):
        """The Zipkin span of the request that got `response` (by its trace id header)."""
        trace_id = response.header(TRACE_ID_HEADER)
        self.assertRegex(trace_id or "", r"^[0-9a-f]{32}$", response.header_lines)
        (span,) = self.wait_for_trace(trace_id, 1)
        return span

    def assertAppGotNoControlByte(self, response):
        env = json.loads(response.body)
        for key, value in env.items():
            self.assertIsNone(CONTROL_CHAR.search(value or ""), f"{key}={value!r} reached the app")
        return env

    def assertExportsClean(self, spans):
        """Every statsd line and every span exported so far is well formed, and so are the
        span-file lines of these spans (whole lines, in UTF-8)."""
        for line in self.statsd.lines():
            self.assertRegex(line, STATSD_LINE)
        invalid = [r for r in self.receiver.records() if not r["valid"]]
        self.assertEqual(invalid, [], "spans failing zipkin2-api.yaml")
        raw = (self.httpd.root / SPAN_FILE).read_bytes()
        self.assertTrue(raw.endswith(b"\n"), raw[-200:])
        lines = raw.split(b"\n")[:-1]
        for span in spans:
            with self.subTest(span=span["name"][:60]):
                (line,) = [line for line in lines if span["traceId"].encode() in line]
                self.assertIsNone(CONTROL_BYTE.search(line), f"raw control byte in a span-file line: {line!r}")
                self.assertEqual(json.loads(line.decode("utf-8")), span)

    def assertNewTrace(self, span, *foreign):
        super().assertNewTrace(span)
        for header_value in foreign:
            self.assertNotIn(span["traceId"], header_value, f"an id cut from the header: {span}")
            self.assertNotIn(span["traceId"][16:], header_value, f"an id cut from the header: {span}")

    # --- trace headers with control bytes --------------------------------------------

    def test_control_bytes_in_trace_headers(self):
        def traceparent(trace_id, caller):
            return (b"traceparent", f"00-{trace_id}-{caller}-01".encode())
        # (headers, whether a valid traceparent comes with them, httpd's answer)
        cases = {
            "traceparent-0x01": lambda t, c: (
                [(b"traceparent", traceparent(t, c)[1][:-1] + b"\x01")], False, None),
            "tracestate-0x7f": lambda t, c: (
                [traceparent(t, c), (b"tracestate", b"vendor=a\x7fb,other=c")], True, None),
            # A bare CR ends no header line: httpd refuses it, even with Unsafe.
            "tracestate-bare-cr": lambda t, c: (
                [traceparent(t, c), (b"tracestate", b"vendor=a\rX-Injected: yes")], True, 400),
            "b3-0x01": lambda t, c: ([(b"b3", f"{t}-{c}-1".encode() + b"\x01")], False, None),
            "x-trace-info-0x1b": lambda t, c: (
                [(b"X-Trace-Info", b"\x1b[31m" + x_trace_info(uuid.UUID(hex=t), uuid.uuid4(), 200))],
                False, None),
        }
        spans = []
        for label, case in cases.items():
            with self.subTest(label):
                trace_id, caller = random_hex(32), random_hex(16)
                headers, continued, status = case(trace_id, caller)
                response = self.send(f"/app/ctl-header-{label}".encode(), headers,
                                     status or self.HEADER_CONTROL_STATUS)
                spans.append(self.span_of(response))
                if response.status != 200:
                    continue
                env = self.assertAppGotNoControlByte(response)
                self.assertEqual(env["TOMOGRAPH_TRACE_ID"], spans[-1]["traceId"])
                if continued:
                    self.assertContinues(spans[-1], trace_id, caller)
                    self.assertNotIn("HTTP_TRACESTATE", env, "a malformed list is dropped whole")
                else:
                    self.assertNewTrace(spans[-1], trace_id)
        self.assertExportsClean(spans)

    # --- oversized trace headers -----------------------------------------------------

    def test_oversized_trace_headers_are_ignored_not_cut(self):
        trace_id, caller = random_hex(32), random_hex(16)
        base_id = uuid.UUID(hex=random_hex(32))
        repeated = trace_id.encode() * 190  # 6080 bytes: within httpd's field limit
        spans = []
        cases = {
            "traceparent": (b"traceparent", b"00-" + repeated + b"-" + caller.encode() + b"-01"),
            "b3": (b"b3", repeated + b"-" + caller.encode() + b"-1"),
            "b3-over-10k": (b"b3", trace_id.encode() * (OVER_HTTPD_FIELD_LIMIT // 32 + 1)
                            + b"-" + caller.encode() + b"-1"),
            "x-b3-traceid": (b"X-B3-TraceId", repeated),
            "x-trace-info-5000": (b"X-Trace-Info", x_trace_info(base_id, uuid.uuid4(), 5000)),
        }
        for label, (name, value) in cases.items():
            with self.subTest(label):
                headers = [(name, value)]
                if name == b"X-B3-TraceId":
                    headers += [(b"X-B3-SpanId", caller.encode()), (b"X-B3-Sampled", b"1")]
                refused = len(value) > OVER_HTTPD_FIELD_LIMIT
                response = self.send(f"/app/oversized-{label}".encode(), headers,
                                     400 if refused else 200)
                span = self.span_of(response)
                spans.append(span)
                self.assertNewTrace(span, value.decode(), base_id.hex)
                if not refused:
                    self.assertEqual(self.assertAppGotNoControlByte(response)["TOMOGRAPH_TRACE_ID"],
                                     span["traceId"])
        self.assertExportsClean(spans)


class StrictInjectionTest(InjectionChecks, TracingTestCase):
    """httpd's defaults: a control byte in a header field is refused by httpd with 400. The
    paths, and the headers the module must take, are tried here only."""

    HEADER_CONTROL_STATUS = 400

    # --- paths ---------------------------------------------------------------------

    def test_nasty_paths_are_served_and_exported_harmlessly(self):
        tag = uuid.uuid4().hex[:8]
        spans = []
        cases = {
            "encoded-crlf": (b"/app/crlf%0d%0aX-Injected:%20yes%0d%0a", 200),
            "encoded-lf-and-tab": (b"/app/lf%0aX-Injected:%09yes", 200),
            "encoded-nul": (b"/app/nul%00after", 404),
            "encoded-control-and-del": (b"/app/ctl%01%1b[31m%7f", 200),
            "invalid-utf8": (b"/app/utf%ff%fe%c3%28", 200),
            "statsd-syntax": (b"/app/pipe|c:1|ms@0.5", 200),
            "encoded-statsd-syntax": (b"/app/stat%3a1%7cc%0afoo:2%7cms", 200),
            "encoded-spaces": (b"/app/sp%20ace+plus%20", 200),
            # Within PATH_MAX once under the server root: mod_wsgi finds its script.
            "long": (b"/app/" + b"long/" * 780, 200),
            # Beyond it: mod_wsgi cannot stat its script (ENAMETOOLONG) and answers 404.
            "longer-than-path-max": (b"/app/" + b"long/" * 1400, 404),
        }
        for label, (path, status) in cases.items():
            with self.subTest(label):
                target = path + f"?case={tag}-{label}".encode()
                response = self.send(target, expect_status=status)
                span = self.span_of(response)
                spans.append(span)
                self.assertEqual(span["tags"].get("http.status_code"), str(status), span)
                if status == 200:
                    self.assertEqual(self.assertAppGotNoControlByte(response)["TOMOGRAPH_TRACE_ID"],
                                     span["traceId"])
        self.assertExportsClean(spans)

    def test_request_refused_at_its_request_line_is_named_after_its_status(self):
        """httpd refuses a request line over LimitRequestLine (414) before it has a method or
        a path: the span and its statsd timer are named after the status, not blank."""
        span = self.span_of(self.send(b"/app/" + b"x" * 9000, expect_status=414))
        self.assertEqual(span["name"], "414 request-uri too long", span)
        self.assertEqual(span["tags"].get("http.status_code"), "414", span)
        metric = "demo.414_request-uri_too_long:"
        wait_for(lambda: any(line.startswith(metric) for line in self.statsd.lines()),
                 f"statsd timer {metric}", context=self.statsd.process.output)
        self.assertExportsClean([span])

    # --- what the module must take -------------------------------------------------

    def test_encoded_cr_in_tracestate_goes_on_as_sent(self):
        """'%' is a tracestate value character: the entry is valid and stays encoded."""
        trace_id, caller = random_hex(32), random_hex(16)
        state = b"vendor=a%0D%0AX-Injected: yes,other=b"
        response = self.send(b"/app/tracestate-encoded-cr",
                             [(b"traceparent", f"00-{trace_id}-{caller}-01".encode()),
                              (b"tracestate", state)])
        env = self.assertAppGotNoControlByte(response)
        self.assertEqual(env.get("HTTP_TRACESTATE"), state.decode())
        span = self.span_of(response)
        self.assertContinues(span, trace_id, caller)
        self.assertExportsClean([span])

    def test_x_trace_info_within_the_limit_is_taken(self):
        """The counterpart of the 5000-byte case: the size alone turned that one away."""
        base_id, parent_id = uuid.uuid4(), uuid.uuid4()
        value = x_trace_info(base_id, parent_id, X_TRACE_INFO_LIMIT - 8)
        self.assertLessEqual(len(value), X_TRACE_INFO_LIMIT)
        response = self.send(b"/app/x-trace-info-near-limit", [(b"X-Trace-Info", value)])
        self.assertContinues(self.span_of(response), base_id.hex, parent_id.hex[:16])


class UnsafeInjectionTest(InjectionChecks, TracingTestCase):
    """HttpProtocolOptions Unsafe: httpd hands control bytes in header fields to the module."""

    HEADER_CONTROL_STATUS = 200
    SITE_CONFIG = ("HttpProtocolOptions Unsafe",)


if __name__ == "__main__":
    unittest.main()
