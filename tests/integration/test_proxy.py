"""mod_proxy: a CLIENT span for each call to a backend, and the call carries its context.

Two httpd services with mod_tomograph, A (service-a) proxying to B (service-b), make one
trace: A's SERVER span, A's CLIENT span, B's SERVER span, each the parent of the next.
Backends that are down or hang up mark the CLIENT span as an error. A WebSocket proxied
makes its spans too, which end when it closes, and so does a call through mod_proxy_uwsgi
to an app in uWSGI (as DevStack serves OpenStack's APIs), through mod_proxy_fcgi, _scgi
and _ajp."""

import hashlib
import os
import socket
import unittest
from urllib.parse import urlsplit

from harness import (REQUEST_TIMEOUT, AjpBackend, DownBackend, HangupBackend, TracingTestCase,
                     UwsgiServer, WebSocketBackend, as_environ, load_modules, random_hex)

HMAC_KEY = "proxy-key"
BODY_BYTES = 4 * 1024 * 1024
# The demo app's /stream/<n> answers in parts, STREAM_PAUSE_US apart.
STREAM_PARTS = 4
STREAM_PAUSE_US = 100_000


def assert_received_whole(test, response, body):
    """The demo app's answer says it read all of body, unchanged."""
    received = response.json()
    test.assertEqual((received.get("body_bytes"), received.get("body_sha256")),
                     (len(body), hashlib.sha256(body).hexdigest()))


def assert_lasts_the_stream(test, span, role):
    """span covers the demo app's answer to /stream/STREAM_PARTS, sent in parts."""
    test.assertGreaterEqual(span["duration"], STREAM_PARTS * STREAM_PAUSE_US, f"{role}: {span}")


