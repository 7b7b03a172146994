"""The httpd request life: internal redirects (mod_rewrite, ErrorDocument, DirectoryIndex) and
subrequests (mod_include, mod_dir) stay in the client request's one server span, as notes;
errors and error-log lines mark it; TomographResponseHeader gives the client the trace id."""

import json
import unittest

from harness import TracingTestCase, random_hex

TRACE_HEADER = "X-Trace-Id"
SEPARATOR = "=====\n"
# httpd's LimitInternalRecursion default.
REDIRECT_LIMIT = 10
MAX_NOTES = 16
MAX_NOTE_BYTES = 256

SITE_CONFIG = (
    # Server context: mod_rewrite maps the URL in translate_name, no redirect.
    "RewriteEngine On",
    "RewriteRule ^/renamed/(.*)$ /app/renamed-to/$1 [PT]",
    # Directory context: mod_rewrite redirects internally in fixups.
    '<Directory "@SERVER_ROOT@/htdocs/moved">',
    "    Options +FollowSymLinks",
    "    RewriteEngine On",
    "    RewriteRule ^(.*)$ /app/moved-to/$1",
    "</Directory>",
    # Each redirect comes back here, until httpd gives up with a 500 of its own.
    '<Directory "@SERVER_ROOT@/htdocs/loop">',
    "    Options +FollowSymLinks",
    "    RewriteEngine On",
    "    RewriteRule ^(.*)$ /loop/again-$1",
    "</Directory>",
    "<Location /with-error-page>",
    "    ErrorDocument 404 /app/error-page",
    "</Location>",
    '<Directory "@SERVER_ROOT@/htdocs/indexed">',
    "    DirectoryIndex missing.html index.html",
    "</Directory>",
    '<Directory "@SERVER_ROOT@/htdocs/app-indexed">',
    "    DirectoryIndex /app/index-page",
    "</Directory>",
    '<Directory "@SERVER_ROOT@/htdocs/ssi">',
    "    Options +Includes",
    "    AddType text/html .shtml",
    "    AddOutputFilter INCLUDES .shtml",
    "</Directory>",
    '<LocationMatch "^/(with-header|loop|app/with-header)(/|$)">',
    f"    TomographResponseHeader {TRACE_HEADER}",
    "</LocationMatch>",
)

FILES = {
    "moved/placeholder.txt": "",
    "loop/placeholder.txt": "",
    "indexed/index.html": "<p>the index</p>\n",
    "app-indexed/placeholder.txt": "",
    "with-header/placeholder.txt": "",
    # Into the app (daemon mode), and through mod_proxy back into this server's app.
    "ssi/page.shtml": ('<!--#include virtual="/app/included" -->' + SEPARATOR
                       + '<!--#include virtual="/proxy/included-hop" -->'),
}


def note_values(span):
    return [note["value"] for note in span.get("annotations", [])]


