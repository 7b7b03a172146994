"""The shipper as a process of httpd's: a stop and a graceful restart take no longer with the
module than without it, whatever the collector does (up, down, answering 503, hung), measured
side by side under load; what a stop or hard restart cuts off is counted and named once; a
shipper that does not exit is killed; graceful restarts and a stop log nothing of the module's
beyond its info line, under every MPM; and an operator finds the shipper, by its title in ps
and top, and by its pid and state in mod_status."""

import os
import re
import shutil
import signal
import statistics
import tempfile
import time
import unittest
from pathlib import Path

from harness import (STOP_WAIT, DownBackend, HangupBackend, Httpd, SilentServer, Wrk,
                     ZipkinReceiver, instance_processes, load_modules, processes, shipper_pids,
                     wait_for)

# mod_status, for servers with the module and without it.
STATUS_SITE_CONFIG = (
    *load_modules("status"),
    "<Location /server-status>",
    "    SetHandler server-status",
    "    <IfModule tomograph_module>",
    "        TomographEnable Off",
    "    </IfModule>",
    "</Location>",
)
# The shipper's line for what it could not deliver before it exited.
UNDELIVERED = re.compile(r"^.*TG00011: .*$", re.MULTILINE)
# What the issue allows the module: a stop or a graceful restart at most this much slower.
ALLOWED_DELAY = 0.5


class ServiceUnavailable(HangupBackend):
    """A collector that answers every request 503 and hangs up."""

    def _answer(self, connection, head):
        try:
            connection.sendall(b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n"
                               b"Connection: close\r\n\r\n")
        except OSError:
            pass


def live_processes(httpd):
    """Pids of the instance's processes but zombies: the parent, its children, mod_wsgi's
    daemon, the shipper."""
    return [pid for pid, (state, _) in instance_processes(httpd).items() if state != "Z"]


def timed_stop(httpd):
    """Seconds from what `apache2 -k stop` does (SIGTERM to the parent) until no process of the
    server is left."""
    started = time.monotonic()
    httpd.process.popen.send_signal(signal.SIGTERM)
    wait_for(lambda: not live_processes(httpd), "every process of the server to go", STOP_WAIT,
             interval=0.01, context=httpd.describe)
    return time.monotonic() - started


def log_codes(httpd):
    """The kinds of line in the error log: each line's AHnnnnn or TGnnnnn tag, else its
    module, level and first words."""
    codes = set()
    for line in httpd.error_log.read_text().splitlines():
        tag = re.search(r"\b(AH|TG)[0-9]{5}\b", line)
        codes.add(tag.group(0) if tag else " ".join(re.sub(r"^\[[^]]*\] ", "", line).split()[:4]))
    return codes


class ShipperProcessTestCase(unittest.TestCase):
    def setUp(self):
        self.workdir = Path(tempfile.mkdtemp(prefix="tomograph-it-shipper-"))
        self.addCleanup(shutil.rmtree, self.workdir, ignore_errors=True)
        print(f"\n  [{self._testMethodName}]")

    def server(self, directives, with_module=True, mpm="event"):
        httpd = Httpd(directives, with_module=with_module, site_config=STATUS_SITE_CONFIG,
                      mpm=mpm)
        self.addCleanup(httpd.stop)
        httpd.start()
        return httpd

    def stopped_after_test(self, server):
        self.addCleanup(server.stop)
        return server


