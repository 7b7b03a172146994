"""mod_tomograph and Debian's real osprofiler (python3-osprofiler): the X-Trace-Info headers
osprofiler makes are joined by the module, and the ones the module hands on pass osprofiler's
own checks, as an OpenStack service behind httpd would run them. X-Trace-Info turns an
OpenStack service's osprofiler on, so the module hands it on only for deep tracing: when the
caller sent a valid one, and for the share TomographDeepTraceRate draws."""

import unittest
import uuid

import webob
from osprofiler import _utils as osprofiler_utils
from osprofiler import profiler, web

from harness import TracingTestCase, random_hex

HMAC_KEYS = ("first-key", "second-key")


def osprofiler_headers_made(key, base_id, parent_id=None):
    """What an osprofiler client sends: profiler.init(), then web.get_trace_id_headers()."""
    profiler.clean()
    try:
        profiler.init(key, base_id=base_id, parent_id=parent_id)
        return web.get_trace_id_headers()
    finally:
        profiler.clean()


def osprofiler_ids_of(span):
    """(base_id, parent_id) of the X-Trace-Info that the module hands on for span, as
    src/tg_osprofiler.h documents: the trace id is base_id; the span id followed by the
    trace id's low 64 bits is parent_id."""
    trace_id = span["traceId"]
    return str(uuid.UUID(hex=trace_id)), str(uuid.UUID(hex=span["id"] + trace_id[16:]))


# Trailing slashes: each location holds only the paths under it.
DEEP_LOCATIONS = (
    "<Location /app/deep/>",
    "    TomographDeepTraceRate 1",
    "</Location>",
    "<Location /app/deep-quiet/>",
    "    TomographDeepTraceRate 1",
    "    TomographSampleRate 0",
    "</Location>",
    "<Location /app/deep-half/>",
    "    TomographDeepTraceRate 0.5",
    "</Location>",
)