class RequestLifeTest(TracingTestCase):
    ZIPKIN = True
    SITE_CONFIG = SITE_CONFIG
    FILES = FILES

    def assertNotes(self, span, expected):
        """The expected notes are on the span, in this order, between start and stop."""
        notes = note_values(span)
        self.assertEqual((notes[0], notes[-1]), ("start", "stop"), span)
        found = [note for note in notes if note in expected]
        self.assertEqual(found, list(expected), f"notes of {span['name']}: {notes}")

    def assertOnlySpanOfTrace(self, span):
        """Nothing else (no second root) was recorded in span's trace."""
        self.assertEqual(self.wait_for_trace(span["traceId"], 1), [span])

    # --- internal redirects --------------------------------------------------------

    def test_rewrite_in_server_context_keeps_the_one_span(self):
        trace_id, caller = random_hex(32), random_hex(16)
        response, span = self.traced("/renamed/x", {"traceparent": f"00-{trace_id}-{caller}-01"})
        self.assertContinues(span, trace_id, caller)
        self.assertAppSeesSpan(response.json(), span)
        self.assertEqual(self.spans_of("/app/renamed-to/x"), [])
        self.assertOnlySpanOfTrace(span)

    def test_rewrite_in_a_directory_is_a_note_on_the_one_span(self):
        trace_id, caller = random_hex(32), random_hex(16)
        response, span = self.traced("/moved/x", {"traceparent": f"00-{trace_id}-{caller}-01"})
        self.assertContinues(span, trace_id, caller)
        self.assertNotes(span, ["internal redirect to /app/moved-to/x"])
        # The app behind the redirect is served from the same span.
        self.assertAppSeesSpan(response.json(), span)
        self.assertOnlySpanOfTrace(span)

    def test_error_document_is_a_note_and_its_page_sees_the_trace(self):
        response, span = self.traced("/with-error-page/missing.txt", expect_status=404)
        self.assertEqual(span["tags"].get("http.status_code"), "404")
        self.assertNotIn("error", span["tags"], span)
        self.assertNotes(span, ["internal redirect to /app/error-page"])
        self.assertAppSeesSpan(response.json(), span)
        self.assertOnlySpanOfTrace(span)

    def test_directory_index_is_an_internal_redirect_note(self):
        # mod_dir's lookups are not run, so they are no notes; what it serves is.
        response, span = self.traced("/indexed/")
        self.assertEqual(response.body, FILES["indexed/index.html"])
        self.assertNotes(span, ["internal redirect to /indexed/index.html"])
        self.assertOnlySpanOfTrace(span)

    def test_directory_index_into_the_app_is_served_from_the_one_span(self):
        response, span = self.traced("/app-indexed/")
        self.assertNotes(span, ["internal redirect to /app/index-page"])
        self.assertAppSeesSpan(response.json(), span)
        self.assertOnlySpanOfTrace(span)

    def test_redirect_loop_is_one_span_with_an_error_and_its_log_line(self):
        _, span = self.traced("/loop/x", expect_status=500)
        self.assertEqual(span["tags"].get("http.status_code"), "500")
        self.assertIn("error", span["tags"], span)
        path, redirects = "/loop/x", []
        for _ in range(REDIRECT_LIMIT):
            path = path.replace("/loop/", "/loop/again-", 1)
            redirects.append(f"internal redirect to {path}")
        self.assertNotes(span, redirects)
        errors = [note for note in note_values(span) if note.startswith("error: ")]
        self.assertEqual(len(errors), 1, note_values(span))
        self.assertIn("AH00124", errors[0])
        self.assertLessEqual(len(errors[0].encode()), MAX_NOTE_BYTES)
        self.assertOnlySpanOfTrace(span)

    # --- subrequests ---------------------------------------------------------------

    def test_included_subrequests_are_notes_and_see_the_trace(self):
        trace_id, caller = random_hex(32), random_hex(16)
        response, page = self.traced("/ssi/page.shtml",
                                     {"traceparent": f"00-{trace_id}-{caller}-01"})
        self.assertContinues(page, trace_id, caller)
        self.assertNotes(page, ["subrequest /app/included", "subrequest /proxy/included-hop"])
        included, proxied = (json.loads(part) for part in response.body.split(SEPARATOR))
        # The app in the subrequest works for the page's span.
        self.assertAppSeesSpan(included, page)
        # The proxied subrequest: a CLIENT span under the page, the backend's span under it.
        spans = self.wait_for_trace(trace_id, 3)
        client = next(s for s in spans if s["kind"] == "CLIENT")
        backend = next(s for s in spans if s["kind"] == "SERVER" and s["id"] != page["id"])
        self.assertEqual(client["name"], "get /app/included-hop")
        self.assertEqual(client["parentId"], page["id"], spans)
        self.assertEqual(backend["name"], "get /app/included-hop")
        self.assertEqual(backend["parentId"], client["id"], spans)
        self.assertAppSeesSpan(proxied, backend)

    # --- errors --------------------------------------------------------------------

    def test_error_log_lines_become_notes(self):
        _, span = self.traced("/embedded/log-error/2?visible=marker")
        errors = [note for note in note_values(span) if note.startswith("error: ")]
        self.assertEqual(len(errors), 2, note_values(span))
        for number, note in enumerate(errors):
            self.assertRegex(note, rf"^error: .*app error {number}: QUERY_STRING=visible=marker")
        self.assertNotIn("error", span["tags"], "a 200 with log lines is no error")

    def test_error_log_notes_are_bounded_in_number_and_length(self):
        pad = "p" * 600
        _, span = self.traced(f"/embedded/log-error/40?pad={pad}")
        notes = note_values(span)
        self.assertLessEqual(len(notes), MAX_NOTES, notes)
        self.assertEqual((notes[0], notes[-1]), ("start", "stop"), notes)
        errors = [note for note in notes if note.startswith("error: ")]
        self.assertGreaterEqual(len(errors), 1, notes)
        for note in notes:
            self.assertLessEqual(len(note.encode()), MAX_NOTE_BYTES, note)
        self.assertTrue(errors[0].startswith("error: ") and "app error 0:" in errors[0], errors)

    def test_server_error_from_the_app_is_an_error(self):
        _, span = self.traced("/app/status/503", expect_status=503)
        self.assertEqual(span["tags"].get("error"), "503", span)

    # --- the trace id for the client -----------------------------------------------

    def assertTraceHeader(self, path, expect_status):
        response, span = self.traced(path, expect_status=expect_status)
        values = [value for name, value in response.headers if name.lower() == TRACE_HEADER.lower()]
        self.assertEqual(values, [span["traceId"]], response.headers)

    def test_response_header_gives_the_trace_id(self):
        self.assertTraceHeader("/app/with-header/x", 200)

    def test_response_header_on_a_404_error_page(self):
        self.assertTraceHeader("/with-header/missing.txt", 404)

    def test_response_header_on_a_500_from_the_app(self):
        self.assertTraceHeader("/app/with-header/status/500", 500)

    def test_response_header_on_a_500_error_page(self):
        self.assertTraceHeader("/loop/with-header", 500)

    def test_response_header_is_off_by_default(self):
        for path, status in (("/app/no-header", 200), ("/missing-no-header.txt", 404)):
            with self.subTest(path):
                response, span = self.traced(path, expect_status=status)
                carrying = [(name, value) for name, value in response.headers
                            if span["traceId"] in value or name.lower() == TRACE_HEADER.lower()]
                self.assertEqual(carrying, [], response.headers)


if __name__ == "__main__":
    unittest.main()
