"""Requests over HTTP/2 (mod_http2, cleartext h2c, Debian's stock module): each stream of a
connection is a request of its own to httpd, run on a secondary connection, and must get a
span of its own, continuing its caller's trace, with the app behind it seeing that span as
its parent; a backend reached over HTTP/2 (mod_proxy_http2) is a call with its CLIENT span.
curl upgrades to h2c from HTTP/1.1 (its --http2-prior-knowledge cannot reuse a connection
with this httpd, with or without the module)."""

import json
import subprocess
import unittest

from harness import TracingTestCase, load_modules, random_hex

CURL_TIMEOUT = 20
STREAMS = 6


class Http2Test(TracingTestCase):
    ZIPKIN = True
    SITE_CONFIG = load_modules("http2") + ("Protocols h2c http/1.1",)

    def curl_h2(self, paths, headers):
        """Fetches every path over h2c, the streams in parallel on one connection; returns
        {path: (HTTP version, status, body)}."""
        argv = ["curl", "--silent", "--show-error", "--http2", "--parallel",
                "--parallel-max", str(len(paths)), "--max-time", str(CURL_TIMEOUT),
                "--write-out", "%{url_effective} %{http_version} %{response_code}\\n"]
        for name, value in headers.items():
            argv += ["--header", f"{name}: {value}"]
        origin = f"http://127.0.0.1:{self.httpd.port}"
        outputs = {}
        for i, path in enumerate(paths):
            outputs[path] = self.workdir / f"h2-body-{i}"
            argv += ["--output", str(outputs[path]), f"{origin}{path}"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=CURL_TIMEOUT + 5)
        self.assertEqual(done.returncode, 0, done.stderr)
        results = {}
        for line in done.stdout.splitlines():
            url, version, status = line.split()
            path = url.removeprefix(origin)
            results[path] = (version, int(status), outputs[path].read_bytes())
        self.assertEqual(set(results), set(paths), done.stdout)
        return results

    def test_each_stream_gets_its_own_span_in_the_callers_trace(self):
        trace_id, caller = random_hex(32), random_hex(16)
        apps = [f"/app/h2-stream-{i}" for i in range(STREAMS)]
        results = self.curl_h2(apps + ["/static.txt"],
                               {"traceparent": f"00-{trace_id}-{caller}-01"})
        for path, (version, status, _) in results.items():
            self.assertEqual((version, status), ("2", 200), path)
        spans = {span["name"]: span for span in self.wait_for_trace(trace_id, STREAMS + 1)}
        self.assertEqual(set(spans), {f"get {path}" for path in results}, spans)
        for span in spans.values():
            self.assertContinues(span, trace_id, caller)
            self.assertEqual(span["tags"]["http.status_code"], "200", span)
        self.assertEqual(len({span["id"] for span in spans.values()}), STREAMS + 1, spans)
        # One connection carried them all, the first stream being the request that upgraded
        # it (which makes no span of its own: it ends, 101, when the connection does).
        self.assertEqual(len({span["remoteEndpoint"]["port"] for span in spans.values()}), 1,
                         spans)
        # Each app saw its own stream's span as its parent.
        for path in apps:
            seen = json.loads(results[path][2])
            self.assertEqual((seen["TOMOGRAPH_TRACE_ID"], seen["TOMOGRAPH_SPAN_ID"]),
                             (trace_id, spans[f"get {path}"]["id"]), seen)
            self.assertEqual(seen["HTTP_TRACEPARENT"],
                             f"00-{trace_id}-{spans[f'get {path}']['id']}-01", seen)

    def test_streams_without_a_caller_start_a_trace_each(self):
        paths = [f"/app/h2-root-{i}" for i in range(3)]
        self.curl_h2(paths, {})
        spans = [self.server_span(path) for path in paths]
        for span in spans:
            self.assertNewTrace(span)
        self.assertEqual(len({span["traceId"] for span in spans}), len(paths), spans)


class ProxyToHttp2BackendTest(TracingTestCase):
    """A call through mod_proxy_http2 (h2c:// and h2:// backends) gets its CLIENT span like
    any other: A's SERVER span, A's CLIENT span and B's SERVER span make one trace, each the
    parent of the next."""
    ZIPKIN = True
    DIRECTIVES = ("TomographService service-a",)

    @classmethod
    def start_backends(cls):
        cls.backend = cls.start_httpd(["TomographService service-b"],
                                      load_modules("http2") + ("Protocols h2c http/1.1",))

    @classmethod
    def site_config(cls):
        return load_modules("http2", "proxy_http2") + (
            f"ProxyPass /to-b/ h2c://127.0.0.1:{cls.backend.port}/app/",)

    def test_an_http2_backend_continues_the_client_span(self):
        trace_id, caller = random_hex(32), random_hex(16)
        response = self.request("/to-b/chain", {"traceparent": f"00-{trace_id}-{caller}-01"})
        spans = {(span["localEndpoint"]["serviceName"], span["kind"]): span
                 for span in self.wait_for_trace(trace_id, 3)}
        a_server, a_client = spans["service-a", "SERVER"], spans["service-a", "CLIENT"]
        b_server = spans["service-b", "SERVER"]
        self.assertContinues(a_server, trace_id, caller)
        self.assertEqual(a_client.get("parentId"), a_server["id"], spans)
        self.assertEqual(b_server.get("parentId"), a_client["id"], spans)
        self.assertEqual(a_client["tags"].get("http.url"),
                         f"h2c://127.0.0.1:{self.backend.port}/app/chain")
        self.assertEqual(a_client["tags"].get("http.status_code"), "200", a_client)
        self.assertAppSeesSpan(response.json(), b_server)


if __name__ == "__main__":
    unittest.main()
