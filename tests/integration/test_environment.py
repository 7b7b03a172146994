"""The trace's ids in the request's environment (TOMOGRAPH_TRACE_ID, TOMOGRAPH_SPAN_ID): an
app always gets them; logs and other directives get them on every request when the
configuration names them, whatever the case, and only then (no static file pays for them)."""

import json
import re
import unittest

from harness import TracingTestCase, load_modules, wait_for


def header_values(response, name):
    return [value for key, value in response.headers if key.lower() == name.lower()]


LOAD_HEADERS = load_modules("headers")


class AppWithoutNamingTest(TracingTestCase):
    """Nothing in the configuration names the variables: the app still gets them, also in a
    subrequest of a page that the static file handler serves."""
    ZIPKIN = True
    LOG_IDS = False
    SITE_CONFIG = ('<Directory "@SERVER_ROOT@/htdocs/ssi">',
                   "    Options +Includes",
                   "    AddType text/html .shtml",
                   "    AddOutputFilter INCLUDES .shtml",
                   "</Directory>")
    FILES = {"ssi/page.shtml": '<!--#include virtual="/app/included" -->'}

    def test_the_app_gets_the_ids_of_its_span(self):
        response, span = self.traced("/app/unnamed")
        env = response.json()
        self.assertEqual((env.get("TOMOGRAPH_TRACE_ID"), env.get("TOMOGRAPH_SPAN_ID")),
                         (span["traceId"], span["id"]), env)

    def test_an_app_included_by_a_static_page_gets_the_ids_of_the_page(self):
        response, page = self.traced("/ssi/page.shtml")
        env = json.loads(response.body)
        self.assertEqual((env.get("TOMOGRAPH_TRACE_ID"), env.get("TOMOGRAPH_SPAN_ID")),
                         (page["traceId"], page["id"]), env)

    def test_a_static_file_is_traced_all_the_same(self):
        response, span = self.traced("/static.txt")
        self.assertEqual(response.body, self.httpd.STATIC_TEXT)
        self.assertEqual(span["tags"]["http.status_code"], "200", span)


class NamedByDirectivesTest(TracingTestCase):
    """A Header and an ErrorLogFormat name the variables (the access log does not): a static
    file's response and its error-log lines carry its span's ids."""
    ZIPKIN = True
    LOG_IDS = False
    SITE_CONFIG = LOAD_HEADERS + (
        # Any case: the environment's table ignores it.
        'Header always set X-Seen-Trace "%{tomograph_trace_id}e"',
        'ErrorLogFormat "[%l] [%m] span=%{TOMOGRAPH_SPAN_ID}e %M"',
        "LogLevel warn core:info tomograph:info",
    )

    def test_a_header_directive_reads_the_trace_id_of_a_static_file(self):
        response, span = self.traced("/static.txt")
        self.assertEqual(header_values(response, "X-Seen-Trace"), [span["traceId"]])

    def test_the_error_log_line_of_a_request_names_its_span(self):
        response, span = self.traced("/no-such-file.txt", expect_status=404)
        self.assertEqual(header_values(response, "X-Seen-Trace"), [span["traceId"]])
        line = f"span={span['id']} "
        wait_for(lambda: line in self.httpd.error_log.read_text(), f"{line!r} in the error log",
                 context=self.httpd.describe)
        logged = [entry for entry in self.httpd.error_log.read_text().splitlines() if line in entry]
        self.assertTrue(any(re.search(r"\[core\].*no-such-file", entry) for entry in logged),
                        logged)


if __name__ == "__main__":
    unittest.main()
