"""The Python binding outside httpd: the seed's calls, the decorator, the context manager, the
middleware and the SQLAlchemy listeners, each checked in the spans libtomograph writes to the
span file the environment names (tests/python/run sets TOMOGRAPH_SPAN_FILE)."""

import asyncio
import json
import os
import threading
import unittest
import uuid

import tomograph

SPAN_FILE = os.environ["TOMOGRAPH_SPAN_FILE"]


def exported():
    """Every span written so far, once libtomograph has delivered what it holds."""
    tomograph.flush(5000)
    with open(SPAN_FILE) as lines:
        return [json.loads(line) for line in lines if line.strip()]


def named(name):
    """The one span exported under name (names are made unique by the tests)."""
    found = [span for span in exported() if span["name"] == name.lower()]
    if len(found) != 1:
        raise AssertionError(f"one span named {name!r} expected: {found}")
    return found[0]


def unique(prefix):
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


class SeedCallsTest(unittest.TestCase):
    def tearDown(self):
        # A failed test may leave spans open: the next starts from nothing.
        tomograph._open.set(())

    def test_nested_spans_and_a_note(self):
        outer, inner = unique("outer"), unique("inner")
        tomograph.start("my service", outer, "127.0.0.1", 80)
        tomograph.start("my service", inner, "127.0.0.1", 80)
        tomograph.annotate("something happened")
        tomograph.tag("rows", 3)
        tomograph.stop(inner)
        tomograph.stop(outer)
        parent, child = named(outer), named(inner)
        self.assertEqual(child["traceId"], parent["traceId"])
        self.assertEqual(child.get("parentId"), parent["id"])
        self.assertNotIn("parentId", parent)
        self.assertEqual(child["localEndpoint"], {"serviceName": "my service",
                                                  "ipv4": "127.0.0.1", "port": 80})
        self.assertIn("something happened", [a["value"] for a in child["annotations"]])
        self.assertEqual(child["tags"].get("rows"), "3")

    def test_stop_of_another_span_is_refused_and_changes_nothing(self):
        name = unique("current")
        tomograph.start("svc", name, None, 0)
        with self.assertRaisesRegex(tomograph.TraceError, "the current span is"):
            tomograph.stop("not-it")
        tomograph.stop(name)
        self.assertEqual(named(name)["name"], name)

    def test_calls_with_no_span_started_raise(self):
        for call in (lambda: tomograph.stop("x"), lambda: tomograph.annotate("x"),
                     lambda: tomograph.tag("k", "v"), tomograph.get_trace_info,
                     lambda: tomograph.add_trace_info_header({})):
            with self.subTest(call=call):
                with self.assertRaisesRegex(tomograph.TraceError, "no span started"):
                    call()

    def test_a_token_continues_the_trace_on_another_thread(self):
        parent_name, thread_name = unique("request"), unique("worker")
        tomograph.start("svc", parent_name, None, 0)
        token = tomograph.get_trace_info()

        def work():
            tomograph.start("svc", thread_name, None, 0, token)
            tomograph.stop(thread_name)

        worker = threading.Thread(target=work)
        worker.start()
        worker.join()
        tomograph.stop(parent_name)
        parent, child = named(parent_name), named(thread_name)
        self.assertEqual(child["traceId"], parent["traceId"])
        self.assertEqual(child.get("parentId"), parent["id"])

    def test_a_token_that_does_not_parse_raises(self):
        for token in ("", "nonsense", "00-" + "0" * 32 + "-" + "1" * 16 + "-01"):
            with self.subTest(token=token):
                with self.assertRaises(tomograph.TraceError):
                    tomograph.start("svc", unique("bad"), None, 0, token)
        self.assertEqual(tomograph._open.get(), ())

    def test_trace_headers_for_an_outgoing_call(self):
        name = unique("client")
        tomograph.start("client", name, None, 0)
        headers = {}
        tomograph.add_trace_info_header(headers)
        tomograph.stop(name)
        span = named(name)
        self.assertEqual(headers["traceparent"], f"00-{span['traceId']}-{span['id']}-03")
        self.assertIn("X-Trace-Info", headers)
        self.assertIn("b3", headers)

    def test_start_http_continues_the_caller(self):
        trace_id, caller = uuid.uuid4().hex, uuid.uuid4().hex[:16]
        traceparent = f"00-{trace_id}-{caller}-01"

        class Request:
            headers = {"TraceParent": traceparent}

        cases = {"environ": {"REQUEST_METHOD": "GET", "HTTP_TRACEPARENT": traceparent},
                 "headers": Request()}
        for label, request in cases.items():
            with self.subTest(label):
                name = unique(label)
                tomograph.start_http("server", name, request)
                tomograph.stop(name)
                span = named(name)
                self.assertEqual((span["traceId"], span.get("parentId"), span["kind"]),
                                 (trace_id, caller, "SERVER"))

    def test_start_http_with_a_malformed_header_starts_a_new_trace(self):
        name = unique("fresh")
        tomograph.start_http("server", name, {"HTTP_TRACEPARENT": "00-zz-yy-01"})
        tomograph.stop(name)
        self.assertNotIn("parentId", named(name))


