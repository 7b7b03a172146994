"""Virtual hosts as OpenStack on Debian has them: one httpd, an API a <VirtualHost>, each
with its mod_wsgi daemon, most without a Tomograph directive. A virtual host is a service
of its own, named after its ServerName unless TomographService says otherwise; each
per-server directive applies where it is set and is inherited, field by field, from the
main server where it is not; the instance-wide ones (exporters, queue, batch, timeouts,
sample limit) are the main server's alone, apply in every virtual host, and are refused
inside one."""

import time
import unittest
import uuid

from harness import (SPAN_WAIT, Httpd, TracingTestCase, b3_value, free_port, osprofiler_headers,
                     random_hex, span_file_lines, wait_for)

MAIN_KEY, GLANCE_KEY = "main-key", "glance-key"
SPAN_FILE = "logs/vhost-spans.jsonl"

# The main server's per-server settings, which a virtual host inherits unless it sets its own
# (the template names the main server's service "demo").
MAIN_DIRECTIVES = (
    f"TomographHMACKey {MAIN_KEY}",
    "TomographResponseHeader X-Trace-Id",
    "TomographRedact mainparam",
    f"TomographSpanFile {SPAN_FILE}",
)

INSTANCE_WIDE = (
    "TomographZipkin http://127.0.0.1:9411/api/v2/spans",
    "TomographOTLP http://127.0.0.1:4318/v1/traces",
    "TomographStatsd 127.0.0.1:8125",
    "TomographSpanFile logs/elsewhere.json",
    "TomographQueueSize 64",
    "TomographBatch 100 250",
    "TomographTimeout 2",
    "TomographStatsdPacket 8192",
    "TomographSampleLimit 5",
)


def wsgi_app(name):
    """A mod_wsgi daemon of the virtual host's own serving the demo app at /app, as Debian's
    keystone and glance packages configure theirs (in a <Location>, which comes after the
    main server's <Location /app>), and the app embedded at /embedded."""
    return (f"    WSGIDaemonProcess {name} processes=1 threads=2",
            '    WSGIScriptAlias /app "@SERVER_ROOT@/app/app.wsgi"',
            '    WSGIScriptAlias /embedded "@SERVER_ROOT@/app/app.wsgi"',
            "    <Location /app>", f"        WSGIProcessGroup {name}", "    </Location>")


def virtual_host(address, server_name, *directives):
    return ((f"<VirtualHost {address}>", f"    ServerName {server_name}")
            + wsgi_app(server_name.split(".")[0])
            + tuple("    " + d for d in directives) + ("</VirtualHost>",))


def unique(prefix="/app/"):
    return f"{prefix}{uuid.uuid4().hex[:12]}"