class ProxyChainTest(TracingTestCase):
    ZIPKIN = True
    DIRECTIVES = ("TomographService service-a", f"TomographHMACKey {HMAC_KEY}")

    @classmethod
    def start_backends(cls):
        cls.backend = cls.start_httpd(["TomographService service-b"])
        cls.hangup = cls.stopped_after_class(HangupBackend())
        cls.down = cls.stopped_after_class(DownBackend())

    @classmethod
    def site_config(cls):
        b = cls.backend.port
        return (
            f"ProxyPass /to-b/ http://127.0.0.1:{b}/app/",
            f"ProxyPass /to-b-by-name/ http://localhost:{b}/app/",
            f"ProxyPass /unsampled-to-b/ http://127.0.0.1:{b}/app/",
            "<Location /unsampled-to-b/>",
            "    TomographSampleRate 0",
            "</Location>",
            f"ProxyPass /to-down/ http://127.0.0.1:{cls.down.port}/app/ retry=0",
            f"ProxyPass /to-hangup/ http://127.0.0.1:{cls.hangup.port}/app/ retry=0",
        )

    def chain(self, trace_id, count):
        """The spans of a trace by role: {"a-server", "a-client", "b-server"} (those there)."""
        roles = {}
        for span in self.wait_for_trace(trace_id, count):
            service = span.get("localEndpoint", {}).get("serviceName")
            role = ({"service-a": "a", "service-b": "b"}.get(service, service) + "-"
                    + span["kind"].lower())
            self.assertNotIn(role, roles, f"two {role} spans in {trace_id}")
            roles[role] = span
        return roles

    def proxied(self, path, headers=None, method="GET", expect_status=200):
        """Makes the request to A; returns A's SERVER and CLIENT spans of it."""
        self.request(path, headers, method, expect_status)
        server = self.server_span(path, method)
        clients = [s for s in self.spans_in_trace(server["traceId"]) if s["kind"] == "CLIENT"]
        self.assertEqual(len(clients), 1, clients)
        return server, clients[0]

    def test_two_services_chained_make_one_trace(self):
        trace_id, caller = random_hex(32), random_hex(16)
        response = self.request("/to-b/chain?q=1", {"traceparent": f"00-{trace_id}-{caller}-01"})
        spans = self.chain(trace_id, 3)
        a_server, a_client, b_server = spans["a-server"], spans["a-client"], spans["b-server"]
        self.assertContinues(a_server, trace_id, caller)
        self.assertEqual(a_server["name"], "get /to-b/chain")
        self.assertEqual(a_client.get("parentId"), a_server["id"], spans)
        self.assertEqual(b_server.get("parentId"), a_client["id"], spans)
        self.assertEqual(b_server["name"], "get /app/chain")
        self.assertAppSeesSpan(response.json(), b_server)
        # A's call covers B's work, inside A's own span.
        self.assertGreaterEqual(a_client["timestamp"], a_server["timestamp"], spans)
        self.assertLessEqual(a_client["timestamp"] + a_client["duration"],
                             a_server["timestamp"] + a_server["duration"], spans)
        self.assertGreaterEqual(b_server["timestamp"], a_client["timestamp"], spans)
        for span in spans.values():
            self.assertNotIn("shared", span, span)
            self.assertNotIn("error", span.get("tags", {}), span)

    def test_calls_are_traced_after_a_graceful_restart(self):
        # mod_proxy's hook, which the module registers itself at each reading of the
        # configuration, is there again in the new generation.
        self.httpd.graceful_restart()
        trace_id, caller = random_hex(32), random_hex(16)
        self.request("/to-b/again", {"traceparent": f"00-{trace_id}-{caller}-01"})
        spans = self.chain(trace_id, 3)
        self.assertEqual(spans["a-client"].get("parentId"), spans["a-server"]["id"], spans)
        self.assertEqual(spans["b-server"].get("parentId"), spans["a-client"]["id"], spans)

    def test_client_span_names_the_backend(self):
        _, client = self.proxied("/to-b/described?secret=x")
        b = self.backend.port
        self.assertEqual(client["name"], "get /app/described")
        self.assertEqual(client["localEndpoint"]["serviceName"], "service-a")
        self.assertEqual(client["tags"].get("http.method"), "GET")
        self.assertEqual(client["tags"].get("http.url"), f"http://127.0.0.1:{b}/app/described")
        self.assertEqual(client["tags"].get("http.status_code"), "200")
        self.assertEqual(client.get("remoteEndpoint"), {"ipv4": "127.0.0.1", "port": b}, client)
        self.assertNotIn("peer.hostname", client["tags"])

    def test_client_span_of_a_backend_by_name(self):
        _, client = self.proxied("/to-b-by-name/named")
        b = self.backend.port
        self.assertEqual(client["tags"].get("http.url"), f"http://localhost:{b}/app/named")
        self.assertEqual(client["tags"].get("peer.hostname"), "localhost", client)
        self.assertNotIn("ipv4", client.get("remoteEndpoint", {}), client)
        self.assertEqual(client["tags"].get("http.status_code"), "200")

    def test_post_is_named_by_its_method(self):
        _, client = self.proxied("/to-b/posted", method="POST")
        self.assertEqual(client["name"], "post /app/posted")
        self.assertEqual(client["tags"].get("http.method"), "POST")

    def test_a_request_body_reaches_the_app_whole_through_both_hops(self):
        body = os.urandom(BODY_BYTES)
        trace_id, caller = random_hex(32), random_hex(16)
        response = self.request("/to-b/upload", {"traceparent": f"00-{trace_id}-{caller}-01"},
                                method="PUT", body=body)
        assert_received_whole(self, response, body)
        for role, span in self.chain(trace_id, 3).items():
            self.assertEqual(span["tags"].get("http.method"), "PUT", f"{role}: {span}")
            self.assertEqual(span["tags"].get("http.status_code"), "200", f"{role}: {span}")

    def test_a_streamed_answer_is_in_every_span(self):
        trace_id, caller = random_hex(32), random_hex(16)
        self.request(f"/to-b/stream/{STREAM_PARTS}", {"traceparent": f"00-{trace_id}-{caller}-01"})
        # (B notes its end after its last byte is out, which A may have read by then: the
        # ends of the spans are not ordered.)
        for role, span in self.chain(trace_id, 3).items():
            assert_lasts_the_stream(self, span, role)

    def test_backend_server_error_marks_every_span(self):
        trace_id, caller = random_hex(32), random_hex(16)
        self.request("/to-b/status/503", {"traceparent": f"00-{trace_id}-{caller}-01"},
                     expect_status=503)
        spans = self.chain(trace_id, 3)
        self.assertEqual(spans["a-client"]["tags"].get("http.status_code"), "503", spans)
        for role, span in spans.items():
            self.assertIn("error", span["tags"], f"{role}: {span}")

    def test_backend_down_marks_the_client_span_with_the_reason(self):
        server, client = self.proxied("/to-down/x", expect_status=503)
        reason = client["tags"].get("error", "")
        self.assertTrue(reason and not reason.isdigit(), f"a reason, not a status: {client}")
        self.assertNotIn("http.status_code", client["tags"], "no backend answered")
        self.assertEqual(server["tags"].get("http.status_code"), "503")
        self.assertIn("error", server["tags"], server)
        errors = [n["value"] for n in server["annotations"] if n["value"].startswith("error: ")]
        self.assertTrue(errors, f"mod_proxy's error-log lines as notes: {server}")

    def test_backend_that_hangs_up_marks_the_client_span_with_the_reason(self):
        server, client = self.proxied("/to-hangup/x", expect_status=502)
        reason = client["tags"].get("error", "")
        self.assertTrue(reason and not reason.isdigit(), f"a reason, not a status: {client}")
        self.assertEqual(server["tags"].get("http.status_code"), "502")
        self.assertIn("error", server["tags"], server)

    def test_call_carries_the_client_span(self):
        trace_id, caller = random_hex(32), random_hex(16)
        # The caller's headers, in every format: none of them may go further.
        stale = {"traceparent": f"00-{trace_id}-{caller}-01", "tracestate": "caller=1",
                 "X-B3-TraceId": random_hex(32), "X-B3-SpanId": random_hex(16),
                 "X-B3-ParentSpanId": random_hex(16), "X-B3-Sampled": "1"}
        heads = len(self.hangup.heads)
        server, client = self.proxied("/to-hangup/carried", stale, expect_status=502)
        self.assertEqual(len(self.hangup.heads), heads + 1, self.hangup.heads)
        sent = as_environ(self.hangup.headers())
        self.assertCarries(sent, trace_id, client["id"], "01", server["id"], (HMAC_KEY,))
        self.assertEqual(sent.get("HTTP_TRACESTATE"), "caller=1", "tracestate goes on as it came")

    def test_mod_proxy_answering_itself_makes_no_client_span(self):
        """OPTIONS with Max-Forwards: 0 is answered by mod_proxy, which calls no backend."""
        trace_id, caller = random_hex(32), random_hex(16)
        self.request("/to-b/nowhere", {"traceparent": f"00-{trace_id}-{caller}-01",
                                       "Max-Forwards": "0"}, method="OPTIONS")
        (server,) = self.wait_for_trace(trace_id, 1)
        self.assertEqual((server["kind"], server["name"]), ("SERVER", "options /to-b/nowhere"))
        self.assertEqual(server["tags"].get("http.status_code"), "200", server)
        self.assertNotIn("error", server["tags"], server)

    def test_unsampled_root_stays_unsampled_downstream(self):
        response = self.request("/unsampled-to-b/quiet")
        env = response.json()
        trace_id = env["TOMOGRAPH_TRACE_ID"]
        # b3 names B's parent: A's CLIENT span.
        a_client = (env.get("HTTP_B3", "").split("-") + [""] * 4)[3]
        self.assertRegex(a_client, r"^[0-9a-f]{16}$", f"B continues A's call: {env}")
        # Not sampled, and the random-trace-id flag of the trace A started, carried on.
        self.assertAppSeesContext(env, trace_id, env["TOMOGRAPH_SPAN_ID"], "02", a_client)
        self.assertNoSpanOf("/unsampled-to-b/quiet")
        self.assertEqual(self.spans_in_trace(trace_id), [])


