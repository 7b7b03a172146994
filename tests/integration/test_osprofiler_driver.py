"""tomograph:// under httpd: an OpenStack-like service (tests/integration/osprofiler_app.wsgi)
in a mod_wsgi daemon, its osprofiler configured with `connection_string = tomograph://` and
the driver brought in by one WSGIImportScript line. A deep-traced request is one tree: the
module's SERVER span, osprofiler's wsgi span under it, a db span per statement under that,
shipped by the module's shipper and counted in mod_status, with no SQL secret anywhere. A
request that is not deep-traced leaves osprofiler off: the SERVER span alone."""

import contextlib
import shutil
import sqlite3
import tempfile
import unittest
import uuid
from pathlib import Path

from harness import (INTEGRATION_DIR, REPO_ROOT, STATUS_SITE_CONFIG, TracingTestCase,
                     load_modules, osprofiler_headers, wait_for)
from test_python_app import EXTENSIONS, LIBRARY

SERVICE = "catalog"  # the module's TomographService and osprofiler's project alike
HMAC_KEY = "SECRET_KEY"  # the app's [profiler] hmac_keys
IMAGE, OWNER, CHECKSUM = "cirros", "owner-s3cr3t-4f1c", "checksum-s3cr3t-9a2e"
OWNER_SQL = "SELECT name FROM images WHERE owner = ?"
CHECKSUM_SQL = "SELECT name FROM images WHERE checksum = ?"


def assemble_service(directory):
    """The tomograph package as installed, libtomograph.so.0, the app and its database (one
    image of the secret owner and checksum), readable by the daemon's user."""
    shutil.copytree(REPO_ROOT / "python" / "tomograph", directory / "tomograph",
                    ignore=shutil.ignore_patterns("*.c", "__pycache__"))
    shutil.copy(EXTENSIONS[0], directory / "tomograph")
    shutil.copy(LIBRARY, directory)
    shutil.copy(INTEGRATION_DIR / "osprofiler_app.wsgi", directory)
    with contextlib.closing(sqlite3.connect(directory / "images.db")) as database:
        database.execute("CREATE TABLE images (name TEXT, owner TEXT, checksum TEXT)")
        database.execute("INSERT INTO images VALUES (?, ?, ?)", (IMAGE, OWNER, CHECKSUM))
        database.commit()
    for path in [directory, *directory.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


@unittest.skipUnless(EXTENSIONS and LIBRARY.is_file(),
                     f"the Python binding is not built (.libs/_tomograph*.so, {LIBRARY})")
class OsprofilerDriverTest(TracingTestCase):
    ZIPKIN = True
    DIRECTIVES = (f"TomographHMACKey {HMAC_KEY}", f"TomographService {SERVICE}")

    @classmethod
    def start_backends(cls):
        cls.app_dir = Path(tempfile.mkdtemp(prefix="tomograph-it-osprofiler-"))
        cls.addClassCleanup(shutil.rmtree, cls.app_dir, ignore_errors=True)
        assemble_service(cls.app_dir)

    @classmethod
    def httpd_env(cls):
        return {"LD_LIBRARY_PATH": str(cls.app_dir)}

    @classmethod
    def site_config(cls):
        return (*STATUS_SITE_CONFIG, *load_modules("env"),
                f'<Directory "{cls.app_dir}">',
                "    Require all granted",
                "</Directory>",
                f"WSGIDaemonProcess {SERVICE} processes=1 threads=4 python-path={cls.app_dir}",
                # The one line README.md's "Tracing OpenStack" asks for.
                f"WSGIImportScript {cls.app_dir}/tomograph/osprofiler_driver.py"
                f" process-group={SERVICE} application-group=%{{GLOBAL}}",
                f'WSGIScriptAlias /{SERVICE} "{cls.app_dir}/osprofiler_app.wsgi"',
                f"<Location /{SERVICE}>",
                f"    WSGIProcessGroup {SERVICE}",
                "    WSGIApplicationGroup %{GLOBAL}",
                f"    SetEnv CATALOG_OWNER {OWNER}",
                f"    SetEnv CATALOG_CHECKSUM {CHECKSUM}",
                "</Location>",
                f"<Location /{SERVICE}/deep/>",
                "    TomographDeepTraceRate 1",
                "</Location>")

    def assertTree(self, path, headers=None):
        """The request answers, and its trace is the module's SERVER span, osprofiler's wsgi
        span under it and a db span per statement under that, each within its parent's
        time, all counted in TomographSpansCreated, no secret in any. Returns the SERVER
        span."""
        created_before = self.spans_created()
        answer = self.request(path, headers).json()
        self.assertEqual((answer["by_owner"], answer["by_checksum"]), ([IMAGE], [IMAGE]))
        spans = self.wait_for_trace(answer["module_trace_id"], 4)
        (server,) = [span for span in spans if span["name"] == f"get {path}"]
        (wsgi,) = [span for span in spans if span["name"] == "wsgi"]
        statements = {span["tags"].get("db.statement"): span
                      for span in spans if span["name"] == "db"}
        self.assertEqual(set(statements), {OWNER_SQL, CHECKSUM_SQL}, spans)
        self.assertEqual(wsgi.get("parentId"), server["id"], spans)
        self.assertEqual(wsgi["tags"].get("request.path"), path)
        for child, parent in [(wsgi, server), *((db, wsgi) for db in statements.values())]:
            if child is not wsgi:
                self.assertEqual(child.get("parentId"), parent["id"], spans)
                self.assertEqual(child["kind"], "CLIENT")
            self.assertEqual(child["localEndpoint"]["serviceName"], SERVICE)
            self.assertGreaterEqual(child["timestamp"], parent["timestamp"])
            self.assertLessEqual(child["timestamp"] + child["duration"],
                                 parent["timestamp"] + parent["duration"])
        wait_for(lambda: self.spans_created() - created_before == 4,
                 "TomographSpansCreated to count the 4 spans",
                 context=lambda: f"{self.httpd.status_counters()} before: {created_before}")
        exported = self.receiver.jsonl.read_text()
        self.assertNotIn(OWNER, exported)
        self.assertNotIn(CHECKSUM, exported)
        return server

    def test_a_deep_traced_request_is_one_tree_down_to_each_statement(self):
        self.assertTree(f"/{SERVICE}/deep/images")

    def test_a_callers_signed_x_trace_info_profiles_under_the_caller(self):
        base_id, caller = uuid.uuid4(), uuid.uuid4()
        server = self.assertTree(f"/{SERVICE}/images",
                                 osprofiler_headers(HMAC_KEY, str(base_id), str(caller)))
        self.assertContinues(server, base_id.hex, caller.hex[:16])

    def test_without_deep_tracing_osprofiler_stays_off(self):
        answer = self.request(f"/{SERVICE}/images").json()
        self.assertEqual((answer["by_owner"], answer["by_checksum"]), ([IMAGE], [IMAGE]))
        (server,) = self.wait_for_trace(answer["module_trace_id"], 1)
        self.assertEqual(server["name"], f"get /{SERVICE}/images")


if __name__ == "__main__":
    unittest.main()