class DecoratorAndBlockTest(unittest.TestCase):
    def tearDown(self):
        tomograph._open.set(())

    def test_traced_function_returns_and_closes_its_span(self):
        name = unique("myfunc")

        @tomograph.traced("My Server", name)
        def myfunc(value):
            return value * 2

        self.assertEqual(myfunc(21), 42)
        self.assertEqual(tomograph._open.get(), ())
        self.assertNotIn("error", named(name).get("tags", {}))

    def test_an_exception_marks_the_span_and_goes_on_unchanged(self):
        name = unique("raises")
        raised = KeyError("missing")

        @tomograph.traced("My Server", name)
        def fails():
            raise raised

        with self.assertRaises(KeyError) as caught:
            fails()
        self.assertIs(caught.exception, raised)
        self.assertEqual(tomograph._open.get(), ())
        self.assertEqual(named(name)["tags"].get("error"), "KeyError")

    def test_a_traced_method_is_bound_as_the_function_would_be(self):
        name = unique("method")

        class Registry:
            @tomograph.traced("My Server", name)
            def get(self, key, default=None):
                """Looks key up."""
                return self, key, default

        registry = Registry()
        self.assertEqual(registry.get("k", default=1), (registry, "k", 1))
        self.assertEqual((Registry.get.__name__, Registry.get.__doc__), ("get", "Looks key up."))
        self.assertEqual(tomograph._open.get(), ())
        self.assertEqual(named(name)["name"], name)

    def test_a_block_that_left_a_span_open_takes_only_its_own_off(self):
        outer, block, left = unique("outer"), unique("block"), unique("left")
        tomograph.start("svc", outer, None, 0)
        with tomograph.span("svc", block):
            tomograph.start("svc", left, None, 0)
        tomograph.stop(left)  # still the current span, and the block's gone from under it
        tomograph.stop(outer)
        self.assertEqual(tomograph._open.get(), ())
        self.assertEqual(named(left).get("parentId"), named(block)["id"])
        self.assertEqual(named(block).get("parentId"), named(outer)["id"])

    def test_with_block_nests_under_the_current_span(self):
        outer, inner = unique("outer"), unique("block")
        with tomograph.span("svc", outer):
            with tomograph.span("svc", inner):
                tomograph.annotate("inside")
        self.assertEqual(named(inner).get("parentId"), named(outer)["id"])

    def test_tasks_keep_spans_of_their_own(self):
        names = [unique("task") for _ in range(2)]

        async def task(name):
            with tomograph.span("svc", name):
                await asyncio.sleep(0.01)
                with tomograph.span("svc", name + "-child"):
                    await asyncio.sleep(0.01)

        async def both():
            await asyncio.gather(*(task(name) for name in names))

        asyncio.run(both())
        for name in names:
            self.assertEqual(named(name + "-child").get("parentId"), named(name)["id"])


try:
    import eventlet
except ImportError:  # python3-eventlet, which scripts/setup installs
    eventlet = None


