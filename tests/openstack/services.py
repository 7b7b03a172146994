"""The base of the suite's test classes, and the requests a user of keystone and glance
makes (Scenario), run once per class against an httpd serving both (cloud.Services)."""

import json
import re
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import cloud
from harness import (KEEP_ROOTS, StatsdDaemon, TracingTestCase, ZipkinReceiver,
                     random_hex, span_file_lines, wait_for)

SPAN_FILE = "logs/spans.jsonl"
# What a user puts in the bodies: none of it may be exported.
IMAGE_NAME = "image-name-" + random_hex(12)
IMAGE_PROPERTY = "property-value-" + random_hex(12)
IMAGE_DATA = ("image-bytes-" + random_hex(24) + "\n").encode() * 64
WRONG_PASSWORD = "Wr0ng-pass-" + random_hex(12)
# How keystone's tokens (Fernet) begin, in any encoding we export.
FERNET_PREFIX = "gAAAAA"


def shape(value):
    """The keys of a JSON value, recursively (a list: the union of its items' shapes), not
    its values: what an answer must keep with the module loaded."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in sorted(value.items())}
    if isinstance(value, list):
        merged = {}
        for item in value:
            item_shape = shape(item)
            if isinstance(item_shape, dict):
                merged.update(item_shape)
            else:
                merged.setdefault("<item>", item_shape)
        return [merged] if merged else []
    return type(value).__name__


class Call:
    """One request of a scenario: what was sent and what came back."""

    def __init__(self, label, service, method, path, response, trace_id, parent_id):
        self.label = label
        self.service = service
        self.method = method
        self.path = path
        self.status = response.status
        self.headers = {name.lower(): value for name, value in response.headers}
        self.body = response.body
        self.trace_id = trace_id
        self.parent_id = parent_id
        try:
            self.json = response.json() if response.body else None
        except ValueError:
            self.json = None

    @property
    def span_name(self):
        return f"{self.method} {self.path.split('?', 1)[0]}".lower()

    @property
    def shape(self):
        return shape(self.json) if self.json is not None else None

    def __repr__(self):
        return f"{self.label}: {self.service} {self.method} {self.path} -> {self.status}"


class Scenario:
    """The requests of a keystone + glance user, each with a traceparent of its own (so that
    its span is found by its trace id; the services ignore the header): a token, projects,
    a token checked, bad ones refused, and in glance an image listed, made, uploaded, read,
    downloaded and deleted. calls: {label: Call}; tokens: every token issued to us."""

    def __init__(self, services):
        self.services = services
        self.calls = {}
        self.tokens = []

    def call(self, label, service, method, path, headers=None, body=None):
        trace_id, parent_id = random_hex(32), random_hex(16)
        headers = dict(headers or {}, traceparent=f"00-{trace_id}-{parent_id}-01")
        response = self.services.request(service, method, path, headers, body)
        self.calls[label] = Call(label, service, method, path, response, trace_id, parent_id)
        return self.calls[label]

    def run(self):
        """Runs the requests; a failure names the logs of httpd and of the services."""
        try:
            return self._run()
        except AssertionError as error:
            raise AssertionError(f"{error}\n{self.services.describe()}") from None

    def _run(self):
        token_call = self.call("token", "keystone", "POST", "/v3/auth/tokens",
                               body=cloud.password_auth("admin", cloud.ADMIN_PASSWORD, "admin"))
        token = token_call.headers.get("x-subject-token")
        if token_call.status != 201 or not token:
            raise AssertionError(f"no token: {token_call.status} {token_call.body}")
        self.tokens.append(token)
        auth = {"X-Auth-Token": token}
        self.call("versions", "keystone", "GET", "/v3")
        projects = self.call("projects", "keystone", "GET", "/v3/projects", auth)
        project_id = next(project["id"] for project in projects.json["projects"]
                          if project["name"] == "admin")
        self.call("project", "keystone", "GET", f"/v3/projects/{project_id}", auth)
        self.call("token check", "keystone", "GET", "/v3/auth/tokens",
                  dict(auth, **{"X-Subject-Token": token}))
        self.call("no such project", "keystone", "GET", f"/v3/projects/{uuid.uuid4().hex}",
                  auth)
        self.call("wrong password", "keystone", "POST", "/v3/auth/tokens",
                  body=cloud.password_auth("admin", WRONG_PASSWORD, "admin"))
        self.call("no token", "keystone", "GET", "/v3/projects")

        # glance, with a token it has not seen yet (its keystonemiddleware validates it).
        glance_token = self.call("glance token", "keystone", "POST", "/v3/auth/tokens",
                                 body=cloud.password_auth("admin", cloud.ADMIN_PASSWORD,
                                                          "admin"))
        self.tokens.append(glance_token.headers.get("x-subject-token"))
        auth = {"X-Auth-Token": self.tokens[-1]}
        self.call("image list", "glance", "GET", "/v2/images", auth)
        created = self.call("image create", "glance", "POST", "/v2/images", auth, {
            "name": IMAGE_NAME, "disk_format": "raw", "container_format": "bare",
            "visibility": "private", "tomograph_property": IMAGE_PROPERTY})
        if created.status != 201:
            raise AssertionError(f"image create: {created.status} {created.body}")
        image = created.json["id"]
        self.call("image upload", "glance", "PUT", f"/v2/images/{image}/file",
                  dict(auth, **{"Content-Type": "application/octet-stream"}), IMAGE_DATA)
        self.call("image show", "glance", "GET", f"/v2/images/{image}", auth)
        self.call("image download", "glance", "GET", f"/v2/images/{image}/file", auth)
        self.call("image list with one", "glance", "GET", "/v2/images", auth)
        self.call("image delete", "glance", "DELETE", f"/v2/images/{image}", auth)
        self.call("no such image", "glance", "GET", f"/v2/images/{uuid.uuid4()}", auth)
        self.call("image list unauthenticated", "glance", "GET", "/v2/images")
        self.call("glance versions", "glance", "GET", "/versions")
        return self


# The answer each request of Scenario gets, with or without the module.
EXPECTED_STATUS = {
    "token": 201, "versions": 200, "projects": 200, "project": 200, "token check": 200,
    "no such project": 404, "wrong password": 401, "no token": 401, "glance token": 201,
    "image list": 200, "image create": 201, "image upload": 204, "image show": 200,
    "image download": 200, "image list with one": 200, "image delete": 204,
    "no such image": 404, "image list unauthenticated": 401, "glance versions": 200,
}


class ServicesTestCase(TracingTestCase):
    """An httpd with the module serving keystone and glance (cloud.Services) from the run's
    layout, shipping to a span file, the Zipkin receiver (Zipkin and OTLP) and statsd, all
    started once for the class. PROFILER: the [profiler] section of both services;
    WSGI_IMPORTS: scripts both daemons import; DIRECTIVES: more server-wide lines."""

    ZIPKIN = OTLP = STATSD = True
    PROFILER = None
    WSGI_IMPORTS = ()

    @classmethod
    def setUpClass(cls):
        cls.layout = cloud.shared_layout()
        cls.workdir = Path(tempfile.mkdtemp(prefix="tomograph-os-work-"))
        if not KEEP_ROOTS:
            cls.addClassCleanup(shutil.rmtree, cls.workdir, ignore_errors=True)
        cls.before_traced()
        cls.receiver = cls.stopped_after_class(ZipkinReceiver(cls.workdir))
        cls.statsd = cls.stopped_after_class(StatsdDaemon(cls.workdir))
        cls.exporter_directives = [
            "TomographBatch 512 200",
            f"TomographZipkin {cls.receiver.url}",
            f"TomographOTLP {cls.receiver.otlp_url}",
            f"TomographStatsd 127.0.0.1:{cls.statsd.port}",
            f"TomographSpanFile {SPAN_FILE}",
        ]
        cls.services = cloud.Services(
            cls.layout, cls.__name__.lower(), True,
            list(cls.DIRECTIVES) + cls.exporter_directives, profiler=cls.PROFILER,
            wsgi_imports=[path(cls.layout) for path in cls.WSGI_IMPORTS])
        cls.addClassCleanup(cls.services.stop)
        cls.services.start()
        cls.httpd = cls.services.httpd

    @classmethod
    def before_traced(cls):
        """What runs before the traced httpd starts (nothing here)."""

    @property
    def span_file(self):
        return self.httpd.root / SPAN_FILE

    def describe_exports(self):
        return self.receiver.describe() + "\n" + self.services.describe()

    def zipkin_spans(self):
        return [span for span, _ in self.span_records() if isinstance(span, dict)]

    def server_span_of(self, call):
        """The module's SERVER span of a scenario's request (the one span of its trace)."""
        spans = wait_for(lambda: [span for span in self.spans_in_trace(call.trace_id)
                                  if span.get("kind") == "SERVER"],
                         f"the span of {call}", context=self.describe_exports)
        time.sleep(0.3)
        spans = [span for span in self.spans_in_trace(call.trace_id)
                 if span.get("kind") == "SERVER" and span.get("parentId") == call.parent_id]
        self.assertEqual(len(spans), 1, f"one SERVER span for {call}: {spans}")
        return spans[0]

    def exported_texts(self):
        """{where: all its text} of everything exported so far."""
        return {
            "span file": self.span_file.read_text() if self.span_file.exists() else "",
            "zipkin and otlp receiver": (self.receiver.jsonl.read_text()
                                         if self.receiver.jsonl.exists() else ""),
            "statsd": self.statsd.process.output(),
        }

    def span_file_spans(self):
        return [json.loads(line) for line in span_file_lines(self.span_file)]


def statsd_names(lines):
    """The metric names of statsd lines (name:value|type)."""
    return {line.split(":", 1)[0] for line in lines if ":" in line}


ID_LIKE = re.compile(r"[0-9a-f]{16,}|[0-9]{4,}", re.IGNORECASE)