class OsprofilerCompatTest(TracingTestCase):
    ZIPKIN = True
    DIRECTIVES = tuple(f"TomographHMACKey {key}" for key in HMAC_KEYS)
    SITE_CONFIG = DEEP_LOCATIONS

    def handed_on(self, path, headers=None):
        """(server span, X-Trace-Info, X-Trace-HMAC) of a request, as the app behind saw them."""
        response, span = self.traced(path, headers)
        env = response.json()
        return span, env.get("HTTP_X_TRACE_INFO"), env.get("HTTP_X_TRACE_HMAC")

    # --- what osprofiler sends us ------------------------------------------------------

    def test_headers_made_by_osprofiler_are_joined(self):
        for key in HMAC_KEYS:
            with self.subTest(key=key):
                base_id, parent_id = uuid.uuid4(), uuid.uuid4()
                headers = osprofiler_headers_made(key, str(base_id), str(parent_id))
                self.assertEqual(set(headers), {"X-Trace-Info", "X-Trace-HMAC"}, headers)
                _, span = self.traced(f"/app/osprofiler-made-{key}", headers)
                self.assertContinues(span, base_id.hex, parent_id.hex[:16])

    def test_osprofiler_root_is_joined(self):
        # Without a parent_id, osprofiler's profiler takes base_id for it.
        base_id = uuid.uuid4()
        headers = osprofiler_headers_made(HMAC_KEYS[0], str(base_id))
        _, span = self.traced("/app/osprofiler-root", headers)
        self.assertContinues(span, base_id.hex, base_id.hex[:16])

    def test_osprofiler_headers_signed_with_another_key_start_a_new_trace(self):
        base_id = uuid.uuid4()
        headers = osprofiler_headers_made("not-a-configured-key", str(base_id), str(uuid.uuid4()))
        _, span = self.traced("/app/osprofiler-other-key", headers)
        self.assertNewTrace(span, base_id.hex)

    # --- what we send osprofiler -------------------------------------------------------

    def assertSignedForOsprofiler(self, span, info, hmac):
        """info and hmac are the X-Trace-Info pair of span, signed so that osprofiler takes
        it with the server's keys, and only with the first."""
        self.assertIsNotNone(info, "no X-Trace-Info handed on")
        self.assertIsNotNone(hmac, "no X-Trace-HMAC handed on")
        contents = osprofiler_utils.signed_unpack(info, hmac, list(HMAC_KEYS))
        self.assertIsNotNone(contents, f"osprofiler refuses {info!r} signed {hmac!r}")
        base_id, parent_id = osprofiler_ids_of(span)
        self.assertEqual(contents, {"base_id": base_id, "parent_id": parent_id,
                                    "hmac_key": HMAC_KEYS[0]})
        self.assertIsNone(osprofiler_utils.signed_unpack(info, hmac, [HMAC_KEYS[1]]))

    def test_deep_traced_requests_hand_on_a_signed_x_trace_info(self):
        incoming = {
            "new trace": None,
            "traceparent": {"traceparent": f"00-{random_hex(32)}-{random_hex(16)}-01"},
        }
        for label, headers in incoming.items():
            with self.subTest(label):
                span, info, hmac = self.handed_on(f"/app/deep/{label.replace(' ', '-')}",
                                                  headers)
                self.assertSignedForOsprofiler(span, info, hmac)

    def test_a_callers_valid_x_trace_info_goes_on_signed(self):
        """osprofiler's own rule: a service profiles a request that came with a valid signed
        X-Trace-Info, so the module hands its own on, whatever the deep-trace share (0 here),
        even when the trace continues from another header."""
        incoming = {
            "osprofiler": osprofiler_headers_made(HMAC_KEYS[1], str(uuid.uuid4()),
                                                  str(uuid.uuid4())),
            "beside traceparent": {
                "traceparent": f"00-{random_hex(32)}-{random_hex(16)}-01",
                **osprofiler_headers_made(HMAC_KEYS[0], str(uuid.uuid4()), str(uuid.uuid4()))},
        }
        for label, headers in incoming.items():
            with self.subTest(label):
                span, info, hmac = self.handed_on(f"/app/caller-{label.replace(' ', '-')}",
                                                  headers)
                self.assertSignedForOsprofiler(span, info, hmac)

    def test_no_x_trace_info_unless_deep_traced(self):
        """Loading the module does not turn a service's osprofiler on: with no deep-trace
        share, a request whose caller sent no valid X-Trace-Info gets none, while the other
        formats still carry the trace; one the caller signed with a key the server does not
        have does not slip through."""
        incoming = {
            "new trace": None,
            "traceparent": {"traceparent": f"00-{random_hex(32)}-{random_hex(16)}-01"},
            "b3": {"b3": f"{random_hex(32)}-{random_hex(16)}-1"},
            "other key": osprofiler_headers_made("not-a-configured-key", str(uuid.uuid4()),
                                                 str(uuid.uuid4())),
        }
        for label, headers in incoming.items():
            with self.subTest(label):
                response, span = self.traced(f"/app/shallow-{label.replace(' ', '-')}", headers)
                env = response.json()
                self.assertNotIn("HTTP_X_TRACE_INFO", env)
                self.assertNotIn("HTTP_X_TRACE_HMAC", env)
                # Sampled, and for a new trace, a random trace id (W3C's flag 02).
                flags = "01" if span.get("parentId") else "03"
                self.assertEqual(env.get("HTTP_TRACEPARENT"),
                                 f"00-{span['traceId']}-{span['id']}-{flags}", env)

    def test_a_deep_traced_request_is_recorded_whatever_the_sample_rate(self):
        """A deep trace needs its root: a request drawn for deep tracing is recorded even
        where TomographSampleRate records no new trace."""
        span, info, hmac = self.handed_on("/app/deep-quiet/drawn")
        self.assertSignedForOsprofiler(span, info, hmac)

    def test_deep_trace_rate_draws_its_share(self):
        """TomographDeepTraceRate 0.5: about half of the requests get an X-Trace-Info, every
        request its span."""
        count = 200
        deep = sum("HTTP_X_TRACE_INFO" in self.request(f"/app/deep-half/{n}").json()
                   for n in range(count))
        # Binomial(200, 0.5): outside 60..140 once in about 10^8 runs.
        self.assertTrue(60 <= deep <= 140, f"{deep} of {count} requests deep-traced")

    def test_osprofiler_middleware_profiles_under_our_trace(self):
        """The app behind, were it an OpenStack service with osprofiler's WSGI middleware,
        profiles in our trace, and the headers it sends on its own calls continue it."""
        span, info, hmac = self.handed_on("/app/deep/behind-osprofiler-middleware")
        seen = {}

        def service(environ, start_response):
            tracer = profiler.get()
            if tracer:
                seen["base_id"], seen["parent_id"] = tracer.get_base_id(), tracer.get_parent_id()
                seen["id"] = tracer.get_id()
                seen["headers"] = web.get_trace_id_headers()
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok"]

        profiler.clean()
        middleware = web.WsgiMiddleware(service, hmac_keys=",".join(HMAC_KEYS), enabled=True)
        request = webob.Request.blank("/v2.1/servers",
                                      headers={"X-Trace-Info": info, "X-Trace-HMAC": hmac})
        self.assertEqual(request.get_response(middleware).status_int, 200)
        self.assertIn("base_id", seen, "osprofiler's middleware did not profile the request")
        self.assertEqual((seen["base_id"], seen["parent_id"]), osprofiler_ids_of(span), seen)

        # The service calls another one behind httpd: one trace still.
        _, next_span = self.traced("/app/called-by-the-service", seen["headers"])
        self.assertContinues(next_span, span["traceId"], uuid.UUID(seen["id"]).hex[:16])

    def test_unsampled_request_hands_on_no_x_trace_info(self):
        """osprofiler has no sampled flag: an X-Trace-Info at all means "profile this". A
        caller's own X-Trace-Info does not slip through either."""
        trace_id = random_hex(32)
        headers = {"traceparent": f"00-{trace_id}-{random_hex(16)}-00",
                   **osprofiler_headers_made(HMAC_KEYS[0], str(uuid.uuid4()), str(uuid.uuid4()))}
        env = self.request("/app/unsampled-osprofiler", headers).json()
        self.assertEqual(env.get("TOMOGRAPH_TRACE_ID"), trace_id, env)
        self.assertRegex(env.get("HTTP_TRACEPARENT", ""), rf"^00-{trace_id}-[0-9a-f]{{16}}-00$")
        self.assertNotIn("HTTP_X_TRACE_INFO", env)
        self.assertNotIn("HTTP_X_TRACE_HMAC", env)


if __name__ == "__main__":
    unittest.main()