@unittest.skipIf(eventlet is None, "python3-eventlet is not installed")
class GreenthreadsTest(unittest.TestCase):
    """eventlet's greenthreads, which many OpenStack services serve requests on, each nest
    their own spans while they take turns on one thread."""

    def test_each_greenthread_keeps_spans_of_its_own(self):
        names = [unique("green") for _ in range(3)]

        def work(name):
            with tomograph.span("svc", name):
                eventlet.sleep(0.01)
                with tomograph.span("svc", name + "-child"):
                    eventlet.sleep(0.01)

        pool = eventlet.GreenPool()
        for name in names:
            pool.spawn(work, name)
        pool.waitall()
        for name in names:
            self.assertEqual(named(name + "-child").get("parentId"), named(name)["id"])
            self.assertNotIn("parentId", named(name))


class MiddlewareTest(unittest.TestCase):
    def call(self, app, path):
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": path, "wsgi.input": None}
        statuses = []
        middleware = tomograph.Middleware.factory({}, service_name="glance-registry")(app)
        response = middleware(environ, lambda status, headers, exc_info=None: statuses.append(status))
        body = b"".join(response)
        self.assertNotIn(f"get {path}", [span["name"] for span in exported()],
                         "the request's span ended before its response was closed")
        response.close()
        return statuses, body

    def test_the_span_lasts_until_the_response_is_closed(self):
        path = "/" + unique("images")

        def app(environ, start_response):
            start_response("200 OK", [])
            tomograph.start("glance", "inner", None, 0)
            tomograph.stop("inner")
            return [b"ok"]

        statuses, body = self.call(app, path)
        self.assertEqual((statuses, body), (["200 OK"], b"ok"))
        span = named(f"get {path}")
        self.assertEqual(span["localEndpoint"]["serviceName"], "glance-registry")
        self.assertEqual(span["tags"].get("http.status_code"), "200")

    def test_spans_the_app_left_open_are_closed_and_not_inherited(self):
        path, left = "/" + unique("leaky"), unique("left")

        def app(environ, start_response):
            start_response("500 Internal Server Error", [])
            tomograph.start("glance", left, None, 0)
            return [b""]

        self.call(app, path)
        self.assertEqual(tomograph._open.get(), ())
        request, leftover = named(f"get {path}"), named(left)
        self.assertEqual(leftover["tags"].get("error"), "left open")
        self.assertEqual(leftover.get("parentId"), request["id"])
        self.assertEqual(request["tags"].get("error"), "500")


try:
    import sqlalchemy
except ImportError:  # python3-sqlalchemy, which scripts/setup installs
    sqlalchemy = None


@unittest.skipIf(sqlalchemy is None, "python3-sqlalchemy is not installed")
class SqlListenersTest(unittest.TestCase):
    def setUp(self):
        self.engine = sqlalchemy.create_engine("sqlite://")
        sqlalchemy.event.listen(self.engine, "before_execute", tomograph.before_execute("my app"))
        sqlalchemy.event.listen(self.engine, "after_execute", tomograph.after_execute("my app"))

    def test_a_span_per_statement_without_literals_or_parameters(self):
        request = unique("request")
        secret = "s3cr3t" + uuid.uuid4().hex[:6]
        with tomograph.span("my app", request):
            with self.engine.connect() as connection:
                connection.execute(sqlalchemy.text(
                    f"SELECT 1 AS one, 'x{secret}' AS inlined, :token AS bound"),
                    {"token": secret})
        statements = [span for span in exported()
                      if span.get("parentId") == named(request)["id"]]
        self.assertEqual(len(statements), 1, statements)
        statement = statements[0]
        self.assertEqual(statement["kind"], "CLIENT")
        self.assertEqual(statement["tags"]["sql.statement"],
                         "SELECT ? AS one, ? AS inlined, ? AS bound")
        self.assertEqual(statement["name"], "select")
        self.assertNotIn(secret, json.dumps(exported()))

    def test_a_statement_the_database_refuses_is_a_failed_span(self):
        request = unique("refused")
        with tomograph.span("my app", request):
            with self.engine.connect() as connection:
                with self.assertRaises(sqlalchemy.exc.OperationalError):
                    connection.execute(sqlalchemy.text("SELECT * FROM no_such_table"))
        (statement,) = [span for span in exported()
                        if span.get("parentId") == named(request)["id"]]
        self.assertEqual(statement["tags"].get("error"), "OperationalError")


if __name__ == "__main__":
    unittest.main()