class WebSocketProxyTest(TracingTestCase):
    """A WebSocket through mod_proxy (upgrade=websocket): its request is answered 101 and
    stays on HTTP/1.1, tunnelled until it closes. It is one call like any other: a SERVER
    span and a CLIENT span, both 101, lasting as long as the tunnel, and the backend's
    upgrade request carries the CLIENT span's context."""
    ZIPKIN = True

    @classmethod
    def start_backends(cls):
        cls.websocket = cls.stopped_after_class(WebSocketBackend())

    @classmethod
    def site_config(cls):
        return (f"ProxyPass /ws/ http://127.0.0.1:{cls.websocket.port}/ upgrade=websocket",)

    def open_and_echo(self, path, headers):
        """Upgrades path to a WebSocket, has the backend echo a few bytes, and closes; the
        head of httpd's answer."""
        request = (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                   "Sec-WebSocket-Version: 13\r\n"
                   + "".join(f"{name}: {value}\r\n" for name, value in headers.items())
                   + "\r\n")
        with socket.create_connection(("127.0.0.1", self.httpd.port),
                                      timeout=REQUEST_TIMEOUT) as sock:
            sock.sendall(request.encode())
            received = b""
            while b"\r\n\r\n" not in received:
                chunk = sock.recv(65536)
                self.assertTrue(chunk, f"httpd closed before answering: {received!r}")
                received += chunk
            head, _, echoed = received.partition(b"\r\n\r\n")
            sock.sendall(b"frames")
            while len(echoed) < len(b"frames"):
                chunk = sock.recv(65536)
                self.assertTrue(chunk, f"the tunnel closed before the echo: {echoed!r}")
                echoed += chunk
            self.assertEqual(echoed, b"frames")
        return head.decode("latin-1")

    def test_a_websocket_makes_a_server_and_a_client_span(self):
        trace_id, caller = random_hex(32), random_hex(16)
        head = self.open_and_echo("/ws/chat", {"traceparent": f"00-{trace_id}-{caller}-01"})
        self.assertTrue(head.startswith("HTTP/1.1 101 "), head)
        spans = {span["kind"]: span for span in self.wait_for_trace(trace_id, 2)}
        server, client = spans["SERVER"], spans["CLIENT"]
        self.assertContinues(server, trace_id, caller)
        self.assertEqual(server["name"], "get /ws/chat")
        self.assertEqual(client.get("parentId"), server["id"], spans)
        for span in spans.values():
            self.assertEqual(span["tags"]["http.status_code"], "101", span)
            self.assertNotIn("error", span["tags"], span)
        self.assertEqual(self.websocket.headers()["traceparent"],
                         f"00-{trace_id}-{client['id']}-01")


