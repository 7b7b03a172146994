"""`import tomograph` under httpd: a glance-registry-like app (tests/integration/python_app.py)
in a paste pipeline behind tomograph.Middleware (tests/integration/python_app.ini, loaded
by tests/integration/python_app.wsgi with Debian's paste.deploy), its functions decorated with @tomograph.traced, querying SQLite
through Debian's SQLAlchemy 1.4 with tomograph's listeners, continuing its trace on a
thread with get_trace_info(), and calling a second httpd with add_trace_info_header().
Served by mod_wsgi in a daemon and embedded in httpd's children, each request makes one
trace, from the module's SERVER span down to each SQL statement, shipped by the module's
shipper, counted in mod_status, with no secret of the SQL in it.

The package is the one just built: python/tomograph and the extension from .libs (as
tests/python/run assembles it), with libtomograph.so.0 beside, found through the
LD_LIBRARY_PATH httpd starts with. Skipped until they are built."""

import configparser
import contextlib
import shutil
import sqlite3
import tempfile
import unittest
from pathlib import Path

from harness import (INTEGRATION_DIR, REPO_ROOT, STATUS_SITE_CONFIG, TracingTestCase,
                     load_modules, wait_for)

LIBS = Path.cwd() / ".libs"
EXTENSIONS = sorted(LIBS.glob("_tomograph*.so"))
LIBRARY = LIBS / "libtomograph.so.0"
APP_FILES = ("python_app.py", "python_app.ini", "python_app.wsgi")
# The app's settings in its paste configuration: the two secrets among them.
SETTINGS = configparser.ConfigParser(interpolation=None)
SETTINGS.read(INTEGRATION_DIR / "python_app.ini")
SECRETS = (SETTINGS["app:app"]["inlined_owner"], SETTINGS["app:app"]["bound_checksum"])
IMAGE = "cirros"
MODULE_SERVICE = "demo"  # conf/demo/httpd.conf.in's TomographService
MIDDLEWARE_SERVICE = SETTINGS["filter:tomo"]["service_name"]
APP_SERVICE = "glance"  # python_app.py's
PEER_SERVICE = "peer"
# What the app's statements look like in their spans: the literal written into the SQL
# text replaced by '?', the bound parameter by its name.
INLINED_SQL = "SELECT name FROM images WHERE owner = ?"
BOUND_SQL = "SELECT images.name FROM images WHERE images.checksum = ?"


def assemble_app(directory):
    """directory becomes what mod_wsgi's python path holds: the tomograph package as it is
    installed, libtomograph.so.0 that its extension needs, the app with its paste
    configuration and WSGI script, and the SQLite database it reads (one image, of the
    secret owner and with the secret checksum); all readable by the daemons' user."""
    shutil.copytree(REPO_ROOT / "python" / "tomograph", directory / "tomograph",
                    ignore=shutil.ignore_patterns("*.c", "__pycache__"))
    shutil.copy(EXTENSIONS[0], directory / "tomograph")
    shutil.copy(LIBRARY, directory)
    for name in APP_FILES:
        shutil.copy(INTEGRATION_DIR / name, directory)
    with contextlib.closing(sqlite3.connect(directory / "images.db")) as database:
        database.execute("CREATE TABLE images (name TEXT, owner TEXT, checksum TEXT)")
        database.execute("INSERT INTO images VALUES (?, ?, ?)", (IMAGE, *SECRETS))
        database.commit()
    for path in [directory, *directory.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)


def label(span):
    """A span's name, or for a SQL statement's span, the statement."""
    return (span.get("tags") or {}).get("sql.statement") or span.get("name")


@unittest.skipUnless(EXTENSIONS and LIBRARY.is_file(),
                     f"the Python binding is not built (.libs/_tomograph*.so, {LIBRARY})")
