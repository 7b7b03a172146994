"""Which incoming context a request continues, and what it hands on: the order of formats,
tracestate, TomographTrustIncoming, TomographSampleRate, TomographSampleLimit, debug and
bare sampling decisions, TomographB3Join; and TomographExtract / TomographPropagate."""

import time
import unittest
import uuid

from harness import (HangupBackend, TracingTestCase, as_environ, b3_value, osprofiler_headers,
                     random_hex)

HMAC_KEY = "propagation-key"

# Trailing slashes: each location holds only the paths under it.
LOCATIONS = (
    "<Location /app/untrusted/>",
    "    TomographTrustIncoming Off",
    "</Location>",
    "<Location /app/untrusted-quiet/>",
    "    TomographTrustIncoming Off",
    "    TomographSampleRate 0",
    "</Location>",
    "<Location /app/quiet/>",
    "    TomographSampleRate 0",
    "</Location>",
    "<Location /app/half/>",
    "    TomographSampleRate 0.5",
    "</Location>",
    "<Location /app/joined/>",
    "    TomographB3Join On",
    "</Location>",
)


def traceparent(trace_id, span_id, flags="01"):
    return {"traceparent": f"00-{trace_id}-{span_id}-{flags}"}


def x_b3(trace_id, span_id, parent_id=None, sampled="1"):
    headers = {"X-B3-TraceId": trace_id, "X-B3-SpanId": span_id}
    if parent_id:
        headers["X-B3-ParentSpanId"] = parent_id
    if sampled is not None:
        headers["X-B3-Sampled"] = sampled
    return headers


def osprofiler(trace_uuid, span_uuid):
    return osprofiler_headers(HMAC_KEY, str(trace_uuid), str(span_uuid))


# X-Trace-Info goes on only for deep tracing (test_osprofiler_compat): the tests of the
# formats check it in every request, so every request is deep-traced there.
DEEP_TRACE_ALL = "TomographDeepTraceRate 1"