class IncludeInProxiedPageTest(TracingTestCase):
    """A proxied page whose HTML this server runs through mod_include, and which includes
    another proxied URL: the inner call is made while the outer one still streams its
    answer. Each call keeps its own CLIENT span, the outer one lasting past the inner."""
    ZIPKIN = True

    @classmethod
    def start_backends(cls):
        cls.backend = cls.start_httpd(["TomographService service-b"],
                                      files={"page.shtml": '<!--#include virtual="/inner/x" -->'})

    @classmethod
    def site_config(cls):
        b = cls.backend.port
        return (f"ProxyPass /outer/ http://127.0.0.1:{b}/",
                f"ProxyPass /inner/ http://127.0.0.1:{b}/app/",
                "<Location /outer/>",
                "    Options +Includes",
                "    SetOutputFilter INCLUDES",
                "</Location>")

    def test_each_call_has_its_own_client_span(self):
        trace_id, caller = random_hex(32), random_hex(16)
        response = self.request("/outer/page.shtml", {"traceparent": f"00-{trace_id}-{caller}-01"})
        spans = {(span["localEndpoint"]["serviceName"], span["kind"], span["name"]): span
                 for span in self.wait_for_trace(trace_id, 5)}
        server = spans["demo", "SERVER", "get /outer/page.shtml"]
        outer = spans["demo", "CLIENT", "get /page.shtml"]
        inner = spans["demo", "CLIENT", "get /app/x"]
        for client in (outer, inner):
            self.assertEqual(client.get("parentId"), server["id"], spans)
            self.assertEqual(client["tags"].get("http.status_code"), "200", client)
            self.assertNotIn("error", client["tags"], client)
        self.assertEqual(spans["service-b", "SERVER", "get /page.shtml"].get("parentId"),
                         outer["id"], spans)
        self.assertEqual(spans["service-b", "SERVER", "get /app/x"].get("parentId"),
                         inner["id"], spans)
        # The inner call happened within the outer one, and the app behind it, whose answer
        # the page includes, saw its server's span.
        self.assertLessEqual(inner["timestamp"] + inner["duration"],
                             outer["timestamp"] + outer["duration"], spans)
        inner_server = spans["service-b", "SERVER", "get /app/x"]
        self.assertIn(f'"TOMOGRAPH_SPAN_ID": "{inner_server["id"]}"', response.body)