class PythonAppUnderModuleTest(TracingTestCase):
    ZIPKIN = True

    @classmethod
    def start_backends(cls):
        cls.app_dir = Path(tempfile.mkdtemp(prefix="tomograph-it-pyapp-"))
        cls.addClassCleanup(shutil.rmtree, cls.app_dir, ignore_errors=True)
        assemble_app(cls.app_dir)
        # What the app calls: another service, shipping to the same receiver.
        cls.peer = cls.start_httpd([f"TomographService {PEER_SERVICE}"])

    @classmethod
    def httpd_env(cls):
        return {"LD_LIBRARY_PATH": str(cls.app_dir)}

    @classmethod
    def site_config(cls):
        def mount(path, process_group):
            return (f'WSGIScriptAlias {path} "{cls.app_dir}/python_app.wsgi"',
                    f"<Location {path}>",
                    f"    WSGIProcessGroup {process_group}",
                    "    WSGIApplicationGroup %{GLOBAL}",
                    f"    SetEnv TOMOGRAPH_TEST_PEER http://127.0.0.1:{cls.peer.port}/static.txt",
                    "</Location>")
        return (*STATUS_SITE_CONFIG, *load_modules("env"),
                f'<Directory "{cls.app_dir}">',
                "    Require all granted",
                "</Directory>",
                f"WSGIPythonPath {cls.app_dir}",
                f"WSGIDaemonProcess python-app processes=1 threads=4 python-path={cls.app_dir}",
                *mount("/py-daemon", "python-app"),
                *mount("/py-embedded", "%{GLOBAL}"))

    def assertOneTrace(self, mount, path, app_spans, elsewhere=()):
        """A request to the app's path where it is mounted answers, and makes one trace:
        the module's SERVER span, the Middleware's under it, and app_spans, {label: (kind or
        None for INTERNAL, service, the parent's label or None for the Middleware's span)};
        each span with its parent's id and within its parent's time, valid for Zipkin, and
        counted in this httpd's TomographSpansCreated, but for those labelled in
        elsewhere, made by another server: they start within their parent, and may end
        after it (a server's span ends once it has sent the answer the caller may already
        have read). Returns the answer."""
        module_span, middleware_span = f"get {mount}{path}", f"get {path}"
        tree = {module_span: ("SERVER", MODULE_SERVICE, None),
                middleware_span: ("SERVER", MIDDLEWARE_SERVICE, module_span),
                **{name: (kind, service, parent or middleware_span)
                   for name, (kind, service, parent) in app_spans.items()}}
        created_before = self.spans_created()
        answer = self.request(mount + path).json()
        self.assertEqual(Path(answer["tomograph"]).parent.parent, self.app_dir,
                         "the package just built is the one imported")
        trace_id = answer["module_trace_id"]
        spans = self.wait_for_trace(trace_id, len(tree))
        by_label = {label(span): span for span in spans}
        self.assertEqual(sorted(by_label), sorted(tree), spans)
        for name, (kind, service, parent_name) in tree.items():
            span = by_label[name]
            self.assertEqual((span.get("kind"), span["localEndpoint"]["serviceName"]),
                             (kind, service), span)
            if parent_name is None:
                self.assertNotIn("parentId", span)
                continue
            parent = by_label[parent_name]
            self.assertEqual(span.get("parentId"), parent["id"], f"{name}: {spans}")
            self.assertGreaterEqual(span["timestamp"], parent["timestamp"], name)
            if name not in elsewhere:
                self.assertLessEqual(span["timestamp"] + span.get("duration", 0),
                                     parent["timestamp"] + parent.get("duration", 0), name)
        for span, errors in self.span_records():
            if span.get("traceId") == trace_id:
                self.assertIsNone(errors, f"fails zipkin2-api.yaml: {span}")
        # The module counts the app's spans with its own: mod_status shows them.
        made_here = len(tree) - len(elsewhere)
        wait_for(lambda: self.spans_created() - created_before == made_here,
                 f"TomographSpansCreated to count the {made_here} spans",
                 context=lambda: f"{self.httpd.status_counters()} before: {created_before}")
        return answer

    def assertRequestTracedDownToSql(self, mount):
        answer = self.assertOneTrace(mount, "/images", {
            "list_images": (None, APP_SERVICE, None),
            "image_get_all": (None, APP_SERVICE, "list_images"),
            INLINED_SQL: ("CLIENT", APP_SERVICE, "image_get_all"),
            BOUND_SQL: ("CLIENT", APP_SERVICE, "image_get_all"),
            "prefetch": (None, APP_SERVICE, "list_images"),
        })
        self.assertEqual((answer["by_owner"], answer["by_checksum"], answer["prefetched"]),
                         ([IMAGE], [IMAGE], True), answer)
        leaks = [line for line in self.receiver.jsonl.read_text().splitlines()
                 if any(secret in line for secret in SECRETS)]
        self.assertEqual(leaks, [], f"the collector got a secret of {SECRETS}")

    def assertCallContinuesAtPeer(self, mount):
        answer = self.assertOneTrace(mount, "/call", {
            "call_peer": (None, APP_SERVICE, None),
            "get /static.txt": ("SERVER", PEER_SERVICE, "call_peer"),
        }, elsewhere=("get /static.txt",))
        self.assertEqual(answer["peer_status"], 200, answer)

    def test_a_daemon_request_is_one_trace_down_to_its_sql(self):
        self.assertRequestTracedDownToSql("/py-daemon")

    def test_an_embedded_request_is_one_trace_down_to_its_sql(self):
        self.assertRequestTracedDownToSql("/py-embedded")

    def test_a_daemons_outgoing_call_continues_the_trace_at_the_second_httpd(self):
        self.assertCallContinuesAtPeer("/py-daemon")

    def test_an_embedded_apps_outgoing_call_continues_the_trace_at_the_second_httpd(self):
        self.assertCallContinuesAtPeer("/py-embedded")


if __name__ == "__main__":
    unittest.main()