class VirtualHostsTest(TracingTestCase):
    """Five virtual hosts beside the main server: three name-based on one port (keystone
    with no directive of ours, glance and swift with some), one IP-based (nova on
    127.0.0.2) and one port-based (cinder)."""

    ZIPKIN = True
    OTLP = True
    STATSD = True
    DIRECTIVES = MAIN_DIRECTIVES

    @classmethod
    def start_backends(cls):
        cls.names_port, cls.nova_port, cls.cinder_port = free_port(), free_port(), free_port()

    @classmethod
    def site_config(cls):
        named = f"*:{cls.names_port}"
        return ((f"Listen 127.0.0.1:{cls.names_port}", f"Listen 127.0.0.2:{cls.nova_port}",
                 f"Listen 127.0.0.1:{cls.cinder_port}")
                + virtual_host(named, "keystone.test")
                + virtual_host(named, "glance.test", "TomographService Image-API",
                               f"TomographHMACKey {GLANCE_KEY}",
                               "TomographResponseHeader X-Image-Trace",
                               "TomographRedact imageparam")
                + virtual_host(named, "swift.test", "TomographEnable Off")
                + virtual_host(f"127.0.0.2:{cls.nova_port}", "nova.test", "TomographExtract b3",
                               "TomographPropagate b3", "TomographB3Join On")
                + virtual_host(f"127.0.0.1:{cls.cinder_port}", "cinder.test",
                               "TomographTrustIncoming Off", "TomographSampleRate 0"))

    def where(self, host):
        """(address, port, Host header) that reach a server: "main" or a virtual host."""
        return {"main": ("127.0.0.1", self.httpd.port, "127.0.0.1"),
                "keystone": ("127.0.0.1", self.names_port, "keystone.test"),
                "glance": ("127.0.0.1", self.names_port, "glance.test"),
                "swift": ("127.0.0.1", self.names_port, "swift.test"),
                "nova": ("127.0.0.2", self.nova_port, "nova.test"),
                "cinder": ("127.0.0.1", self.cinder_port, "cinder.test")}[host]

    def call(self, host, path, headers=None):
        """The response of host to GET path (answered 200 by the app)."""
        address, port, name = self.where(host)
        response = self.httpd.request("GET", path, dict(headers or {}, Host=name),
                                      address=address, port=port)
        self.assertEqual(response.status, 200, f"{host} {path}: {response.body}")
        return response

    def span_at(self, host, path, headers=None):
        """(the app's view, the server span) of a request recorded (a sampled caller)."""
        headers = headers or {"traceparent": f"00-{random_hex(32)}-{random_hex(16)}-01"}
        env = self.call(host, path, headers).json()
        return env, self.server_span(path)

    # --- service names ---------------------------------------------------------------

    def test_each_server_is_a_service_of_its_own(self):
        expected = {"main": "demo", "keystone": "keystone.test", "glance": "image-api",
                    "nova": "nova.test"}
        for host, service in expected.items():
            with self.subTest(host=host):
                path = unique()
                env, span = self.span_at(host, path, {"b3": b3_value(random_hex(32),
                                                                    random_hex(16), "1")})
                self.assertEqual(span["localEndpoint"]["serviceName"], service, span)
                self.assertEqual(env["mod_wsgi.process_group"], host if host != "main"
                                 else "tomograph-app", env)

    def test_statsd_names_each_service(self):
        paths = {host: unique() for host in ("keystone", "glance")}
        for host, path in paths.items():
            self.span_at(host, path)
        for service in ("keystone_test", "image-api"):
            wait_for(lambda: any(line.startswith(f"{service}.") for line in self.statsd.lines()),
                     f"statsd metrics of {service}", context=self.statsd.process.output)

    def test_location_in_a_virtual_host_names_its_own_service(self):
        """The main server's <Location /app/other-service> (the template's) applies in a
        virtual host too, as httpd merges locations; the rest of the host keeps its name."""
        _, span = self.span_at("keystone", unique("/app/other-service/"))
        self.assertEqual(span["localEndpoint"]["serviceName"], "other-service", span)

    # --- per-server directives --------------------------------------------------------

    def test_hmac_keys_are_per_server(self):
        """glance honours its own key and not the main server's; keystone, with no key of its
        own, the main server's and not glance's."""
        cases = (("glance", GLANCE_KEY, True), ("glance", MAIN_KEY, False),
                 ("keystone", MAIN_KEY, True), ("keystone", GLANCE_KEY, False))
        for host, key, honoured in cases:
            with self.subTest(host=host, key=key):
                trace, caller = uuid.uuid4(), uuid.uuid4()
                env = self.call(host, unique(),
                                osprofiler_headers(key, str(trace), str(caller))).json()
                self.assertEqual(env["TOMOGRAPH_TRACE_ID"] == trace.hex, honoured, env)
                if honoured:
                    server_key = GLANCE_KEY if host == "glance" else MAIN_KEY
                    self.assertAppSeesContext(env, trace.hex, env["TOMOGRAPH_SPAN_ID"], "01",
                                              caller.hex[:16], hmac_keys=(server_key,))

    def test_response_header_is_per_server(self):
        expected = {"main": "X-Trace-Id", "keystone": "X-Trace-Id", "glance": "X-Image-Trace",
                    "nova": "X-Trace-Id"}
        for host, header in expected.items():
            with self.subTest(host=host):
                response = self.call(host, unique())
                names = {name.lower(): value for name, value in response.headers}
                trace_id = response.json()["TOMOGRAPH_TRACE_ID"]
                self.assertEqual(names.get(header.lower()), trace_id, response.headers)
                other = "x-trace-id" if header == "X-Image-Trace" else "x-image-trace"
                self.assertNotIn(other, names, response.headers)

    def test_redacted_parameters_are_per_server(self):
        """The app logs its query string at level error, a note on the span: keystone hides
        the main server's parameter, glance its own instead."""
        for host, hidden, shown in (("keystone", "mainparam", "imageparam"),
                                    ("glance", "imageparam", "mainparam")):
            with self.subTest(host=host):
                path = unique("/embedded/") + "/log-error/1"
                hidden_value, shown_value = "h" + random_hex(12), "s" + random_hex(12)
                self.call(host, f"{path}?{hidden}={hidden_value}&{shown}={shown_value}",
                          {"traceparent": f"00-{random_hex(32)}-{random_hex(16)}-01"})
                notes = " ".join(n["value"] for n in self.server_span(path)["annotations"])
                self.assertIn("app error 0:", notes)
                self.assertNotIn(hidden_value, notes)
                self.assertIn(f"{shown}={shown_value}", notes)

    def test_extract_and_propagate_are_per_server(self):
        """nova takes b3 only and hands on b3 only; keystone, the defaults."""
        trace_id, caller = random_hex(32), random_hex(16)
        w3c = {"traceparent": f"00-{trace_id}-{caller}-01"}
        path = unique()
        env, span = self.span_at("nova", path, w3c)
        self.assertNewTrace(span, trace_id)
        self.assertNotIn("HTTP_TRACEPARENT", env)
        self.assertIn("HTTP_B3", env)
        env, span = self.span_at("keystone", unique(), w3c)
        self.assertContinues(span, trace_id, caller)
        self.assertAppSeesSpan(env, span, hmac_keys=(MAIN_KEY,))

    def test_b3_join_is_per_server(self):
        for host, shared in (("nova", True), ("keystone", False)):
            with self.subTest(host=host):
                trace_id, caller = random_hex(32), random_hex(16)
                _, span = self.span_at(host, unique(), {"b3": b3_value(trace_id, caller, "1")})
                self.assertEqual(span["traceId"], trace_id, span)
                self.assertEqual(span["id"] == caller, shared, span)

    def test_trust_and_sample_rate_are_per_server(self):
        """cinder trusts no caller and samples no new trace: a sampled caller's context is
        not continued there, and nothing is recorded; keystone continues and records it."""
        trace_id, caller = random_hex(32), random_hex(16)
        headers = {"traceparent": f"00-{trace_id}-{caller}-01"}
        quiet = unique()
        env = self.call("cinder", quiet, headers).json()
        self.assertNotEqual(env["TOMOGRAPH_TRACE_ID"], trace_id, env)
        self.assertTrue(env["HTTP_TRACEPARENT"].endswith("-02"), env)
        _, span = self.span_at("keystone", unique(), headers)
        self.assertContinues(span, trace_id, caller)
        self.assertNoSpanOf(quiet)

    def test_enable_is_per_server(self):
        path = unique()
        env = self.call("swift", path, {"traceparent": f"00-{random_hex(32)}-{random_hex(16)}-01"})
        self.assertNotIn("TOMOGRAPH_TRACE_ID", env.json())
        self.assertNoSpanOf(path)

    # --- instance-wide directives -----------------------------------------------------

    def test_every_exporter_gets_every_server(self):
        """The span file and OTLP (Zipkin and statsd: above), each server's spans under its
        own service."""
        services = {"main": "demo", "keystone": "keystone.test", "glance": "image-api",
                    "nova": "nova.test"}
        paths = {host: unique() for host in services}
        for host, path in paths.items():
            self.span_at(host, path, {"b3": b3_value(random_hex(32), random_hex(16), "1")})
        file = self.httpd.root / SPAN_FILE
        wait_for(lambda: all(any(f'"get {path}"' in line and f'"{services[host]}"' in line
                                 for line in span_file_lines(file))
                             for host, path in paths.items()),
                 "every server's span in the span file", SPAN_WAIT)
        wait_for(lambda: all(any(r["span"]["name"] == f"get {path}"
                                 and r["service"] == services[host] and r["valid"]
                                 for r in self.receiver.records("otlp"))
                             for host, path in paths.items()),
                 "every server's span in OTLP", SPAN_WAIT, context=self.receiver.describe)


