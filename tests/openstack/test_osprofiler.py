"""keystone and glance with osprofiler enabled ([profiler] enabled, hmac_keys SECRET_KEY,
trace_sqlalchemy) under httpd with the module (TomographHMACKey SECRET_KEY): a request deep
traced (its caller sent a signed X-Trace-Info, or TomographDeepTraceRate drew it) is
profiled by osprofiler in the service as a child of the module's SERVER span, down to each
SQL statement; any other is not profiled at all. keystonemiddleware (keystoneauth) hands
the profile on to keystone when glance checks a token, and the module there joins it:
glance's request and keystone's check are one trace.

Two drivers ([profiler] connection_string):
- OsprofilerRedisTest: osprofiler's own redis driver (Debian's python3-redis, a redis-server
  of the test's), the client asking for deep tracing: the profile read back from redis,
  beside the module's spans;
- OsprofilerTomographDriverTest: `tomograph://` (python/tomograph/osprofiler_driver.py,
  imported in both daemons by WSGIImportScript, which registers the driver), with
  TomographDeepTraceRate 1 (no client change): osprofiler's spans leave through the module's
  exporters, one tree from the module's SERVER span down to the SQL (the class fails at
  its start if the package has no driver)."""

import re
import subprocess
import time
import uuid
from datetime import datetime, timezone

import cloud
from harness import osprofiler_headers, wait_for
from services import ID_LIKE, IMAGE_DATA, IMAGE_NAME, ServicesTestCase, statsd_names

HMAC_KEY = cloud.HMAC_KEY
DRIVER = "osprofiler_driver"
DRIVER_MODULE = f"tomograph.{DRIVER}"


def osprofiler_time(text):
    """osprofiler's timestamp (UTC, "%Y-%m-%dT%H:%M:%S.%f") in Unix microseconds."""
    moment = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=timezone.utc)
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def handed_on_parent(span):
    """The parent_id of the X-Trace-Info the module hands on for span (README: the span id,
    then the trace id's low 64 bits)."""
    return str(uuid.UUID(hex=span["id"] + span["traceId"][16:]))


def base_id(span):
    return str(uuid.UUID(hex=span["traceId"]))


class Profiled:
    """What the test classes below share (before ServicesTestCase in their bases, not a
    test class of its own): both services profiled, the module signing what it hands on
    with their key."""

    DIRECTIVES = (f"TomographHMACKey {HMAC_KEY}",)

    @classmethod
    def profiler(cls, connection_string):
        return {"enabled": "true", "hmac_keys": HMAC_KEY, "trace_sqlalchemy": "true",
                "connection_string": connection_string}

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        _, cls.token = cls.services.token()

    # Whether a request sends a signed X-Trace-Info of a caller's of its own (deep tracing
    # asked for by the client; else it is TomographDeepTraceRate's to decide).
    CALLER_TRACE_INFO = True

    def traced_call(self, service, method, path, headers=None, body=None, expect=200,
                    caller_trace_info=None):
        """(answer, the module's SERVER span) of a request, with a signed X-Trace-Info of a
        caller's (a new base_id and parent_id) unless caller_trace_info (by default
        CALLER_TRACE_INFO) says not (the module joins it)."""
        headers = dict(headers or {})
        if "X-Trace-Info" in headers:
            pass
        elif self.CALLER_TRACE_INFO if caller_trace_info is None else caller_trace_info:
            headers.update(osprofiler_headers(HMAC_KEY, str(uuid.uuid4()), str(uuid.uuid4())))
        before = {span["id"] for span in self.zipkin_spans()}
        response = self.services.request(service, method, path, headers, body)
        self.assertEqual(response.status, expect, response.body)
        name = f"{method} {path.split('?')[0]}".lower()

        def mine():
            return [span for span in self.zipkin_spans()
                    if span.get("kind") == "SERVER" and span["id"] not in before
                    and span["name"] == name
                    and span["localEndpoint"]["serviceName"] == service]
        found = wait_for(mine, f"the SERVER span of {service} {method} {path}",
                         context=self.describe_exports)
        self.assertEqual(len(found), 1, found)
        return response, found[0]

    def keystone_checks_within(self, span):
        """keystone's SERVER spans of a token check (GET /v3/auth/tokens) that started while
        span (glance's) was open."""
        start, end = span["timestamp"], span["timestamp"] + span["duration"]
        return [other for other in self.zipkin_spans()
                if other["localEndpoint"]["serviceName"] == "keystone"
                and other.get("kind") == "SERVER" and other["name"] == "get /v3/auth/tokens"
                and start <= other["timestamp"] <= end]

    def glance_call_checked_at_keystone(self):
        """(glance's SERVER span of an image list with a token it has not seen, keystone's
        SERVER span of checking that token): one check, in glance's trace."""
        _, fresh = self.services.token()
        _, span = self.traced_call("glance", "GET", "/v2/images", {"X-Auth-Token": fresh})
        checks = wait_for(lambda: self.keystone_checks_within(span),
                          "keystone's span of glance's token check",
                          context=self.describe_exports)
        self.assertEqual(len(checks), 1, checks)
        self.assertEqual(checks[0]["traceId"], span["traceId"], checks[0])
        return span, checks[0]


    def test_no_statement_parameter_is_exported(self):
        """osprofiler's db spans carry the parameters verbatim (db.params): the tokens and
        passwords among them must not reach any exporter (with the tomograph:// driver,
        osprofiler's spans go through them)."""
        _, fresh = self.services.token()
        _, span = self.traced_call("glance", "GET", "/v2/images", {"X-Auth-Token": fresh})
        wait_for(lambda: span["traceId"] in self.exported_texts()["span file"]
                 and any(record["span"].get("traceId") == span["traceId"]
                         for record in self.receiver.records("otlp")),
                 "glance's span in the span file and over OTLP", context=self.describe_exports)
        # With the driver, osprofiler's spans of the request come a batch later at most.
        time.sleep(0.5)
        for where, text in self.exported_texts().items():
            for secret in (cloud.ADMIN_PASSWORD, cloud.GLANCE_PASSWORD, fresh, self.token,
                           "gAAAAA"):
                self.assertNotIn(secret, text, where)