class PropagationTest(TracingTestCase):
    ZIPKIN = True
    DIRECTIVES = (f"TomographHMACKey {HMAC_KEY}",)
    SITE_CONFIG = LOCATIONS

    def assertUnsampled(self, path, env, trace_id, flags, parent_id=None):
        """The app got a context with sampled=0, and nothing was recorded."""
        self.assertEqual(env["TOMOGRAPH_TRACE_ID"], trace_id, env)
        self.assertAppSeesContext(env, trace_id, env["TOMOGRAPH_SPAN_ID"], flags, parent_id)
        self.assertNoSpanOf(path)
        self.assertEqual(self.spans_in_trace(trace_id), [])

    # --- several formats at once ---------------------------------------------------

    def test_default_extract_order(self):
        first = (random_hex(32), random_hex(16))
        second = (random_hex(32), random_hex(16))
        uuids = (uuid.uuid4(), uuid.uuid4())
        cases = {
            "traceparent-over-b3": ({**traceparent(*first), "b3": b3_value(*second, "1")}, first),
            "b3-over-x-b3": ({"b3": b3_value(*first, "1"), **x_b3(*second)}, first),
            "x-b3-over-x-trace-info": ({**x_b3(*first), **osprofiler(*uuids)}, first),
            "traceparent-over-all": ({**traceparent(*first), "b3": b3_value(*second, "1"),
                                      **osprofiler(*uuids)}, first),
            "invalid-traceparent-then-b3": ({"traceparent": f"00-{first[0]}-{'0' * 16}-01",
                                             "b3": b3_value(*second, "1")}, second),
            "b3-then-signed-x-trace-info": ({"b3": "not-b3", **osprofiler(*uuids)},
                                            (uuids[0].hex, uuids[1].hex[:16])),
        }
        for label, (headers, (trace_id, caller)) in cases.items():
            with self.subTest(label):
                response, span = self.traced(f"/app/order-{label}", headers)
                self.assertContinues(span, trace_id, caller)
                self.assertAppSeesSpan(response.json(), span)

    def test_formats_that_agree_make_one_parent(self):
        trace_id, caller = random_hex(32), random_hex(16)
        headers = {**traceparent(trace_id, caller), "b3": b3_value(trace_id, caller, "1"),
                   **x_b3(trace_id, caller)}
        _, span = self.traced("/app/agreeing", headers)
        self.assertContinues(span, trace_id, caller)
        self.assertEqual(self.wait_for_trace(trace_id, 1), [span])

    # --- beside what OpenStack's clients send ----------------------------------------

    def test_openstack_client_headers_beside_a_context(self):
        """An OpenStack client sends X-Auth-Token and X-OpenStack-Request-ID with every
        request: with a traceparent the request continues it, without one it starts a trace,
        and the app sees one value of each trace header, ours."""
        client = {"X-Auth-Token": "gAAAAAB" + random_hex(180),
                  "X-OpenStack-Request-ID": f"req-{uuid.uuid4()}"}
        trace_id, caller = random_hex(32), random_hex(16)
        response, span = self.traced("/app/openstack-continued",
                                     {**client, **traceparent(trace_id, caller)})
        self.assertContinues(span, trace_id, caller)
        self.assertAppSeesSpan(response.json(), span)
        response, span = self.traced("/app/openstack-new", client)
        self.assertNotIn("parentId", span)
        self.assertAppSeesSpan(response.json(), span)

    # --- tracestate ----------------------------------------------------------------

    def test_tracestate_goes_on_with_a_valid_traceparent(self):
        trace_id, caller = random_hex(32), random_hex(16)
        state = "vendor=opaque-1,other@tenant=x"
        response, _ = self.traced("/app/tracestate-kept",
                                  {**traceparent(trace_id, caller), "tracestate": state})
        self.assertEqual(response.json().get("HTTP_TRACESTATE"), state)

    def test_tracestate_without_a_valid_traceparent_is_dropped(self):
        trace_id, caller = random_hex(32), random_hex(16)
        cases = {
            "invalid-traceparent": {"traceparent": f"ff-{trace_id}-{caller}-01"},
            "b3-only": {"b3": b3_value(trace_id, caller, "1")},
            "no-context": {},
        }
        for label, headers in cases.items():
            with self.subTest(label):
                response, _ = self.traced(f"/app/tracestate-{label}",
                                          {**headers, "tracestate": "vendor=stale"})
                self.assertNotIn("HTTP_TRACESTATE", response.json())

    def test_tracestate_headers_are_joined(self):
        trace_id, caller = random_hex(32), random_hex(16)
        headers = [("traceparent", f"00-{trace_id}-{caller}-01"),
                   ("tracestate", "first=1"), ("tracestate", "second=2,third=3")]
        response, _ = self.traced("/app/tracestate-joined", headers)
        sent = response.json().get("HTTP_TRACESTATE", "")
        self.assertEqual([entry.strip() for entry in sent.split(",")],
                         ["first=1", "second=2", "third=3"], sent)

    def test_tracestate_keeps_the_first_entry_of_a_repeated_key(self):
        """A later entry with a key already seen goes, not the list; '@' may
        stand anywhere in a key but first."""
        trace_id, caller = random_hex(32), random_hex(16)
        headers = [("traceparent", f"00-{trace_id}-{caller}-01"),
                   ("tracestate", "congo=first,rojo@@x@=1"), ("tracestate", "congo=second,zz=2")]
        response, _ = self.traced("/app/tracestate-repeated-key", headers)
        self.assertEqual(response.json().get("HTTP_TRACESTATE"), "congo=first,rojo@@x@=1,zz=2")

    def test_tracestate_keeps_at_most_32_whole_entries(self):
        trace_id, caller = random_hex(32), random_hex(16)
        entries = [f"vendor{n}=value{n}" for n in range(40)]
        response, _ = self.traced("/app/tracestate-long",
                                  {**traceparent(trace_id, caller), "tracestate": ",".join(entries)})
        sent = response.json().get("HTTP_TRACESTATE")
        kept = sent.split(",") if sent else []
        self.assertLessEqual(len(kept), 32, sent)
        self.assertEqual(kept, entries[:len(kept)], "whole entries, from the first on")

    # --- trust -----------------------------------------------------------------------

    def test_untrusted_context_starts_a_new_trace_and_is_kept_as_tags(self):
        trace_id, caller = random_hex(32), random_hex(16)
        uuids = (uuid.UUID(hex=trace_id), uuid.UUID(hex=caller + random_hex(16)))
        cases = {
            "traceparent": traceparent(trace_id, caller),
            "b3": {"b3": b3_value(trace_id, caller, "1")},
            "x-b3": x_b3(trace_id, caller),
            "x-trace-info": osprofiler(*uuids),
        }
        for label, headers in cases.items():
            with self.subTest(label):
                response, span = self.traced(f"/app/untrusted/{label}", headers)
                self.assertNewTrace(span, trace_id)
                self.assertEqual(span["tags"].get("tomograph.untrusted.trace_id"), trace_id, span)
                self.assertEqual(span["tags"].get("tomograph.untrusted.span_id"), caller, span)
                self.assertAppSeesSpan(response.json(), span)

    def test_untrusted_sampling_decision_is_ignored(self):
        trace_id, caller = random_hex(32), random_hex(16)
        # Not sampled by the caller, recorded all the same (the default rate is 1).
        _, span = self.traced("/app/untrusted/not-sampled", traceparent(trace_id, caller, "00"))
        self.assertNewTrace(span, trace_id)
        # Debug from the caller, not recorded where the rate is 0.
        path = "/app/untrusted-quiet/debug"
        response = self.request(path, {"b3": b3_value(trace_id, caller, "d")})
        env = response.json()
        self.assertNotEqual(env["TOMOGRAPH_TRACE_ID"], trace_id)
        self.assertUnsampled(path, env, env["TOMOGRAPH_TRACE_ID"], "02")

    def test_debug_forces_sampling_only_from_trusted_callers(self):
        """Where the rate is 0, a caller's debug flag records the span only under
        TomographTrustIncoming On (the default), never under Off."""
        trace_id, caller = random_hex(32), random_hex(16)
        cases = {
            "b3-d": {"b3": b3_value(trace_id, caller, "d")},
            "x-b3-flags": {**x_b3(trace_id, caller, sampled=None), "X-B3-Flags": "1"},
        }
        for label, headers in cases.items():
            with self.subTest(label):
                untrusted = f"/app/untrusted-quiet/debug-flag-{label}"
                env = self.request(untrusted, headers).json()
                self.assertNotEqual(env["TOMOGRAPH_TRACE_ID"], trace_id)
                self.assertUnsampled(untrusted, env, env["TOMOGRAPH_TRACE_ID"], "02")
                _, span = self.traced(f"/app/quiet/debug-flag-{label}", headers)
                self.assertContinues(span, trace_id, caller)
                self.assertIs(span.get("debug"), True, span)

    def test_x_trace_info_not_signed_by_a_key_neither_samples_nor_picks_the_trace(self):
        """With a TomographHMACKey, X-Trace-Info without its valid HMAC is ignored: where
        the rate is 0 nothing is recorded, and the trace is a new one."""
        base_id, parent_id = uuid.uuid4(), uuid.uuid4()
        signed = osprofiler(base_id, parent_id)
        info = signed["X-Trace-Info"]
        cases = {
            "unsigned": {"X-Trace-Info": info},
            "wrong-key": osprofiler_headers("not-" + HMAC_KEY, str(base_id), str(parent_id)),
            "hmac-of-other-info": {"X-Trace-Info": info,
                                   "X-Trace-HMAC": osprofiler(uuid.uuid4(), parent_id)["X-Trace-HMAC"]},
            "hmac-cut-short": {"X-Trace-Info": info, "X-Trace-HMAC": signed["X-Trace-HMAC"][:-2]},
            "hmac-with-more": {"X-Trace-Info": info, "X-Trace-HMAC": signed["X-Trace-HMAC"] + "00"},
            "empty-hmac": {"X-Trace-Info": info, "X-Trace-HMAC": ""},
        }
        for label, headers in cases.items():
            with self.subTest(label):
                path = f"/app/quiet/x-trace-info-{label}"
                env = self.request(path, headers).json()
                self.assertNotEqual(env["TOMOGRAPH_TRACE_ID"], base_id.hex, "trace id picked")
                self.assertUnsampled(path, env, env["TOMOGRAPH_TRACE_ID"], "02")
        # Signed, the same header is taken, and it asks for a profile.
        _, span = self.traced("/app/quiet/x-trace-info-signed", signed)
        self.assertContinues(span, base_id.hex, parent_id.hex[:16])

    # --- sampling ------------------------------------------------------------------

    def test_rate_0_records_nothing_but_hands_on_an_unsampled_context(self):
        path = "/app/quiet/new"
        env = self.request(path).json()
        self.assertUnsampled(path, env, env["TOMOGRAPH_TRACE_ID"], "02")

    def test_caller_not_sampled_wins_over_rate_1(self):
        trace_id, caller = random_hex(32), random_hex(16)
        cases = {
            "traceparent": (traceparent(trace_id, caller, "00"), "00"),
            "b3": ({"b3": b3_value(trace_id, caller, "0")}, "00"),
            "x-b3": (x_b3(trace_id, caller, sampled="0"), "00"),
        }
        for label, (headers, flags) in cases.items():
            with self.subTest(label):
                path = f"/app/caller-not-sampled-{label}"
                env = self.request(path, headers).json()
                self.assertUnsampled(path, env, trace_id, flags, caller)

    def test_caller_sampled_wins_over_rate_0(self):
        trace_id, caller = random_hex(32), random_hex(16)
        response, span = self.traced("/app/quiet/caller-sampled", traceparent(trace_id, caller))
        self.assertContinues(span, trace_id, caller)
        self.assertAppSeesSpan(response.json(), span)

    def test_debug_always_samples(self):
        trace_id, caller = random_hex(32), random_hex(16)
        cases = {
            "b3-d": {"b3": b3_value(trace_id, caller, "d")},
            "x-b3-flags": {**x_b3(trace_id, caller, sampled=None), "X-B3-Flags": "1"},
        }
        for label, headers in cases.items():
            with self.subTest(label):
                response, span = self.traced(f"/app/quiet/debug-{label}", headers)
                self.assertContinues(span, trace_id, caller)
                self.assertIs(span.get("debug"), True, span)
                self.assertAppSeesContext(response.json(), trace_id, span["id"], "01", caller,
                                          debug=True)

    def test_bare_decision_not_to_sample(self):
        for label, headers in {"b3-0": {"b3": "0"}, "x-b3-sampled-0": {"X-B3-Sampled": "0"}}.items():
            with self.subTest(label):
                path = f"/app/bare-{label}"
                env = self.request(path, headers).json()
                self.assertUnsampled(path, env, env["TOMOGRAPH_TRACE_ID"], "02")

    def test_rate_one_half_records_about_half(self):
        requests = 100
        traces = {self.request("/app/half/coin").json()["TOMOGRAPH_TRACE_ID"]
                  for _ in range(requests)}
        self.assertEqual(len(traces), requests)
        self.assertNoSpanOf("/app/half/never-asked")
        recorded = {span["traceId"] for span, _ in self.spans_of("/app/half/coin")}
        self.assertLessEqual(recorded, traces)
        # Binomial(100, 0.5): outside 20..80 is a 6-sigma event.
        self.assertTrue(20 <= len(recorded) <= 80, f"{len(recorded)} of {requests} recorded")

    # --- B3 shared spans -----------------------------------------------------------

    def test_b3_join_shares_the_caller_span(self):
        trace_id, caller, grandparent = random_hex(32), random_hex(16), random_hex(16)
        cases = {
            "b3-with-parent": ({"b3": b3_value(trace_id, caller, "1", grandparent)}, grandparent),
            "b3-without-parent": ({"b3": b3_value(trace_id, caller, "1")}, None),
            "x-b3-with-parent": (x_b3(trace_id, caller, grandparent), grandparent),
        }
        for label, (headers, parent) in cases.items():
            with self.subTest(label):
                response, span = self.traced(f"/app/joined/{label}", headers)
                self.assertEqual((span["traceId"], span["id"]), (trace_id, caller), span)
                self.assertEqual(span.get("parentId"), parent, span)
                self.assertIs(span.get("shared"), True, span)
                self.assertAppSeesContext(response.json(), trace_id, caller, "01", parent)

    def test_b3_join_does_not_apply_to_traceparent(self):
        trace_id, caller = random_hex(32), random_hex(16)
        _, span = self.traced("/app/joined/traceparent", traceparent(trace_id, caller))
        self.assertContinues(span, trace_id, caller)
        self.assertNotIn("shared", span)

    def test_b3_is_a_child_span_by_default(self):
        trace_id, caller = random_hex(32), random_hex(16)
        _, span = self.traced("/app/not-joined", {"b3": b3_value(trace_id, caller, "1")})
        self.assertContinues(span, trace_id, caller)
        self.assertNotIn("shared", span)