class OneCallTestCase(TracingTestCase):
    """A request that makes one call to a backend: SERVICE's SERVER span and its CLIENT
    span, down and up (where nothing listens) the backends a subclass starts."""
    ZIPKIN = True
    DIRECTIVES = ("TomographService service-a",)

    @classmethod
    def start_backends(cls):
        cls.down = cls.stopped_after_class(DownBackend())

    def call(self, path, expect_status=200, method="GET", body=None):
        """path with a caller's traceparent: (backend's answer, SERVER span, CLIENT span)."""
        trace_id, caller = random_hex(32), random_hex(16)
        response = self.request(path, {"traceparent": f"00-{trace_id}-{caller}-01"},
                                method, expect_status, body)
        spans = {span["kind"]: span for span in self.wait_for_trace(trace_id, 2)}
        server, client = spans["SERVER"], spans["CLIENT"]
        self.assertContinues(server, trace_id, caller)
        self.assertEqual(client.get("parentId"), server["id"], spans)
        return response, server, client

    @classmethod
    def proxy_passes(cls, module, mount, url):
        """module loaded, mount proxied to url, and mount + "-down" to the same path where
        nothing listens."""
        down = urlsplit(url)._replace(netloc=f"127.0.0.1:{cls.down.port}").geturl()
        return load_modules(module) + (f"ProxyPass {mount} {url}",
                                       f"ProxyPass {mount.rstrip('/')}-down/ {down} retry=0")

    @classmethod
    def balanced(cls, mount, scheme, port, path="/"):
        """mount proxied to a balancer of two members speaking scheme: first the one where
        nothing listens, then the one on port. Weighted so that the down member is tried
        first; once failed, it stays out of the rotation for the rest of the class."""
        return load_modules("slotmem_shm", "proxy_balancer", "lbmethod_byrequests") + (
            f"<Proxy balancer://{scheme}-cluster>",
            f"    BalancerMember {scheme}://127.0.0.1:{cls.down.port} loadfactor=100 retry=60",
            f"    BalancerMember {scheme}://127.0.0.1:{port} loadfactor=1",
            "</Proxy>",
            f"ProxyPass {mount} balancer://{scheme}-cluster{path}")

    def call_failing_over(self, path, url, port, count=3):
        """path through the balancer of `balanced`, to url on port after the down member,
        in a trace of count spans: each attempt is a CLIENT span of SERVICE's SERVER span,
        the one given up on marked, named by the member it tried. Returns (the backend's
        answer, the answered CLIENT span)."""
        trace_id, caller = random_hex(32), random_hex(16)
        response = self.request(path, {"traceparent": f"00-{trace_id}-{caller}-01"})
        ours = [span for span in self.wait_for_trace(trace_id, count)
                if span["localEndpoint"]["serviceName"] == "service-a"]
        (server,) = [span for span in ours if span["kind"] == "SERVER"]
        given_up, answered = sorted((span for span in ours if span["kind"] == "CLIENT"),
                                    key=lambda span: span["timestamp"])
        for client in (given_up, answered):
            self.assertEqual(client.get("parentId"), server["id"], ours)
        self.assertEqual(given_up["tags"].get("error"), "retried on another backend", given_up)
        self.assertEqual(given_up.get("remoteEndpoint"),
                         {"ipv4": "127.0.0.1", "port": self.down.port}, given_up)
        self.assertNotIn("http.status_code", given_up["tags"], "no backend answered")
        self.assertAnsweredCall(answered, url, port)
        self.assertNotIn("error", server["tags"], server)
        return response, answered

    def assertAnsweredCall(self, client, url, port):
        """client: the span of a call answered 200 by the backend at url, on port."""
        self.assertEqual(client["localEndpoint"]["serviceName"], "service-a")
        self.assertEqual(client.get("remoteEndpoint"), {"ipv4": "127.0.0.1", "port": port})
        self.assertEqual(client["tags"].get("http.url"), url)
        self.assertEqual(client["tags"].get("http.status_code"), "200", client)
        self.assertNotIn("error", client["tags"], client)

    def assertDownBackendMarksTheCall(self, path):
        _, server, client = self.call(path, expect_status=503)
        reason = client["tags"].get("error", "")
        self.assertTrue(reason and not reason.isdigit(), f"a reason, not a status: {client}")
        self.assertNotIn("http.status_code", client["tags"], "no backend answered")
        self.assertIn("error", server["tags"], server)

    def assertBackendErrorMarksBothSpans(self, path):
        _, server, client = self.call(path, expect_status=503)
        self.assertEqual(client["tags"].get("http.status_code"), "503", client)
        for span in (server, client):
            self.assertIn("error", span["tags"], span)