class OsprofilerRedisTest(Profiled, ServicesTestCase):

    @classmethod
    def before_traced(cls):
        cls.redis = cls.stopped_after_class(cloud.RedisServer(cls.workdir))
        cls.PROFILER = cls.profiler(cls.redis.url)

    def profile(self, span, services=("keystone", "glance"), wait_for_name=None):
        """{trace_id: {"name", "parent", "start", "stop", "project", "info"}} of the osprofiler
        spans in span's trace, once each has stopped (and one named wait_for_name is in)."""
        def complete():
            spans = {}
            for event in self.redis.events(base_id(span)):
                name, _, phase = event["name"].rpartition("-")
                entry = spans.setdefault(event["trace_id"], {"name": name})
                entry[phase] = osprofiler_time(event["timestamp"])
                entry["parent"] = event["parent_id"]
                entry["project"] = event.get("project")
                entry.setdefault("info", {}).update(event.get("info") or {})
            done = spans and all("start" in s and "stop" in s for s in spans.values())
            named = wait_for_name is None or any(s["name"] == wait_for_name
                                                 for s in spans.values())
            return spans if done and named else None
        return wait_for(complete, f"osprofiler's profile of {span['name']} in redis",
                        context=self.describe_exports)

    def assertProfileUnder(self, span, project, profile):
        """profile: one wsgi span, the child of the module's span, of the project, within its
        time; db spans below it, each within its parent."""
        wsgi = [trace for trace, s in profile.items()
                if s["name"] == "wsgi" and s["project"] == project
                and s["parent"] == handed_on_parent(span)]
        self.assertEqual(len(wsgi), 1, profile)
        root = profile[wsgi[0]]
        self.assertGreaterEqual(root["start"], span["timestamp"], root)
        self.assertLessEqual(root["stop"], span["timestamp"] + span["duration"], root)
        # What hangs from the wsgi span, through its parents (others of the trace may hang
        # from other spans: keystone's profile of another call glance made in it).
        below = {trace: s for trace, s in profile.items()
                 if trace != wsgi[0] and self.hangs_from(trace, wsgi[0], profile)}
        statements = [s for s in below.values() if s["name"] == "db"]
        self.assertTrue(statements, f"no db span under {span['name']}: {profile}")
        for s in below.values():
            self.assertEqual(s["project"], project, s)
            self.assertGreaterEqual(s["start"], profile[s["parent"]]["start"], s)
            self.assertLessEqual(s["stop"], profile[s["parent"]]["stop"], s)
        return root, statements

    @staticmethod
    def hangs_from(trace, ancestor, profile):
        seen = set()
        while trace in profile and trace not in seen:
            seen.add(trace)
            trace = profile[trace]["parent"]
            if trace == ancestor:
                return True
        return False

    def test_keystone_profiles_a_request_under_the_modules_span(self):
        _, span = self.traced_call("keystone", "GET", "/v3/projects",
                                   {"X-Auth-Token": self.token})
        _, statements = self.assertProfileUnder(span, "keystone", self.profile(span))
        self.assertTrue(any("project" in s["info"]["db"]["statement"] for s in statements),
                        statements)

    def test_without_deep_tracing_osprofiler_stays_off(self):
        """No X-Trace-Info from the caller, TomographDeepTraceRate's default (none): the
        module hands none on, and osprofiler records nothing."""
        _, span = self.traced_call("keystone", "GET", "/v3/projects",
                                   {"X-Auth-Token": self.token}, caller_trace_info=False)
        self.assertNotIn("parentId", span)
        time.sleep(1.0)
        self.assertEqual(self.redis.events(base_id(span)), [])

    def test_a_signed_x_trace_info_of_a_caller_is_joined_and_continued(self):
        base, parent = str(uuid.uuid4()), str(uuid.uuid4())
        headers = dict(osprofiler_headers(HMAC_KEY, base, parent), **{
            "X-Auth-Token": self.token})
        _, span = self.traced_call("keystone", "GET", "/v3/projects", headers)
        self.assertContinues(span, uuid.UUID(base).hex, uuid.UUID(parent).hex[:16])
        self.assertProfileUnder(span, "keystone", self.profile(span))

    def test_glance_profiles_an_image_list_under_the_modules_span(self):
        _, span = self.traced_call("glance", "GET", "/v2/images", {"X-Auth-Token": self.token})
        profile = self.profile(span, wait_for_name="db")
        self.assertProfileUnder(span, "glance", profile)

    def test_glance_and_its_token_check_at_keystone_are_one_trace(self):
        """keystoneauth, in glance's keystonemiddleware, hands the profile on to keystone
        (osprofiler's X-Trace-Info, signed), and the module there joins it: keystone's
        SERVER span of the check is in glance's trace, the child of one of glance's
        osprofiler spans, and keystone's own profile hangs from it."""
        span, check = self.glance_call_checked_at_keystone()
        profile = self.profile(span, wait_for_name="db")
        glance_spans = {trace[:8] + trace[9:13] + trace[14:18]: s
                        for trace, s in profile.items() if s["project"] == "glance"}
        self.assertIn(check.get("parentId"), glance_spans,
                      f"keystone's check is not the child of a glance span: {check} {profile}")
        self.assertProfileUnder(check, "keystone", self.profile(check))

    def test_image_create_and_upload_are_profiled(self):
        auth = {"X-Auth-Token": self.token}
        response, span = self.traced_call("glance", "POST", "/v2/images", auth, {
            "name": IMAGE_NAME, "disk_format": "raw", "container_format": "bare"}, expect=201)
        self.assertProfileUnder(span, "glance", self.profile(span, wait_for_name="db"))
        image = response.json()["id"]
        _, span = self.traced_call(
            "glance", "PUT", f"/v2/images/{image}/file",
            dict(auth, **{"Content-Type": "application/octet-stream"}), IMAGE_DATA, expect=204)
        self.assertProfileUnder(span, "glance", self.profile(span, wait_for_name="db"))
        self.traced_call("glance", "DELETE", f"/v2/images/{image}", auth, expect=204)