class SampleLimitTest(TracingTestCase):
    """TomographSampleLimit caps new sampled traces a second, server-wide."""

    ZIPKIN = True
    LIMIT = 3
    DIRECTIVES = (f"TomographSampleLimit {LIMIT}",)

    def burst(self, path, count, headers=None):
        """count requests, the first at the start of a second; (their app views, the number
        of seconds they took)."""
        time.sleep(1 - time.time() % 1)
        first = int(time.time())
        views = [self.request(path, headers).json() for _ in range(count)]
        return views, int(time.time()) - first + 1

    def test_new_traces_beyond_the_limit_are_not_sampled(self):
        views, seconds = self.burst("/app/limited", 3 * self.LIMIT)
        self.assertNoSpanOf("/app/limited-never-asked")
        recorded = {span["traceId"] for span, _ in self.spans_of("/app/limited")}
        expected = self.LIMIT if seconds == 1 else range(self.LIMIT, seconds * self.LIMIT + 1)
        if seconds == 1:
            self.assertEqual(len(recorded), expected, recorded)
        else:
            self.assertIn(len(recorded), expected, recorded)
        for env in views:
            flags = "03" if env["TOMOGRAPH_TRACE_ID"] in recorded else "02"
            self.assertAppSeesContext(env, env["TOMOGRAPH_TRACE_ID"], env["TOMOGRAPH_SPAN_ID"],
                                      flags)

    def test_continued_traces_are_not_limited(self):
        count = 3 * self.LIMIT
        trace_id = random_hex(32)
        self.burst("/app/continued", count, traceparent(trace_id, random_hex(16)))
        self.wait_for_trace(trace_id, count)