class UwsgiProxyTest(OneCallTestCase):
    """httpd in front of uWSGI through mod_proxy_uwsgi, as DevStack serves OpenStack's APIs:
    the call gets its CLIENT span (a span per attempt when a balancer fails over), and the
    app sees that span as its parent in the headers, the request's own (the SERVER span) in
    TOMOGRAPH_*."""
    SCHEME, MODULE, PROTOCOL = "uwsgi", "proxy_uwsgi", "uwsgi"

    @classmethod
    def start_backends(cls):
        super().start_backends()
        cls.uwsgi = cls.stopped_after_class(UwsgiServer(cls.workdir, cls.PROTOCOL))

    @classmethod
    def site_config(cls):
        port = cls.uwsgi.port
        return cls.proxy_passes(cls.MODULE, "/api/", f"{cls.SCHEME}://127.0.0.1:{port}/") + (
            cls.balanced("/failover/", cls.SCHEME, port))

    def test_the_app_is_the_client_spans_child(self):
        response, server, client = self.call("/api/v2/servers")
        port = self.uwsgi.port
        self.assertEqual(client["name"], "get /v2/servers")
        self.assertAnsweredCall(client, f"{self.SCHEME}://127.0.0.1:{port}/v2/servers", port)
        env = response.json()
        self.assertCarries(env, server["traceId"], client["id"], "01", server["id"])
        self.assertEqual((env.get("TOMOGRAPH_TRACE_ID"), env.get("TOMOGRAPH_SPAN_ID")),
                         (server["traceId"], server["id"]), env)

    def test_a_request_body_reaches_the_app_whole(self):
        # An image uploaded to Glance, say.
        body = os.urandom(BODY_BYTES)
        response, server, client = self.call("/api/v2/images/file", method="PUT", body=body)
        assert_received_whole(self, response, body)
        for span in (server, client):
            self.assertEqual(span["tags"].get("http.method"), "PUT", span)

    def test_a_streamed_answer_is_in_both_spans(self):
        _, server, client = self.call(f"/api/v2/stream/{STREAM_PARTS}")
        assert_lasts_the_stream(self, server, "SERVER")
        assert_lasts_the_stream(self, client, "CLIENT")

    def test_an_app_error_marks_the_client_span(self):
        self.assertBackendErrorMarksBothSpans("/api/v2/status/503")

    def test_backend_down_marks_the_client_span_with_the_reason(self):
        self.assertDownBackendMarksTheCall("/api-down/v2/servers")

    def test_a_balancer_failing_over_makes_a_client_span_per_attempt(self):
        port = self.uwsgi.port
        response, answered = self.call_failing_over(
            "/failover/v2/servers", f"{self.SCHEME}://127.0.0.1:{port}/v2/servers", port)
        self.assertCarries(response.json(), answered["traceId"], answered["id"], "01",
                           answered["parentId"])