class StopAndRestartTimeTest(ShipperProcessTestCase):
    """For each state of the collector, servers with the module and the same without it,
    alternately, each under load: a graceful restart timed from the signal until the new
    generation answers, then, while the old shipper may still be flushing, a stop timed from
    the signal until no process of the server is left. The medians compare."""

    ROUNDS = 3
    # Load before each measure: batches fill, POSTs go out (and hang, to a hung collector).
    LOADED = 0.7
    # Each of wrk's connections waits this long between requests: about 4,000 a second.
    PACE_MS = 2

    def collectors(self):
        """{state: the Zipkin URL of a collector in that state}."""
        receiver = self.stopped_after_test(ZipkinReceiver(self.workdir))
        down = self.stopped_after_test(DownBackend())
        refusing = self.stopped_after_test(ServiceUnavailable())
        hung = self.stopped_after_test(SilentServer())
        return {
            "up": receiver.url,
            "down": f"http://127.0.0.1:{down.port}/api/v2/spans",
            "refusing": f"http://127.0.0.1:{refusing.port}/api/v2/spans",
            "hung": f"http://127.0.0.1:{hung.port}/api/v2/spans",
        }

    def measure(self, url, with_module, script):
        """(seconds a graceful restart took, seconds the stop took, the server)."""
        httpd = self.server([f"TomographZipkin {url}"], with_module)
        wrk = Wrk(f"http://127.0.0.1:{httpd.port}/static.txt", 60, 2, 4, script)
        self.addCleanup(wrk.kill)
        try:
            time.sleep(self.LOADED)
            started = time.monotonic()
            httpd.graceful_restart()
            restart = time.monotonic() - started
            time.sleep(self.LOADED)
            stop = timed_stop(httpd)
        finally:
            wrk.kill()
        return restart, stop, httpd

    def test_stop_and_graceful_restart_take_as_long_as_without_the_module(self):
        script = self.workdir / "paced.lua"
        script.write_text(f"function delay()\n    return {self.PACE_MS}\nend\n")
        for state, url in self.collectors().items():
            times = {True: [], False: []}
            with_module = []
            for round in range(self.ROUNDS):
                # Alternately first, so that neither always runs on a machine warmed up.
                for module in ((True, False) if round % 2 == 0 else (False, True)):
                    restart, stop, httpd = self.measure(url, module, script)
                    times[module].append((restart, stop))
                    if module:
                        with_module.append(httpd)
            medians = {module: [statistics.median(t[i] for t in times[module]) for i in (0, 1)]
                       for module in times}
            self.report(state, times, medians)
            for i, what in enumerate(("graceful restart", "stop")):
                with self.subTest(f"collector {state}: {what}"):
                    self.assertLessEqual(medians[True][i], medians[False][i] + ALLOWED_DELAY,
                                         f"seconds with the module and without: {times}")
            with self.subTest(f"collector {state}: what was not delivered is named once"):
                for httpd in with_module:
                    lines = UNDELIVERED.findall(httpd.error_log.read_text())
                    self.assertLessEqual(len(lines), len(shipper_pids(httpd)), lines)
                    self.assertEqual([line for line in lines if not re.search(
                        r"counted failed: Zipkin [0-9]+$", line)], [], lines)
                    if state == "hung":
                        self.assertTrue(lines, f"spans held for a hung collector go unnamed\n"
                                               f"{httpd.describe()}")

    @staticmethod
    def report(state, times, medians):
        for module, label in ((True, "with the module"), (False, "without")):
            print(f"  collector {state}, {label}: restart "
                  + ", ".join(f"{r:.2f}" for r, _ in times[module])
                  + f" (median {medians[module][0]:.2f}) s; stop "
                  + ", ".join(f"{s:.2f}" for _, s in times[module])
                  + f" (median {medians[module][1]:.2f}) s")


class HardRestartTest(ShipperProcessTestCase):
    """A hard restart (`apache2 -k restart`) under load, the collector hung: the old shipper's
    drain is cut short, and what it could not deliver is counted failed, as many as its one
    line names, every span still accounted for."""

    LOADED = 1.0

    def test_what_a_hard_restart_cuts_off_is_counted_and_named(self):
        hung = self.stopped_after_test(SilentServer())
        httpd = self.server([f"TomographZipkin http://127.0.0.1:{hung.port}/api/v2/spans"])
        old = wait_for(lambda: shipper_pids(httpd), "the shipper to start")[-1]
        wrk = Wrk(f"http://127.0.0.1:{httpd.port}/static.txt", 60, 2, 4)
        self.addCleanup(wrk.kill)
        time.sleep(self.LOADED)
        httpd.process.popen.send_signal(signal.SIGHUP)
        wait_for(lambda: shipper_pids(httpd)[-1] != old, "the next generation's shipper",
                 context=httpd.describe)
        wrk.kill()
        named = wait_for(lambda: re.findall(rf"TG00011: shipper {old} stopped .* 250 ms .*"
                                            r"counted failed: Zipkin ([0-9]+)$",
                                            httpd.error_log.read_text(), re.MULTILINE),
                         "the old shipper's line", context=httpd.describe)
        counters = httpd.status_counters()
        print(f"  named: Zipkin {named}; counters: {counters}")
        self.assertEqual(len(named), 1)
        # The POSTs to the hung collector had not timed out (5 s): every failure is the cut's.
        self.assertEqual(counters["ZipkinFailed"], int(named[0]), counters)
        self.assertEqual(counters["ZipkinTaken"],
                         sum(counters[f"Zipkin{o}"] for o in ("Sent", "Failed", "Dropped",
                                                               "InFlight")), counters)