class ExtractOrderTest(TracingTestCase):
    """TomographExtract: only the formats named, in their order (b3multi: X-B3-* alone)."""

    ZIPKIN = True
    DIRECTIVES = (f"TomographHMACKey {HMAC_KEY}", "TomographExtract x-trace-info b3multi",
                  DEEP_TRACE_ALL)
    DEEP_TRACED = True

    def test_first_named_format_wins(self):
        first = (uuid.uuid4(), uuid.uuid4())
        _, span = self.traced("/app/x-trace-info-first",
                              {**osprofiler(*first), **x_b3(random_hex(32), random_hex(16))})
        self.assertContinues(span, first[0].hex, first[1].hex[:16])

    def test_formats_not_named_are_ignored(self):
        trace_id, caller = random_hex(32), random_hex(16)
        for label, headers in {"traceparent": traceparent(trace_id, caller),
                               "b3": {"b3": b3_value(trace_id, caller, "1")}}.items():
            with self.subTest(label):
                _, span = self.traced(f"/app/unnamed-{label}", headers)
                self.assertNewTrace(span, trace_id)

    def test_next_named_format_when_the_first_is_absent(self):
        trace_id, caller = random_hex(32), random_hex(16)
        _, span = self.traced("/app/x-b3-second", {**traceparent(random_hex(32), random_hex(16)),
                                                   **x_b3(trace_id, caller)})
        self.assertContinues(span, trace_id, caller)