class AjpProxyTest(OneCallTestCase):
    """httpd in front of a servlet container through mod_proxy_ajp: the call gets its CLIENT
    span (a span per attempt when a balancer fails over), and the container gets that span's
    context in the request headers."""

    @classmethod
    def start_backends(cls):
        super().start_backends()
        cls.container = cls.stopped_after_class(AjpBackend())

    @classmethod
    def site_config(cls):
        return cls.proxy_passes("proxy_ajp", "/servlet/",
                                f"ajp://127.0.0.1:{cls.container.port}/app/") + (
            cls.balanced("/failover/", "ajp", cls.container.port, "/app/"))

    def test_the_container_gets_the_client_spans_context(self):
        response, server, client = self.call("/servlet/orders?page=2")
        port = self.container.port
        self.assertEqual(client["name"], "get /app/orders")
        self.assertAnsweredCall(client, f"ajp://127.0.0.1:{port}/app/orders", port)
        self.assertEqual(response.json(), self.container.headers())
        self.assertCarries(as_environ(self.container.headers()), server["traceId"],
                           client["id"], "01", server["id"])

    def test_a_container_error_marks_the_client_span(self):
        self.assertBackendErrorMarksBothSpans("/servlet/status/503")

    def test_container_down_marks_the_client_span_with_the_reason(self):
        self.assertDownBackendMarksTheCall("/servlet-down/orders")

    def test_a_balancer_failing_over_makes_a_client_span_per_attempt(self):
        port = self.container.port
        _, answered = self.call_failing_over("/failover/orders",
                                             f"ajp://127.0.0.1:{port}/app/orders", port)
        self.assertCarries(as_environ(self.container.headers()), answered["traceId"],
                           answered["id"], "01", answered["parentId"])


class UwsgiUnixSocketTest(TracingTestCase):
    """DevStack's own form: uWSGI on a Unix socket, which mod_proxy reaches by a name of
    its choosing ("unix:/path|uwsgi://uwsgi-uds-keystone-wsgi-public/"). The CLIENT span
    names the backend by that name: no address or port to give."""
    ZIPKIN = True
    NAME = "uwsgi-uds-keystone-wsgi-public"

    @classmethod
    def start_backends(cls):
        run = cls.workdir / "uwsgi-run"
        run.mkdir(mode=0o755)
        cls.workdir.chmod(0o755)
        cls.socket = run / "keystone-wsgi-public.socket"
        cls.uwsgi = cls.stopped_after_class(UwsgiServer(cls.workdir, unix_socket=cls.socket))

    @classmethod
    def site_config(cls):
        return load_modules("proxy_uwsgi") + (
            f'ProxyPass "/identity" "unix:{cls.socket}|uwsgi://{cls.NAME}" retry=0',)

    def test_the_client_span_names_the_socket_by_its_name(self):
        trace_id, caller = random_hex(32), random_hex(16)
        response = self.request("/identity/v3/auth/tokens",
                                {"traceparent": f"00-{trace_id}-{caller}-01"})
        spans = {span["kind"]: span for span in self.wait_for_trace(trace_id, 2)}
        server, client = spans["SERVER"], spans["CLIENT"]
        self.assertEqual(client.get("parentId"), server["id"], spans)
        self.assertEqual(client["tags"].get("http.url"), f"uwsgi://{self.NAME}/v3/auth/tokens")
        self.assertEqual(client["tags"].get("peer.hostname"), self.NAME, client)
        self.assertNotIn("remoteEndpoint", client, client)
        self.assertEqual(client["tags"].get("http.status_code"), "200", client)
        self.assertCarries(response.json(), trace_id, client["id"], "01", server["id"])