class SampleLimitAcrossVirtualHostsTest(TracingTestCase):
    """TomographSampleLimit is one budget for the whole instance: virtual hosts with and
    without directives of their own draw on the main server's."""

    ZIPKIN = True
    LIMIT = 2
    DIRECTIVES = (f"TomographSampleLimit {LIMIT}",)

    @classmethod
    def start_backends(cls):
        cls.names_port = free_port()

    @classmethod
    def site_config(cls):
        named = f"*:{cls.names_port}"
        return ((f"Listen 127.0.0.1:{cls.names_port}",)
                + virtual_host(named, "keystone.test")
                + virtual_host(named, "glance.test", f"TomographHMACKey {GLANCE_KEY}"))

    def test_one_budget_for_every_server(self):
        targets = [(self.httpd.port, "127.0.0.1"), (self.names_port, "keystone.test"),
                   (self.names_port, "glance.test")]
        time.sleep(1 - time.time() % 1)
        first = int(time.time())
        sampled = {}
        for port, host in targets * 4:
            env = self.httpd.request("GET", unique(), {"Host": host}, port=port).json()
            sampled.setdefault(host, []).append(env["HTTP_TRACEPARENT"].endswith("-03"))
        seconds = int(time.time()) - first + 1
        total = sum(sum(decisions) for decisions in sampled.values())
        self.assertGreaterEqual(total, self.LIMIT, sampled)
        self.assertLessEqual(total, self.LIMIT * seconds, sampled)


class InstanceWideDirectivesTest(unittest.TestCase):
    def test_refused_inside_a_virtual_host(self):
        for directive in INSTANCE_WIDE:
            with self.subTest(directive=directive):
                httpd = Httpd(site_config=("<VirtualHost *:@PORT@>", "    ServerName v.test",
                                           "    " + directive, "</VirtualHost>"))
                try:
                    status, output = httpd.config_test()
                finally:
                    httpd.stop()
                self.assertNotEqual(status, 0, output)
                self.assertRegex(output, rf"{directive.split()[0]} cannot occur within "
                                         r"<VirtualHost> section")


if __name__ == "__main__":
    unittest.main()
