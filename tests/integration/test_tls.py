"""httpd serving HTTPS (mod_ssl, a certificate made for the test), as public OpenStack
endpoints often are: requests over TLS, HTTP/2 streams negotiated by ALPN among them, get
their spans like any other, and a call to an HTTPS backend (SSLProxyEngine) is a CLIENT span
naming it."""

import subprocess
import unittest

from harness import TracingTestCase, free_port, load_modules, random_hex

CURL_TIMEOUT = 20


class TlsTest(TracingTestCase):
    ZIPKIN = True

    @classmethod
    def start_backends(cls):
        cls.tls_port = free_port()
        cls.key = cls.workdir / "tls-key.pem"
        cls.cert = cls.workdir / "tls-cert.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", str(cls.key), "-out", str(cls.cert)],
                       check=True, capture_output=True, timeout=60)

    @classmethod
    def site_config(cls):
        return load_modules("ssl", "socache_shmcb", "http2") + (
            f"Listen 127.0.0.1:{cls.tls_port}",
            f"<VirtualHost 127.0.0.1:{cls.tls_port}>",
            "    TomographService demo-tls",
            "    SSLEngine on",
            f"    SSLCertificateFile {cls.cert}",
            f"    SSLCertificateKeyFile {cls.key}",
            "    Protocols h2 http/1.1",
            '    WSGIScriptAlias /app "@SERVER_ROOT@/app/app.wsgi"',
            "    WSGIProcessGroup tomograph-app",
            "</VirtualHost>",
            "SSLProxyEngine on",
            "SSLProxyVerify none",
            "SSLProxyCheckPeerName off",
            f"ProxyPass /to-tls/ https://127.0.0.1:{cls.tls_port}/app/")

    def test_streams_over_tls_get_their_spans(self):
        trace_id, caller = random_hex(32), random_hex(16)
        paths = [f"/app/tls-{i}" for i in range(3)]
        argv = ["curl", "--silent", "--show-error", "--insecure", "--http2", "--parallel",
                "--max-time", str(CURL_TIMEOUT), "--header",
                f"traceparent: 00-{trace_id}-{caller}-01",
                "--write-out", "%{http_version} %{response_code}\\n"]
        for path in paths:
            argv += ["--output", "/dev/null", f"https://127.0.0.1:{self.tls_port}{path}"]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=CURL_TIMEOUT + 5)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout.split("\n")[:-1], ["2 200"] * len(paths), done.stdout)
        spans = {span["name"]: span for span in self.wait_for_trace(trace_id, len(paths))}
        self.assertEqual(set(spans), {f"get {path}" for path in paths}, spans)
        for span in spans.values():
            self.assertContinues(span, trace_id, caller)
            self.assertEqual(span["localEndpoint"],
                             {"serviceName": "demo-tls", "ipv4": "127.0.0.1",
                              "port": self.tls_port},
                             span)

    def test_a_call_to_an_https_backend_is_a_client_span(self):
        trace_id, caller = random_hex(32), random_hex(16)
        response = self.request("/to-tls/called", {"traceparent": f"00-{trace_id}-{caller}-01"})
        spans = {(span["kind"], span["name"]): span for span in self.wait_for_trace(trace_id, 3)}
        front = spans["SERVER", "get /to-tls/called"]
        client = spans["CLIENT", "get /app/called"]
        back = spans["SERVER", "get /app/called"]
        self.assertEqual(client["tags"].get("http.url"),
                         f"https://127.0.0.1:{self.tls_port}/app/called")
        self.assertEqual(client.get("parentId"), front["id"], spans)
        self.assertEqual(back.get("parentId"), client["id"], spans)
        self.assertEqual(back["localEndpoint"]["serviceName"], "demo-tls", back)
        self.assertAppSeesSpan(response.json(), back)


if __name__ == "__main__":
    unittest.main()