class BalancerFailoverTest(OneCallTestCase):
    """A balancer whose first member is down fails over to the next within the request:
    each attempt is a call of its own, a CLIENT span each, the one given up on marked."""

    @classmethod
    def start_backends(cls):
        super().start_backends()
        cls.backend = cls.start_httpd(["TomographService service-b"])

    @classmethod
    def site_config(cls):
        return cls.balanced("/cluster/", "http", cls.backend.port, "/app/")

    def test_each_attempt_is_a_client_span(self):
        port = self.backend.port
        response, answered = self.call_failing_over(
            "/cluster/x", f"http://127.0.0.1:{port}/app/x", port, count=4)
        (b_server,) = [span for span in self.spans_in_trace(answered["traceId"])
                       if span["localEndpoint"]["serviceName"] == "service-b"]
        self.assertEqual(b_server.get("parentId"), answered["id"])
        self.assertAppSeesSpan(response.json(), b_server)


def free_ipv6_port():
    """A free port on ::1, or None where the machine has no IPv6 loopback."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
            return probe.getsockname()[1]
    except OSError:
        return None


@unittest.skipIf(free_ipv6_port() is None, "no IPv6 loopback on this machine")
class Ipv6Test(TracingTestCase):
    """httpd listening on ::1 too, and proxying to itself there: the spans give IPv6
    endpoints, and the CLIENT span's URL has the address in brackets, as URLs have it."""
    ZIPKIN = True

    @classmethod
    def start_backends(cls):
        cls.ipv6_port = free_ipv6_port()

    @classmethod
    def site_config(cls):
        return (f"Listen [::1]:{cls.ipv6_port}",
                f"ProxyPass /to-v6/ http://[::1]:{cls.ipv6_port}/app/")

    def test_spans_of_a_call_over_ipv6(self):
        trace_id, caller = random_hex(32), random_hex(16)
        self.request("/to-v6/six", {"traceparent": f"00-{trace_id}-{caller}-01"})
        spans = {(span["kind"], span["name"]): span for span in self.wait_for_trace(trace_id, 3)}
        front, client = spans["SERVER", "get /to-v6/six"], spans["CLIENT", "get /app/six"]
        back = spans["SERVER", "get /app/six"]
        port = self.ipv6_port
        self.assertEqual(client["tags"].get("http.url"), f"http://[::1]:{port}/app/six")
        self.assertEqual(client.get("remoteEndpoint"), {"ipv6": "::1", "port": port})
        self.assertEqual(back["localEndpoint"].get("ipv6"), "::1", back)
        self.assertEqual(back["localEndpoint"].get("port"), port, back)
        self.assertEqual(back["remoteEndpoint"].get("ipv6"), "::1", back)
        self.assertNotIn("ipv4", back["localEndpoint"], back)
        self.assertEqual(back.get("parentId"), client["id"], spans)
        self.assertEqual(client.get("parentId"), front["id"], spans)


class FastCgiProxyTest(UwsgiProxyTest):
    """The same through mod_proxy_fcgi, to the app in uWSGI speaking FastCGI."""
    SCHEME, MODULE, PROTOCOL = "fcgi", "proxy_fcgi", "fastcgi"

    @classmethod
    def site_config(cls):
        # mod_proxy_fcgi gives the app no PATH_INFO of its own, which the app reads.
        return super().site_config() + ('ProxyFCGISetEnvIf true PATH_INFO "%{REQUEST_URI}"',)



class ScgiProxyTest(UwsgiProxyTest):
    """The same through mod_proxy_scgi, to the app in uWSGI speaking SCGI."""
    SCHEME, MODULE, PROTOCOL = "scgi", "proxy_scgi", "scgi"

    @classmethod
    def site_config(cls):
        # mod_proxy_scgi gives the app no PATH_INFO of its own, which the app reads.
        return super().site_config() + load_modules("setenvif") + (
            "SetEnvIf Request_URI (.*) PATH_INFO=$1",)


if __name__ == "__main__":
    unittest.main()
