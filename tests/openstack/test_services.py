"""keystone and glance (Debian 12's) under httpd with mod_tomograph, osprofiler disabled:
they answer as without the module (the same scenario against the same layout served by an
httpd without it), every request has the module's SERVER span (service, name, status),
nothing a user sends (passwords, tokens, bodies) reaches any exporter, statsd's names do
not grow with ids, and glance's token checks reach keystone as traces of their own (no
osprofiler to carry the trace through keystonemiddleware's own HTTP client)."""

import time
import uuid

import cloud
from harness import random_hex, wait_for
from services import (EXPECTED_STATUS, FERNET_PREFIX, ID_LIKE, IMAGE_DATA, IMAGE_NAME,
                      IMAGE_PROPERTY, WRONG_PASSWORD, Scenario, ServicesTestCase,
                      statsd_names)


class TracedServicesTest(ServicesTestCase):

    @classmethod
    def before_traced(cls):
        plain = cloud.Services(cls.layout, "plain", with_module=False)
        plain.start()
        try:
            cls.plain = Scenario(plain).run()
            cls.plain_errors = plain.service_log_errors()
        finally:
            plain.stop()

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.traced = Scenario(cls.services).run()

    def wait_for_scenario_exported(self):
        """Until the scenario's last request is in every exporter (they leave in order)."""
        last = list(self.traced.calls.values())[-1]
        self.server_span_of(last)
        wait_for(lambda: last.trace_id in self.exported_texts()["span file"]
                 and any(record["span"].get("traceId") == last.trace_id
                         for record in self.receiver.records("otlp"))
                 and "glance.get_versions:" in self.statsd.process.output(),
                 "the last request in every exporter", context=self.describe_exports)
        # What came in the same batch.
        time.sleep(0.5)

    # --- the services work under httpd --------------------------------------------------

    def test_keystone_issues_a_token_and_lists_projects(self):
        token = self.traced.calls["token"]
        self.assertEqual(token.status, 201, token.body)
        self.assertRegex(token.headers.get("x-subject-token", ""), r"^gAAAAA")
        self.assertEqual(token.json["token"]["user"]["name"], "admin")
        self.assertEqual(token.json["token"]["project"]["name"], "admin")
        projects = self.traced.calls["projects"]
        self.assertEqual(projects.status, 200, projects.body)
        self.assertLessEqual({"admin", "service"},
                             {project["name"] for project in projects.json["projects"]})

    def test_glance_lists_makes_uploads_serves_and_deletes_an_image(self):
        calls = self.traced.calls
        for label in ("image list", "image create", "image upload", "image show",
                      "image download", "image list with one", "image delete"):
            self.assertEqual(calls[label].status, EXPECTED_STATUS[label], calls[label].body)
        self.assertEqual(calls["image list"].json["images"], [])
        shown = calls["image show"].json
        self.assertEqual((shown["status"], shown["size"], shown["tomograph_property"]),
                         ("active", len(IMAGE_DATA), IMAGE_PROPERTY), shown)
        self.assertEqual(calls["image download"].body.encode(), IMAGE_DATA)
        self.assertEqual([image["name"] for image in calls["image list with one"].json["images"]],
                         [IMAGE_NAME])

    def test_answers_are_those_without_the_module(self):
        self.assertEqual(list(self.traced.calls), list(self.plain.calls))
        for label, traced in self.traced.calls.items():
            plain = self.plain.calls[label]
            with self.subTest(label):
                self.assertEqual((plain.status, traced.status),
                                 (EXPECTED_STATUS[label],) * 2, (plain.body, traced.body))
                self.assertEqual(traced.shape, plain.shape)
                self.assertEqual(traced.headers.get("content-type"),
                                 plain.headers.get("content-type"))
                # The same headers (no trace id given back: TomographResponseHeader is off).
                self.assertEqual(sorted(traced.headers), sorted(plain.headers))
        self.assertEqual(self.traced.calls["image download"].body,
                         self.plain.calls["image download"].body)

    def test_services_log_no_error_they_do_not_log_without_the_module(self):
        """keystone logs the 404 and 401 of the scenario as errors, with the module as
        without; nothing else (such as SQLite used across threads)."""
        self.assertEqual(self.services.service_log_errors(), self.plain_errors)
        self.assertEqual({logger for logger, _ in self.plain_errors},
                         {"keystone.server.flask.application"}, self.plain_errors)

    # --- spans ------------------------------------------------------------------------

    def test_every_request_has_its_server_span(self):
        for label, call in self.traced.calls.items():
            with self.subTest(label):
                span = self.server_span_of(call)
                tags = span.get("tags") or {}
                self.assertEqual(span["localEndpoint"]["serviceName"], call.service, span)
                self.assertEqual(span["name"], call.span_name, span)
                self.assertEqual(tags.get("http.method"), call.method, span)
                self.assertEqual(tags.get("http.path"), call.path.split("?")[0], span)
                self.assertEqual(tags.get("http.status_code"), str(call.status), span)
                self.assertNotIn("error", tags, span)
                port = (self.services.keystone_port if call.service == "keystone"
                        else self.services.glance_port)
                self.assertEqual(span["localEndpoint"].get("port"), port, span)

    def test_an_images_transfer_is_in_its_spans(self):
        """The bytes of the image uploaded and downloaded, as glance read and sent them,
        and the moments of each transfer (body read, first byte) within the span."""
        upload = self.server_span_of(self.traced.calls["image upload"])
        download = self.server_span_of(self.traced.calls["image download"])
        self.assertEqual(upload["tags"].get("http.request_content_length"),
                         str(len(IMAGE_DATA)), upload)
        self.assertEqual(download["tags"].get("http.response_content_length"),
                         str(len(IMAGE_DATA)), download)
        for span, moment in ((upload, "body read"), (download, "first byte")):
            moments = [note["timestamp"] for note in span.get("annotations", ())
                       if note["value"] == moment]
            self.assertEqual(len(moments), 1, span)
            self.assertGreaterEqual(moments[0], span["timestamp"], span)
            self.assertLessEqual(moments[0], span["timestamp"] + span["duration"], span)

    def test_every_span_reaches_each_exporter(self):
        """The same SERVER spans in the span file, at the Zipkin receiver and over OTLP,
        each valid."""
        last = list(self.traced.calls.values())[-1]
        self.server_span_of(last)
        ids = {call.trace_id for call in self.traced.calls.values()}
        wait_for(lambda: ids <= {span.get("traceId") for span in self.span_file_spans()},
                 "every request's span in the span file", context=self.describe_exports)
        wait_for(lambda: ids <= {record["span"].get("traceId")
                                 for record in self.receiver.records("otlp")},
                 "every request's span over OTLP", context=self.describe_exports)
        zipkin = {span["traceId"]: span for span in self.zipkin_spans()
                  if span["traceId"] in ids}
        in_file = {span["traceId"]: span for span in self.span_file_spans()
                   if span["traceId"] in ids}
        self.assertEqual({trace: span["id"] for trace, span in in_file.items()},
                         {trace: span["id"] for trace, span in zipkin.items()})
        otlp = [record for record in self.receiver.records("otlp")
                if record["span"].get("traceId") in ids]
        for record in otlp:
            self.assertTrue(record["valid"], record)
            self.assertIn(record["service"], ("keystone", "glance"), record)
        for span, errors in self.span_records():
            if span.get("traceId") in ids:
                self.assertIsNone(errors, span)

    def test_nothing_a_user_sends_is_exported(self):
        """No password, no token (X-Auth-Token, X-Subject-Token), no body value in any byte
        of the span file, the receiver's records (Zipkin, OTLP) or statsd's lines."""
        self.wait_for_scenario_exported()
        secrets = {"admin password": cloud.ADMIN_PASSWORD,
                   "glance's service password": cloud.GLANCE_PASSWORD,
                   "a wrong password": WRONG_PASSWORD,
                   "an image name": IMAGE_NAME, "an image property": IMAGE_PROPERTY,
                   "image data": IMAGE_DATA.decode()[:30],
                   "a Fernet token": FERNET_PREFIX,
                   **{f"token {n}": token for n, token in enumerate(self.traced.tokens)}}
        for where, text in self.exported_texts().items():
            self.assertTrue(text, f"nothing in {where}")
            for what, secret in secrets.items():
                with self.subTest(where=where, what=what):
                    self.assertNotIn(secret, text)
                    # Nor any part of a token long enough to be worth stealing.
                    if what.startswith("token"):
                        self.assertNotIn(secret[-24:], text)

    def test_statsd_names_do_not_grow_with_ids(self):
        self.wait_for_scenario_exported()
        before = len(self.statsd.lines())
        token = self.traced.tokens[-1]
        for _ in range(3):
            self.services.request("glance", "GET", f"/v2/images/{uuid.uuid4()}",
                                  {"X-Auth-Token": token})
            self.services.request("keystone", "GET", f"/v3/projects/{uuid.uuid4().hex}",
                                  {"X-Auth-Token": token})
        expected = {"glance.get_v2_images_id": 3, "keystone.get_v3_projects_id": 3}

        def new_timers():
            counts = {}
            for line in self.statsd.lines()[before:]:
                name, _, value = line.partition(":")
                if value.endswith("|ms"):
                    counts[name] = counts.get(name, 0) + 1
            return counts
        wait_for(lambda: all(new_timers().get(name, 0) >= count
                             for name, count in expected.items()),
                 f"statsd timers {expected}", context=lambda: "\n".join(self.statsd.lines()))
        time.sleep(0.5)
        new = new_timers()
        self.assertEqual({name: new[name] for name in expected}, expected, new)
        # Our own probe aside (StatsdDaemon's, at its start), the names are the routes'.
        names = statsd_names(line for line in self.statsd.lines()
                             if not line.startswith("tomograph_harness.probe_"))
        self.assertEqual([name for name in names if ID_LIKE.search(name)], [], sorted(names))
        for line in self.statsd.lines():
            self.assertRegex(line, r"^[A-Za-z0-9_.-]+:[0-9.]+\|(ms|c)$")
        # Each route a timer, a counter for each of its notes (start, stop) and a timer for
        # each moment of its transfer (first byte; body read, for a request with a body):
        # the scenario's, those above, keystonemiddleware's (its discovery of keystone's
        # API at GET /, a service token, each token checked) and httpd's readiness probe.
        routes = {
            "keystone.post_v3_auth_tokens", "keystone.get_v3", "keystone.get_v3_projects",
            "keystone.get_v3_projects_id", "keystone.get_v3_auth_tokens", "keystone.get",
            "glance.get_v2_images", "glance.post_v2_images", "glance.put_v2_images_id_file",
            "glance.get_v2_images_id", "glance.get_v2_images_id_file",
            "glance.delete_v2_images_id", "glance.get_versions", "demo.get_ready_txt"}
        self.assertLessEqual(routes, names, sorted(names))
        self.assertLessEqual(names, {f"{route}{note}" for route in routes
                                     for note in ("", ".start", ".stop", ".first_byte",
                                                  ".body_read")}, sorted(names))

    # --- glance calls keystone ------------------------------------------------------

    def test_glance_checks_a_token_with_keystone_in_a_trace_of_its_own(self):
        """keystonemiddleware, in glance, checks a token it has not seen with keystone
        (GET /v3/auth/tokens): keystone serves that under its own SERVER span, while glance
        waits. Nothing in glance carries the trace to that call without osprofiler
        (test_osprofiler asserts the one trace with osprofiler enabled), so the
        check starts a trace of its own."""
        _, token = self.services.token()
        trace_id, parent_id = random_hex(32), random_hex(16)
        response = self.services.request(
            "glance", "GET", "/v2/images",
            {"X-Auth-Token": token, "traceparent": f"00-{trace_id}-{parent_id}-01"})
        self.assertEqual(response.status, 200, response.body)
        glance = wait_for(lambda: [span for span in self.spans_in_trace(trace_id)
                                   if span.get("kind") == "SERVER"],
                          "glance's span", context=self.describe_exports)[0]
        start, end = glance["timestamp"], glance["timestamp"] + glance["duration"]

        def checks():
            return [span for span in self.zipkin_spans()
                    if span["localEndpoint"]["serviceName"] == "keystone"
                    and span["name"] == "get /v3/auth/tokens"
                    and start <= span["timestamp"] <= end]
        found = wait_for(checks, "keystone's span of glance's token check",
                         context=self.describe_exports)
        self.assertEqual(len(found), 1, found)
        check = found[0]
        self.assertEqual(check["tags"]["http.status_code"], "200", check)
        self.assertLessEqual(check["timestamp"] + check["duration"], end, check)
        self.assertNotEqual(check["traceId"], trace_id, check)
        self.assertNotIn("parentId", check, "a trace of its own")
