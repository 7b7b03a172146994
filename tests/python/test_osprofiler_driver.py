"""tomograph:// (python/tomograph/osprofiler_driver.py) under Debian's real osprofiler: found
by osprofiler's own lookup of connection strings, each span osprofiler notifies becomes one
span, ids mapped as mod_tomograph maps X-Trace-Info's, with nothing of the application's
data in it. Spans land in the span file tests/python/run names."""

import json
import logging
import unittest
import uuid

import sqlalchemy
from osprofiler import notifier, profiler
from osprofiler import sqlalchemy as osprofiler_sqlalchemy

import tomograph.osprofiler_driver  # noqa: F401  (defines the driver osprofiler looks up)
from test_binding import exported, unique

HMAC_KEY = "SECRET_KEY"


def first_64_bits(uuid_text):
    return uuid.UUID(uuid_text).hex[:16]


class DriverTest(unittest.TestCase):
    def setUp(self):
        # As osprofiler.initializer.init_from_conf does it for keystone.
        notifier.clear_notifier_cache()
        notifier.set(notifier.create("tomograph://", project="keystone", service="public",
                                     host="192.0.2.5"))
        self.base_id, self.caller = str(uuid.uuid4()), str(uuid.uuid4())
        # As osprofiler's WsgiMiddleware does for a request with a valid X-Trace-Info.
        profiler.init(HMAC_KEY, base_id=self.base_id, parent_id=self.caller)
        self.addCleanup(profiler.clean)
        self.addCleanup(notifier.set, notifier.get())

    def trace(self):
        return [span for span in exported() if span["traceId"] == uuid.UUID(self.base_id).hex]

    def test_osprofiler_finds_the_driver_by_its_scheme(self):
        from osprofiler.drivers import base
        driver = base.get_driver("tomograph://", project="glance")
        self.assertEqual(type(driver).get_name(), "tomograph")
        with self.assertRaisesRegex(NotImplementedError, "exporters"):
            driver.get_report(self.base_id)

    def test_a_request_and_its_statements_make_one_tree(self):
        path = "/" + unique("v3/auth/tokens")
        secret = "s3cr3t" + uuid.uuid4().hex[:8]
        with profiler.Trace("wsgi", info={"request": {"path": path, "method": "POST",
                                                      "scheme": "http",
                                                      "query": f"password={secret}"}}):
            wsgi_id = profiler.get().get_id()
            with profiler.Trace("db", info={"db": {
                    "statement": f"SELECT * FROM user WHERE name = '{secret}' AND id = 42",
                    "params": {"password": secret}}}):
                db_id = profiler.get().get_id()
        spans = {span["name"]: span for span in self.trace()}
        self.assertEqual(set(spans), {"wsgi", "db"}, spans)
        wsgi, db = spans["wsgi"], spans["db"]
        # The ids: base_id the trace, each span's UUID its id, the caller its parent.
        self.assertEqual(wsgi["id"], first_64_bits(wsgi_id))
        self.assertEqual(wsgi["parentId"], first_64_bits(self.caller))
        self.assertEqual(db["id"], first_64_bits(db_id))
        self.assertEqual(db["parentId"], wsgi["id"])
        self.assertEqual((wsgi["kind"], db["kind"]), ("SERVER", "CLIENT"))
        self.assertEqual(wsgi["localEndpoint"], {"serviceName": "keystone", "ipv4": "192.0.2.5"})
        self.assertEqual(wsgi["tags"], {"request.path": path, "request.method": "POST",
                                        "request.scheme": "http"})
        self.assertEqual(db["tags"], {"db.statement":
                                      "SELECT * FROM user WHERE name = ? AND id = ?"})
        self.assertLessEqual(wsgi["timestamp"], db["timestamp"])
        self.assertLessEqual(db["timestamp"] + db["duration"],
                             wsgi["timestamp"] + wsgi["duration"])
        self.assertNotIn(secret, json.dumps(self.trace()))

    def test_sqlalchemy_statements_as_osprofiler_traces_them(self):
        """osprofiler's own cursor listeners on Debian's SQLAlchemy: one db span per
        statement, parameters dropped, a refused statement failed with its error's type and
        not its message (which may quote the values)."""
        engine = sqlalchemy.create_engine("sqlite://")
        osprofiler_sqlalchemy.add_tracing(sqlalchemy, engine, "db")
        secret = "s3cr3t" + uuid.uuid4().hex[:8]
        with profiler.Trace("wsgi", info={"request": {"path": "/v2/images"}}):
            with engine.connect() as connection:
                connection.execute(sqlalchemy.text("SELECT :token AS bound"), {"token": secret})
                with self.assertRaises(sqlalchemy.exc.OperationalError):
                    connection.execute(sqlalchemy.text(f"SELECT * FROM no_such_{secret}"))
        spans = self.trace()
        wsgi = [span for span in spans if span["name"] == "wsgi"][0]
        statements = [span for span in spans if span["name"] == "db"]
        self.assertEqual(len(statements), 2, spans)
        self.assertTrue(all(span["parentId"] == wsgi["id"] for span in statements))
        self.assertEqual(statements[0]["tags"], {"db.statement": "SELECT ? AS bound"})
        self.assertEqual(statements[1]["tags"].get("error"), "sqlite3.OperationalError")
        self.assertNotIn(secret, json.dumps(spans).replace(f"no_such_{secret}", ""))
        self.assertNotIn(secret, json.dumps([span["tags"].get("error") for span in spans]))

    def test_traced_functions_keep_their_name_not_their_arguments(self):
        secret = "s3cr3t" + uuid.uuid4().hex[:8]

        @profiler.trace("authenticate", hide_args=False, hide_result=False)
        def authenticate(password):
            return f"token-{password}"

        @profiler.trace("refuse")
        def refuse(password):
            raise PermissionError(f"bad password {password}")

        with profiler.Trace("wsgi"):
            authenticate(secret)
            with self.assertRaises(PermissionError):
                refuse(secret)
        spans = {span["name"]: span for span in self.trace()}
        self.assertIn("authenticate", spans["authenticate"]["tags"]["function.name"])
        self.assertEqual(spans["refuse"]["tags"]["error"], "PermissionError")
        self.assertNotIn(secret, json.dumps(list(spans.values())))

    def test_a_notification_that_makes_no_span_never_reaches_the_service(self):
        driver = tomograph.osprofiler_driver.TomographDriver("tomograph://", project="nova")
        with self.assertLogs("tomograph.osprofiler_driver", logging.WARNING) as logged:
            driver.notify({"name": "wsgi-start", "base_id": "not-a-uuid",
                           "trace_id": str(uuid.uuid4()), "parent_id": str(uuid.uuid4())})
            driver.notify({"name": "db-start"})
            driver.notify({"name": "db-stop", "trace_id": str(uuid.uuid4())})
        self.assertEqual(len(logged.records), 1, logged.output)
        self.assertIn("UUID", logged.output[0])

    def test_spans_never_stopped_are_ended_beyond_a_bound(self):
        driver = tomograph.osprofiler_driver.TomographDriver("tomograph://", project="nova")
        first = str(uuid.uuid4())
        name = unique("lost")
        for n in range(tomograph.osprofiler_driver._MAX_OPEN + 1):
            driver.notify({"name": f"{name}-start", "base_id": self.base_id,
                           "trace_id": first if n == 0 else str(uuid.uuid4()),
                           "parent_id": self.base_id})
        self.assertEqual(len(driver._open), tomograph.osprofiler_driver._MAX_OPEN)
        (ended,) = [span for span in self.trace() if span["name"] == name]
        self.assertEqual(ended["id"], first_64_bits(first))
        self.assertEqual(ended["tags"]["error"], "never stopped")
        self.assertNotIn("parentId", ended)
        for span_id in list(driver._open):
            driver.notify({"name": f"{name}-stop", "trace_id": span_id})
        self.assertEqual(driver._open, {})


if __name__ == "__main__":
    unittest.main()
