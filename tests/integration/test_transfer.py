"""What a span tells of the transfer: a note when the request's body has been read in full
("body read") and one when the answer's first byte leaves ("first byte": the app's time,
apart from sending the answer), and the bytes of both bodies as tags
(http.request_content_length, http.response_content_length), whatever the transfer
encoding; statsd times the two moments from the span's start."""

import http.client
import json
import os
import unittest

from harness import Httpd, TracingTestCase, wait_for

UPLOAD = os.urandom(150_000)
SLOW_MS = 300


def note_offsets(span):
    """{note: its time from the span's start, in µs} of the notes between start and stop."""
    return {note["value"]: note["timestamp"] - span["timestamp"]
            for note in span.get("annotations", [])}


class TransferTest(TracingTestCase):
    ZIPKIN = True
    STATSD = True
    SITE_CONFIG = ("<Location /app/chunked>",
                   "    WSGIChunkedRequest On",
                   "</Location>",
                   "<Location /app/unrecorded>",
                   "    TomographSampleRate 0",
                   "</Location>")

    def assertMomentsInOrder(self, span, *notes):
        offsets = note_offsets(span)
        moments = [offsets[note] for note in notes]
        self.assertEqual(moments, sorted(moments), span)
        self.assertTrue(all(0 <= moment <= span["duration"] for moment in moments), span)

    def test_a_static_file_tells_its_length_and_first_byte(self):
        _, span = self.traced("/static.txt")
        self.assertEqual(span["tags"]["http.response_content_length"],
                         str(len(Httpd.STATIC_TEXT)))
        self.assertIn("first byte", note_offsets(span))
        self.assertNotIn("body read", note_offsets(span))
        self.assertNotIn("http.request_content_length", span["tags"])

    def test_an_upload_tells_when_its_body_was_read_and_its_length(self):
        response = self.request("/app/upload", method="POST", body=UPLOAD)
        self.assertEqual(response.json()["body_bytes"], len(UPLOAD))
        span = self.server_span("/app/upload", "POST")
        self.assertEqual(span["tags"]["http.request_content_length"], str(len(UPLOAD)))
        self.assertEqual(span["tags"]["http.response_content_length"],
                         str(len(response.body.encode())))
        self.assertMomentsInOrder(span, "body read", "first byte")

    def test_a_chunked_upload_counts_its_body_not_its_chunks(self):
        connection = http.client.HTTPConnection("127.0.0.1", self.httpd.port, timeout=30)
        try:
            connection.request("POST", "/app/chunked/upload",
                               body=iter([UPLOAD[:1000], UPLOAD[1000:]]), encode_chunked=True)
            response = connection.getresponse()
            answer = json.loads(response.read())
        finally:
            connection.close()
        self.assertEqual((response.status, answer["body_bytes"]), (200, len(UPLOAD)))
        span = self.server_span("/app/chunked/upload", "POST")
        self.assertEqual(span["tags"]["http.request_content_length"], str(len(UPLOAD)))
        self.assertMomentsInOrder(span, "body read", "first byte")

    def test_a_body_nobody_reads_is_counted_as_httpd_discards_it(self):
        self.request("/static.txt", method="POST", body=UPLOAD)
        span = self.server_span("/static.txt", "POST")
        self.assertEqual(span["tags"]["http.request_content_length"], str(len(UPLOAD)))
        self.assertIn("body read", note_offsets(span))

    def test_first_byte_is_the_apps_time_apart_from_the_transfer(self):
        """An app that thinks before answering: its first byte leaves after that time. One
        that streams its answer: its first byte leaves at once, long before the span ends."""
        _, slow = self.traced(f"/app/slow/{SLOW_MS}")
        self.assertGreaterEqual(note_offsets(slow)["first byte"], SLOW_MS * 1000)
        _, streamed = self.traced("/app/stream/3")
        first_byte = note_offsets(streamed)["first byte"]
        self.assertLess(first_byte, SLOW_MS * 1000, streamed)
        # Three pauses of the app's (STREAM_PAUSE, 100 ms each) follow the first byte.
        self.assertGreaterEqual(streamed["duration"] - first_byte, 250_000, streamed)
        self.assertEqual(streamed["tags"]["http.response_content_length"],
                         str(len(self.request("/app/stream/3").body.encode())))

    def test_first_byte_on_a_connection_whose_first_requests_were_not_recorded(self):
        """A connection gets the first byte's filter with its first recorded request (one
        that carries none pays for no filter): requests before it are not recorded, and
        that request and those after it on the same connection note their first byte."""
        connection = http.client.HTTPConnection("127.0.0.1", self.httpd.port, timeout=30)
        try:
            for path in ("/app/unrecorded/1", "/app/unrecorded/2", f"/app/first/slow/{SLOW_MS}",
                         "/app/second", f"/app/unrecorded/3/slow/{SLOW_MS}", "/app/third"):
                connection.request("GET", path)
                response = connection.getresponse()
                response.read()
                self.assertEqual(response.status, 200, path)
        finally:
            connection.close()
        first = self.server_span(f"/app/first/slow/{SLOW_MS}")
        self.assertGreaterEqual(note_offsets(first)["first byte"], SLOW_MS * 1000, first)
        for path in ("/app/second", "/app/third"):
            self.assertIn("first byte", note_offsets(self.server_span(path)), path)
        for path in ("/app/unrecorded/1", "/app/unrecorded/2", f"/app/unrecorded/3/slow/{SLOW_MS}"):
            self.assertEqual(self.spans_of(path), [], path)

    def test_statsd_times_the_first_byte(self):
        self.traced(f"/app/timed/slow/{SLOW_MS}")
        line = wait_for(lambda: [line for line in self.statsd.lines()
                                 if ".first_byte:" in line and "timed" in line],
                        "the statsd timer of the first byte")[0]
        milliseconds = float(line.split(":", 1)[1].split("|")[0])
        self.assertTrue(line.endswith("|ms"), line)
        self.assertGreaterEqual(milliseconds, SLOW_MS, line)


if __name__ == "__main__":
    unittest.main()
