"""libtomograph under httpd: an application's own spans (tests/integration/library_app.wsgi,
calling the library through ctypes) in the same trace as the module's SERVER span, put on
the module's queue and shipped by its shipper, counted in mod_status: in a mod_wsgi daemon,
in a daemon running as another user, and embedded in httpd's children.

Skipped until the library is built (.libs/libtomograph.so in the build directory)."""

import shutil
import tempfile
import unittest
from pathlib import Path

from harness import INTEGRATION_DIR, TracingTestCase, load_modules, wait_for

LIBRARY = Path.cwd() / ".libs" / "libtomograph.so"
APP = "library_app.wsgi"
SERVICE = "library-app"
# The module's SERVER span, the app's SERVER span, outer, inner, and the thread's span.
SPANS_PER_REQUEST = 5


def wsgi_mount(path, process_group, library):
    """The app at `path`, in `process_group` (%{GLOBAL}: embedded in httpd's children)."""
    return (f'WSGIScriptAlias {path} "@SERVER_ROOT@/htdocs/{APP}"',
            f"<Location {path}>",
            f"    WSGIProcessGroup {process_group}",
            "    WSGIApplicationGroup %{GLOBAL}",
            f"    SetEnv TOMOGRAPH_LIBRARY {library}",
            "</Location>")


@unittest.skipUnless(LIBRARY.is_file(), f"libtomograph is not built ({LIBRARY})")
class AppLibraryUnderModuleTest(TracingTestCase):
    ZIPKIN = True
    FILES = {APP: (INTEGRATION_DIR / APP).read_text()}

    @classmethod
    def start_backends(cls):
        # Where the daemons' users (www-data, nobody) can read it, whoever built it.
        directory = Path(tempfile.mkdtemp(prefix="tomograph-it-lib-"))
        directory.chmod(0o755)
        cls.addClassCleanup(shutil.rmtree, directory, ignore_errors=True)
        cls.library = directory / LIBRARY.name
        shutil.copy(LIBRARY, cls.library)
        cls.library.chmod(0o644)

    @classmethod
    def site_config(cls):
        return (*load_modules("status"),
                "<Location /server-status>",
                "    SetHandler server-status",
                "    TomographEnable Off",
                "</Location>",
                "WSGIDaemonProcess library-app processes=1 threads=4",
                "WSGIDaemonProcess library-nobody user=nobody group=nogroup processes=1 threads=2",
                *wsgi_mount("/lib-daemon", "library-app", cls.library),
                *wsgi_mount("/lib-nobody", "library-nobody", cls.library),
                *wsgi_mount("/lib-embedded", "%{GLOBAL}", cls.library))

    def spans_created(self):
        return self.httpd.status_counters()["SpansCreated"]

    def assertOneTraceFromModuleToThread(self, path):
        created_before = self.spans_created()
        answer = self.request(path).json()
        self.assertEqual(set(answer["codes"].values()), {0}, answer)
        self.assertEqual(answer["depth"], 0, answer)
        trace_id = answer["token"].split("-")[1]
        self.assertEqual(trace_id, answer["module_trace_id"], answer)

        spans = {span.get("name"): span for span in self.wait_for_trace(trace_id,
                                                                         SPANS_PER_REQUEST)}
        module = spans[f"get {path}"]
        self.assertEqual((module["kind"], module["localEndpoint"]["serviceName"]),
                         ("SERVER", "demo"))
        parents = {"handle": module, "outer": spans["handle"], "inner": spans["outer"],
                   "in-thread": spans["inner"]}
        for name, parent in parents.items():
            span = spans[name]
            self.assertEqual(span.get("parentId"), parent["id"], f"{name}: {spans}")
            self.assertEqual(span["localEndpoint"]["serviceName"], SERVICE, span)
        self.assertEqual(spans["handle"]["kind"], "SERVER")
        for name in ("outer", "inner", "in-thread"):
            self.assertNotIn("kind", spans[name], f"{name} is INTERNAL: {spans[name]}")
        self.assertEqual(spans["outer"]["tags"].get("step"), "outer")
        self.assertIn("inner-note", [note["value"] for note in spans["inner"]["annotations"]])
        for span, errors in self.span_records():
            if span.get("traceId") == trace_id:
                self.assertIsNone(errors, f"fails zipkin2-api.yaml: {span}")
        # The module's counters hold the app's spans with its own: mod_status shows them.
        wait_for(lambda: self.spans_created() - created_before == SPANS_PER_REQUEST,
                 f"TomographSpansCreated to count the {SPANS_PER_REQUEST} spans",
                 context=lambda: f"{self.httpd.status_counters()} before: {created_before}")

    def test_a_daemon_apps_spans_join_the_modules_trace(self):
        self.assertOneTraceFromModuleToThread("/lib-daemon/trace")

    def test_a_daemon_running_as_another_user_writes_to_the_queue(self):
        self.assertOneTraceFromModuleToThread("/lib-nobody/trace")

    def test_an_embedded_apps_spans_join_the_modules_trace(self):
        self.assertOneTraceFromModuleToThread("/lib-embedded/trace")


if __name__ == "__main__":
    unittest.main()
