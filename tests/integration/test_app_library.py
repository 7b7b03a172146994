"""libtomograph under httpd: an application's own spans (tests/integration/library_app.wsgi,
calling the library through ctypes) in the same trace as the module's SERVER span, put on
the module's queue and shipped by its shipper, counted in mod_status: in a mod_wsgi daemon,
in a daemon running as another user, and embedded in httpd's children; and in a CGI program
(tests/integration/library_app.cgi), exec'd by mod_cgid's daemon (event) or by an httpd
child (mod_cgi, prefork), which has only the descriptor it inherited.  Outside httpd: the
C example (examples/two_level.c) writing its trace to a span file.

Skipped until the library and the example are built (.libs/libtomograph.so and
examples/two_level in the build directory)."""

import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest
from pathlib import Path

from harness import (INTEGRATION_DIR, STATUS_SITE_CONFIG, TracingTestCase, load_modules,
                     span_file_lines, validate_span_file, wait_for)

LIBRARY = Path.cwd() / ".libs" / "libtomograph.so"
TWO_LEVEL = Path.cwd() / "examples" / "two_level"
APP = "library_app.wsgi"
CGI = "library_app.cgi"
SERVICE = "library-app"
CGI_SERVICE = "library-cgi"
# Where a CGI program could send spans of its own, bypassing the module's queue.
EXPORTER_VARIABLES = {"TOMOGRAPH_ZIPKIN", "TOMOGRAPH_OTLP", "TOMOGRAPH_STATSD",
                      "TOMOGRAPH_SPAN_FILE"}
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


def readable_copy_of_library(cls):
    """A copy of the library in a directory of its own that the daemons' users (www-data,
    nobody) can read, whoever built it, removed after the class; that directory."""
    directory = Path(tempfile.mkdtemp(prefix="tomograph-it-lib-"))
    directory.chmod(0o755)
    cls.addClassCleanup(shutil.rmtree, directory, ignore_errors=True)
    cls.library = directory / LIBRARY.name
    shutil.copy(LIBRARY, cls.library)
    cls.library.chmod(0o644)
    return directory


@unittest.skipUnless(LIBRARY.is_file(), f"libtomograph is not built ({LIBRARY})")
class AppLibraryUnderModuleTest(TracingTestCase):
    ZIPKIN = True
    FILES = {APP: (INTEGRATION_DIR / APP).read_text()}

    @classmethod
    def start_backends(cls):
        readable_copy_of_library(cls)

    @classmethod
    def site_config(cls):
        return (*STATUS_SITE_CONFIG, *load_modules("env"),
                "WSGIDaemonProcess library-app processes=1 threads=4",
                # nobody's home (/nonexistent) would stop the daemon starting.
                "WSGIDaemonProcess library-nobody user=nobody group=nogroup "
                "home=@SERVER_ROOT@/htdocs processes=1 threads=2",
                *wsgi_mount("/lib-daemon", "library-app", cls.library),
                *wsgi_mount("/lib-nobody", "library-nobody", cls.library),
                *wsgi_mount("/lib-embedded", "%{GLOBAL}", cls.library))

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