class PropagatedHeaders:
    """What a backend behind mod_proxy gets, per TomographPropagate (PROPAGATE its value)."""

    ZIPKIN = True

    @classmethod
    def start_backends(cls):
        cls.backend = cls.stopped_after_class(HangupBackend())

    @classmethod
    def site_config(cls):
        return (f"ProxyPass /out/ http://127.0.0.1:{cls.backend.port}/ retry=0",)

    def test_backend_gets_the_formats_named_and_no_other(self):
        trace_id, caller = random_hex(32), random_hex(16)
        # The caller used every format: none of its headers may go further as they came.
        stale = {**traceparent(trace_id, caller), "b3": b3_value(trace_id, caller, "1"),
                 **x_b3(trace_id, caller), **osprofiler(uuid.uuid4(), uuid.uuid4())}
        path = f"/out/{uuid.uuid4().hex[:12]}"
        self.request(path, stale, expect_status=502)
        server = self.server_span(path)
        client = next(s for s in self.spans_in_trace(trace_id) if s["kind"] == "CLIENT")
        self.assertEqual(client["parentId"], server["id"])
        self.assertCarries(as_environ(self.backend.headers()), trace_id, client["id"], "01",
                           server["id"], (HMAC_KEY,))


class B3MultiPropagateTest(PropagatedHeaders, TracingTestCase):
    PROPAGATE = ("b3multi",)
    DIRECTIVES = (f"TomographHMACKey {HMAC_KEY}", "TomographPropagate b3multi")


class SeveralPropagateTest(PropagatedHeaders, TracingTestCase):
    PROPAGATE = ("tracecontext", "b3multi", "x-trace-info")
    DIRECTIVES = (f"TomographHMACKey {HMAC_KEY}", "TomographPropagate tracecontext b3multi x-trace-info",
                  DEEP_TRACE_ALL)
    DEEP_TRACED = True


class PropagatePerLocationTest(PropagatedHeaders, TracingTestCase):
    """TomographPropagate in a location, for the app there and the backends."""

    PROPAGATE = ("b3",)
    DIRECTIVES = (f"TomographHMACKey {HMAC_KEY}",)

    @classmethod
    def site_config(cls):
        return super().site_config() + ("<LocationMatch ^/(out|app/b3-only)/>",
                                        "    TomographPropagate b3",
                                        "</LocationMatch>")

    def test_app_gets_the_formats_named_and_no_other(self):
        trace_id, caller = random_hex(32), random_hex(16)
        response, span = self.traced("/app/b3-only/x", {**traceparent(trace_id, caller),
                                                        **x_b3(trace_id, caller)})
        self.assertAppSeesSpan(response.json(), span, (HMAC_KEY,))


if __name__ == "__main__":
    unittest.main()