def driver_in_package(layout):
    """Whether the assembled package has the osprofiler driver (importlib's find_spec, in
    the Python mod_wsgi embeds, with the package's path and library)."""
    done = subprocess.run(
        ["/usr/bin/python3", "-c",
         "import importlib.util, sys\n"
         f"sys.exit(0 if importlib.util.find_spec({DRIVER_MODULE!r}) else 3)"],
        env={"PYTHONPATH": str(layout.python_dir), "LD_LIBRARY_PATH": str(layout.python_dir),
             "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60, check=False)
    if done.returncode not in (0, 3):
        raise AssertionError(f"looking for {DRIVER_MODULE}: {done.stdout.decode()}")
    return done.returncode == 0


class OsprofilerTomographDriverTest(Profiled, ServicesTestCase):
    """osprofiler's spans through tomograph:// into the module's exporters: one tree per
    request, from the module's SERVER span to each SQL statement."""

    WSGI_IMPORTS = (lambda layout: layout.python_dir / "tomograph" / f"{DRIVER}.py",)
    # Every request deep-traced, with no client change (README's "Tracing OpenStack").
    DIRECTIVES = (f"TomographHMACKey {HMAC_KEY}", "TomographDeepTraceRate 1")
    CALLER_TRACE_INFO = False

    @classmethod
    def before_traced(cls):
        # The driver is part of the package (python/tomograph): its absence is a failure.
        if not driver_in_package(cls.layout):
            raise AssertionError(
                f"{DRIVER_MODULE} is not in the package assembled from python/tomograph "
                f"({cls.layout.python_dir}): no tomograph:// osprofiler driver")
        cls.PROFILER = cls.profiler("tomograph://")

    def tree(self, span, count_at_least=3):
        """The spans of span's trace, once no more come, as {id: span}."""
        wait_for(lambda: len(self.spans_in_trace(span["traceId"])) >= count_at_least,
                 f"{count_at_least} spans in the trace of {span['name']}",
                 context=self.describe_exports)
        previous = None
        while True:
            spans = self.spans_in_trace(span["traceId"])
            if previous is not None and len(spans) == previous:
                return {s["id"]: s for s in spans}
            previous = len(spans)
            time.sleep(0.5)

    def assertTreeUnder(self, span, service):
        """Under the module's SERVER span: one wsgi span of the service, the service's db
        spans under it (CLIENT spans, each with its statement), each span within its
        parent's time, and every span of the trace hanging from the trace's root (another
        service's SERVER span, when this one called it, hangs from one of this one's)."""
        spans = self.tree(span)
        roots = [s for s in spans.values() if s.get("parentId") not in spans]
        self.assertEqual(len(roots), 1, f"one root: {roots}")
        wsgi = [s for s in spans.values()
                if s["name"] == "wsgi" and s.get("parentId") == span["id"]]
        self.assertEqual(len(wsgi), 1, spans)
        mine = [s for s in spans.values() if self.descends(s, wsgi[0], spans, within=True)]
        statements = [s for s in mine if s["name"] == "db"]
        self.assertTrue(statements, f"no db span under wsgi: {spans}")
        for s in [wsgi[0], *mine]:
            parent = spans[s["parentId"]]
            self.assertEqual(s["localEndpoint"]["serviceName"], service, s)
            self.assertGreaterEqual(s["timestamp"], parent["timestamp"], s)
            self.assertLessEqual(s["timestamp"] + s.get("duration", 0),
                                 parent["timestamp"] + parent.get("duration", 0), s)
        for statement in statements:
            self.assertEqual(statement["kind"], "CLIENT", statement)
            self.assertTrue(statement["tags"].get("db.statement"), statement)
        # Each valid for Zipkin (the receiver checks them against zipkin2-api.yaml).
        for record, errors in self.span_records():
            if record.get("traceId") == span["traceId"]:
                self.assertIsNone(errors, record)
        return spans

    @staticmethod
    def descends(span, ancestor, spans, within=False):
        """Whether span hangs from ancestor; within: in the same service (no SERVER span
        between them, nor is span one)."""
        if within and span.get("kind") == "SERVER":
            return False
        while span.get("parentId") in spans:
            if span["parentId"] == ancestor["id"]:
                return True
            span = spans[span["parentId"]]
            if within and span.get("kind") == "SERVER":
                return False
        return False

    def test_statsd_names_stay_few_with_osprofilers_spans(self):
        """osprofiler's spans reach statsd under their names (wsgi, db), not their
        statements, and no id makes a name of its own."""
        self.traced_call("keystone", "GET", "/v3/projects", {"X-Auth-Token": self.token})
        self.traced_call("glance", "GET", f"/v2/images/{uuid.uuid4()}",
                         {"X-Auth-Token": self.token}, expect=404)
        expected = {"keystone.wsgi", "keystone.db", "glance.wsgi", "glance.db"}
        wait_for(lambda: expected <= statsd_names(self.statsd.lines()),
                 f"statsd timers {sorted(expected)}",
                 context=lambda: "\n".join(self.statsd.lines()))
        names = statsd_names(line for line in self.statsd.lines()
                             if not line.startswith("tomograph_harness.probe_"))
        self.assertEqual([name for name in names if ID_LIKE.search(name)], [], sorted(names))
        # osprofiler's spans: two names a service, with their notes' counters; no statement.
        self.assertEqual({name for name in names if name.split(".")[1] in ("wsgi", "db")},
                         {f"{name}{note}" for name in expected
                          for note in ("", ".start", ".stop")})
        self.assertEqual([name for name in names
                          if re.search(r"select|insert|update|from", name, re.IGNORECASE)],
                         [], sorted(names))

    def test_a_callers_signed_x_trace_info_is_continued_down_to_sql(self):
        base, parent = uuid.uuid4(), uuid.uuid4()
        _, span = self.traced_call(
            "keystone", "GET", "/v3/projects",
            dict(osprofiler_headers(HMAC_KEY, str(base), str(parent)),
                 **{"X-Auth-Token": self.token}))
        self.assertContinues(span, base.hex, parent.hex[:16])
        self.assertTreeUnder(span, "keystone")

    def test_keystone_request_is_one_tree_down_to_sql(self):
        _, span = self.traced_call("keystone", "GET", "/v3/projects",
                                   {"X-Auth-Token": self.token})
        self.assertTreeUnder(span, "keystone")

    def test_glance_image_list_is_one_tree_down_to_sql(self):
        _, span = self.traced_call("glance", "GET", "/v2/images", {"X-Auth-Token": self.token})
        self.assertTreeUnder(span, "glance")

    def test_glance_and_its_token_check_at_keystone_are_one_trace(self):
        span, check = self.glance_call_checked_at_keystone()
        spans = self.assertTreeUnder(span, "glance")
        self.assertIn(check.get("parentId"), spans, check)
        self.assertTrue(self.descends(check, span, spans), check)
        self.assertTreeUnder(check, "keystone")