@unittest.skipUnless(LIBRARY.is_file(), f"libtomograph is not built ({LIBRARY})")
class CgiUnderModuleTest(TracingTestCase):
    """A CGI program under mod_cgid (event): exec'd by mod_cgid's daemon, which httpd's
    parent forked, with an environment made from its request's alone and no exporter of its
    own, its span reaches the module's shipper through the queue."""
    ZIPKIN = True
    MPM = "event"
    CGI_MODULE = "cgid"

    @classmethod
    def start_backends(cls):
        cls.cgi_directory = readable_copy_of_library(cls)
        script = cls.cgi_directory / CGI
        shutil.copy(INTEGRATION_DIR / CGI, script)
        script.chmod(0o755)

    @classmethod
    def site_config(cls):
        return (*STATUS_SITE_CONFIG, *load_modules("alias", cls.CGI_MODULE),
                f'ScriptAlias /cgi-lib/ "{cls.cgi_directory}/"',
                f'<Directory "{cls.cgi_directory}">',
                "    Require all granted",
                "</Directory>")

    def assertCgiSpanJoinsTheModulesTrace(self, query=""):
        """The CGI's answer to a request with that query string."""
        path = f"/cgi-lib/{CGI}"
        created_before = self.spans_created()
        answer = self.request(path + query).json()
        self.assertEqual(set(answer["codes"].values()), {0}, answer)
        # Nothing but the module's queue to send its span to.
        self.assertFalse(EXPORTER_VARIABLES & set(answer["variables"]), answer)
        self.assertEqual(len(answer["descriptors"]), 1, answer)
        trace_id = answer["token"].split("-")[1]

        spans = {span.get("name"): span for span in self.wait_for_trace(trace_id, 2)}
        module, cgi = spans[f"get {path}"], spans["cgi"]
        self.assertEqual((module["kind"], module["localEndpoint"]["serviceName"]),
                         ("SERVER", "demo"))
        self.assertEqual(cgi.get("parentId"), module["id"], spans)
        self.assertEqual((cgi["kind"], cgi["localEndpoint"]["serviceName"]),
                         ("SERVER", CGI_SERVICE))
        for span, errors in self.span_records():
            if span.get("traceId") == trace_id:
                self.assertIsNone(errors, f"fails zipkin2-api.yaml: {span}")
        wait_for(lambda: self.spans_created() - created_before == 2,
                 "TomographSpansCreated to count the module's span and the CGI's",
                 context=lambda: f"{self.httpd.status_counters()} before: {created_before}")
        return answer

    def memfd_descriptors(self):
        """The descriptors httpd's parent holds on the module's memfd."""
        fds = Path(f"/proc/{self.httpd.process.popen.pid}/fd")
        return [fd.name for fd in fds.iterdir()
                if os.readlink(fd).startswith("/memfd:tomograph")]

    def test_a_cgi_programs_span_reaches_the_modules_shipper(self):
        answer = self.assertCgiSpanJoinsTheModulesTrace()
        self.assertIn("TOMOGRAPH_SEGMENT", answer["variables"], answer)
        self.assertEqual(answer["token"].split("-")[1], answer["module_trace_id"], answer)

    def test_a_cgi_whose_environment_suexec_cleaned_finds_the_queue_by_its_descriptor(self):
        answer = self.assertCgiSpanJoinsTheModulesTrace("?suexec")
        self.assertEqual(answer["variables"], [], answer)

    def test_the_segment_and_its_descriptor_outlive_graceful_restarts(self):
        held = self.memfd_descriptors()
        self.assertEqual(len(held), 1, held)
        for _ in range(2):
            self.httpd.graceful_restart()
        self.assertEqual(self.memfd_descriptors(), held)
        # The span of the restart's last readiness probe (GET /ready.txt) is made once its
        # answer is out: counted before the CGI's request is.
        time.sleep(0.5)
        self.assertCgiSpanJoinsTheModulesTrace()


class CgiUnderModuleWithPreforkTest(CgiUnderModuleTest):
    """The same under mod_cgi (prefork): the httpd child serving the request execs it."""
    MPM = "prefork"
    CGI_MODULE = "cgi"


@unittest.skipUnless(TWO_LEVEL.is_file(), f"examples/two_level is not built ({TWO_LEVEL})")
class TwoLevelProgramTest(unittest.TestCase):
    """A C program outside httpd, with nothing but TOMOGRAPH_SPAN_FILE set."""

    def test_its_trace_is_in_the_span_file_with_the_thread_continuing_it(self):
        workdir = Path(tempfile.mkdtemp(prefix="tomograph-it-two-level-"))
        self.addCleanup(shutil.rmtree, workdir, ignore_errors=True)
        span_file = workdir / "spans.json"
        env = {name: value for name, value in os.environ.items()
               if not name.startswith("TOMOGRAPH_")}
        env["TOMOGRAPH_SPAN_FILE"] = str(span_file)
        done = subprocess.run([str(TWO_LEVEL)], env=env, stdin=subprocess.DEVNULL,
                              capture_output=True, timeout=10, check=False)
        self.assertEqual(done.returncode, 0, done.stderr.decode(errors="replace"))
        trace_id = done.stdout.decode().split()[1]

        valid, report = validate_span_file(span_file)
        self.assertTrue(valid, report)
        spans = {span["name"]: span for span in map(json.loads, span_file_lines(span_file))}
        self.assertEqual(sorted(spans), ["background", "request", "step"], spans)
        self.assertEqual({span["traceId"] for span in spans.values()}, {trace_id})
        self.assertNotIn("parentId", spans["request"])
        self.assertEqual(spans["step"]["parentId"], spans["request"]["id"])
        self.assertEqual(spans["background"]["parentId"], spans["step"]["id"])
        self.assertEqual(spans["request"]["tags"].get("user"), "demo")
        self.assertEqual(spans["request"]["localEndpoint"].get("port"), 8080)


if __name__ == "__main__":
    unittest.main()
