"""No secret reaches what mod_tomograph exports: no value of X-Auth-Token, X-Subject-Token,
Authorization, Cookie, Set-Cookie, nor of the query parameters TomographRedact names, in
any byte that Zipkin, OTLP, statsd or the span file gets, even when the app or mod_proxy write
them to the error log (whose lines at level error become notes on the span)."""

import base64
import json
import unittest
import uuid

from harness import (DownBackend, HangupBackend, TracingTestCase, span_file_lines, wait_for)

SPAN_FILE = "logs/secrets-spans.jsonl"
REDACTED = "[redacted]"
DEFAULT_PARAMS = ("token", "password", "passwd", "secret", "key", "signature")


def new_secret():
    """Lowercase hex only, so that a leak survives the sanitizing of statsd names."""
    return "5ec" + uuid.uuid4().hex


class SecretChecks:
    """Requests carrying secrets, and a search of every exported byte for them."""

    ZIPKIN = True
    OTLP = True
    STATSD = True
    PARAMS = DEFAULT_PARAMS

    def exports(self):
        """Everything exported so far, by exporter: the receiver's records of each format
        (spans, OTLP resources and scopes, the export requests' headers, bodies it could not
        take), every line statsd got, the span file."""
        return {"zipkin": json.dumps(self.receiver.records("zipkin")),
                "otlp": json.dumps(self.receiver.records("otlp")),
                "statsd": self.statsd.process.output(),
                "span file": "\n".join(span_file_lines(self.httpd.root / SPAN_FILE))}

    def exported_text(self):
        return "\n".join(self.exports().values())

    def careless(self, headers=None, query=""):
        """A request to the embedded app, which logs its query and credentials at level
        error; returns its span once every exporter has it."""
        tag = uuid.uuid4().hex[:12]
        path = f"/embedded/leak{tag}/log-error/1"
        self.request(f"{path}?visible=v{tag}{query}", headers)
        return self.exported_span(path, f"leak{tag}")

    def exported_span(self, path, statsd_word, expect_status=None):
        span = self.server_span(path)
        for exporter in ("span file", "otlp"):
            wait_for(lambda: span["id"] in self.exports()[exporter],
                     f"the span of {path} in the {exporter} export", context=self.describe_exports)
        wait_for(lambda: any(statsd_word in line for line in self.statsd.lines()),
                 f"statsd lines of {path}", context=self.statsd.process.output)
        return span

    def assertNoSecrets(self, secrets):
        exported = self.exported_text().lower()
        leaked = [secret for secret in secrets if secret.lower() in exported]
        self.assertEqual(leaked, [], "secrets in what was exported")

    def assertLoggedAndRedacted(self, span, what):
        """The app's line made it into a note, with something redacted in it (so the
        secret was in the line, not cut off before it)."""
        notes = [n["value"] for n in span.get("annotations", []) if "app error 0:" in n["value"]]
        self.assertEqual(len(notes), 1, f"{what}: the app's error-log line as a note: {span}")
        self.assertIn(REDACTED, notes[0], f"{what}: {notes[0]}")

    def test_query_parameters_named_are_redacted(self):
        for name in self.PARAMS:
            with self.subTest(name):
                secret = new_secret()
                span = self.careless(query=f"&{name}={secret}")
                self.assertLoggedAndRedacted(span, name)
                self.assertNoSecrets([secret])

    def test_parameter_names_match_without_regard_to_case(self):
        secret = new_secret()
        span = self.careless(query=f"&{self.PARAMS[0].upper()}={secret}")
        self.assertLoggedAndRedacted(span, self.PARAMS[0].upper())
        self.assertNoSecrets([secret])


class SecretsTest(SecretChecks, TracingTestCase):
    DIRECTIVES = (f"TomographSpanFile {SPAN_FILE}",)

    @classmethod
    def start_backends(cls):
        cls.down = cls.stopped_after_class(DownBackend())
        cls.hangup = cls.stopped_after_class(HangupBackend())

    @classmethod
    def site_config(cls):
        return (f"ProxyPass /to-down/ http://127.0.0.1:{cls.down.port}/app/ retry=0",
                f"ProxyPass /to-hangup/ http://127.0.0.1:{cls.hangup.port}/app/ retry=0",
                # Apps that check credentials themselves get the Authorization header.
                "<Location /embedded>",
                "    WSGIPassAuthorization On",
                "</Location>")

    def test_credential_headers_are_redacted(self):
        basic = base64.b64encode(f"user:{new_secret()}".encode()).decode()
        cases = {}
        for name, template in (("X-Auth-Token", "{}"), ("X-Subject-Token", "{}"),
                               ("Authorization", "Bearer {}"), ("Cookie", "sid={}; theme=dark")):
            secret = new_secret()
            cases[name] = ({name: template.format(secret)}, secret)
        cases["Authorization-basic"] = ({"Authorization": f"Basic {basic}"}, basic)
        for label, (headers, secret) in cases.items():
            with self.subTest(label):
                span = self.careless(headers)
                self.assertLoggedAndRedacted(span, label)
                self.assertNoSecrets([secret])

    def test_cookie_the_app_sets_is_redacted(self):
        secret = new_secret()
        span = self.careless({"X-Set-Cookie": f"sid={secret}; Path=/; HttpOnly"})
        self.assertLoggedAndRedacted(span, "Set-Cookie")
        self.assertNoSecrets([secret])

    def test_failing_proxied_requests_leak_nothing(self):
        for prefix, status in (("to-down", 503), ("to-hangup", 502)):
            with self.subTest(prefix):
                secrets = {name: new_secret() for name in ("token", "password", "signature")}
                query = "&".join(f"{name}={value}" for name, value in secrets.items())
                header_secret = new_secret()
                tag = uuid.uuid4().hex[:12]
                path = f"/{prefix}/fail{tag}"
                self.request(f"{path}?{query}", {"X-Auth-Token": header_secret},
                             expect_status=status)
                span = self.exported_span(path, f"fail{tag}")
                self.assertIn("error", span["tags"])
                self.assertNoSecrets(list(secrets.values()) + [header_secret])

    def test_everything_exported_is_checked(self):
        """The search itself finds what it looks for: a visible query value does show, in
        what each exporter got (statsd: the path's words)."""
        tag_span = self.careless(query="&innocent=shown0123456789")
        path_word = tag_span["tags"]["http.path"].split("/")[2]
        shown = {"statsd": path_word}
        for exporter, text in self.exports().items():
            with self.subTest(exporter):
                self.assertIn(shown.get(exporter, "shown0123456789"), text)
        self.assertTrue(tag_span["annotations"])


class CustomRedactTest(SecretChecks, TracingTestCase):
    PARAMS = ("session_token", "api_sig")
    DIRECTIVES = (f"TomographSpanFile {SPAN_FILE}", "TomographRedact " + " ".join(PARAMS))


if __name__ == "__main__":
    unittest.main()