class StuckShipperTest(ShipperProcessTestCase):
    """A shipper that does not exit when told to (stopped with SIGSTOP here) holds no stop up:
    httpd kills it once its time is up (250 ms to flush, 250 more to exit), and says so."""

    # Its time, and more than enough for httpd's own stop (0.1-0.2 s here).
    STOP_ALLOWED = 1.5

    def test_a_stop_kills_a_shipper_that_does_not_exit(self):
        httpd = self.server(["TomographSpanFile logs/spans.json"])
        shipper = wait_for(lambda: shipper_pids(httpd), "the shipper to start")[-1]
        os.kill(shipper, signal.SIGSTOP)
        seconds = timed_stop(httpd)
        print(f"  stop with the shipper stopped: {seconds:.2f} s")
        self.assertLess(seconds, self.STOP_ALLOWED)
        self.assertRegex(httpd.error_log.read_text(),
                         rf"TG00012: shipper {shipper} had not exited 500 ms after it was told "
                         "to stop: killed")


class GracefulRestartLogTest(ShipperProcessTestCase):
    """A few graceful restarts and a stop, under each MPM, with the module and without it, the
    collector up: the only kind of line the module adds to the error log is its shipper's info
    line (TG00005)."""

    RESTARTS = 3
    # An old shipper flushes and exits within this, and the parent reaps it within a second.
    OLD_SHIPPERS_GONE = 2.0

    def codes_after_restarts(self, directives, with_module, mpm):
        httpd = self.server(directives, with_module, mpm)
        for restart in range(self.RESTARTS):
            for _ in range(20):
                httpd.request("GET", f"/static.txt?restart={restart}")
            httpd.graceful_restart()
        time.sleep(self.OLD_SHIPPERS_GONE)
        httpd.stop_server()
        return log_codes(httpd), httpd

    def test_graceful_restarts_and_a_stop_log_only_the_shippers_info_line(self):
        receiver = self.stopped_after_test(ZipkinReceiver(self.workdir))
        for mpm in ("event", "worker", "prefork"):
            with self.subTest(mpm=mpm):
                with_module, httpd = self.codes_after_restarts(
                    [f"TomographZipkin {receiver.url}"], True, mpm)
                without, _ = self.codes_after_restarts([], False, mpm)
                print(f"  mpm_{mpm}: {sorted(with_module)}")
                self.assertEqual(with_module - without, {"TG00005"}, httpd.describe())
                self.assertEqual(len(shipper_pids(httpd)), self.RESTARTS + 1)


class ShipperFoundTest(ShipperProcessTestCase):
    """ps and top name the shipper; mod_status gives its pid and whether it runs."""

    TITLE = b"apache2: tomograph shipper"
    NAME = "tomograph"

    def status(self, httpd):
        return {name: int(value) for name, value in re.findall(
            r"^TomographShipper(Pid|Running): ([0-9]+)$",
            httpd.request("GET", "/server-status?auto").body, re.MULTILINE)}

    def assertFound(self, httpd, replacing=None):
        """The shipper (the one after `replacing`, when given) is found; its pid."""
        pid = wait_for(lambda: shipper_pids(httpd)[-1] != replacing and shipper_pids(httpd),
                       "the shipper to start", context=httpd.describe)[-1]
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        self.assertEqual(cmdline.rstrip(b"\0"), self.TITLE, cmdline)
        self.assertEqual(Path(f"/proc/{pid}/comm").read_text().strip(), self.NAME)
        self.assertEqual(self.status(httpd), {"Pid": pid, "Running": 1})
        self.assertIn(f"<p>shipper pid {pid}, running</p>",
                      httpd.request("GET", "/server-status").body)
        return pid

    def test_ps_and_mod_status_show_the_shipper(self):
        receiver = self.stopped_after_test(ZipkinReceiver(self.workdir))
        httpd = self.server([f"TomographZipkin {receiver.url}"])
        shipper = self.assertFound(httpd)
        # httpd's other children keep httpd's title.
        others = [command for pid, (_, parent, _, command) in processes().items()
                  if parent == httpd.process.popen.pid and pid != shipper]
        self.assertTrue(others)
        self.assertEqual([c for c in others if "tomograph shipper" in c], [], others)
        with self.subTest("a shipper restarted after a kill"):
            os.kill(shipper, signal.SIGKILL)
            shipper = self.assertFound(httpd, replacing=shipper)
        with self.subTest("after a graceful restart"):
            httpd.graceful_restart()
            self.assertFound(httpd, replacing=shipper)

    def test_mod_status_says_when_the_shipper_does_not_run(self):
        httpd = self.server(["TomographSpanFile missing-directory/spans.json"])
        wait_for(lambda: "TG00006" in httpd.error_log.read_text(), "the shipper to give up",
                 context=httpd.describe)
        self.assertEqual(self.status(httpd)["Running"], 0)
        self.assertRegex(httpd.request("GET", "/server-status").body,
                         r"<p>shipper pid [0-9]+, not running</p>")


if __name__ == "__main__":
    unittest.main()
