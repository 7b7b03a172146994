"""What the module leaves on the machine is not for everyone: the span file is owner-only
(group-readable at most), the shipper runs as httpd's User and never as root, and the
shared memory is anonymous, so nothing is left in /dev/shm or the ServerRoot after a stop."""

import os
import pwd
import re
import stat
import unittest
from pathlib import Path

from harness import HTTPD_USER, Httpd, TracingTestCase, span_file_lines, wait_for

DEFAULT_SPAN_FILE = "logs/tomograph-spans.json"


def shipper_pid(httpd):
    """The pid the module's shipper announced (TG00005) in the newest generation."""
    found = wait_for(lambda: re.findall(r"TG00005: shipper (\d+) started",
                                        httpd.error_log.read_text()),
                     "the shipper to start", context=httpd.describe)
    return int(found[-1])


def uids_of(pid):
    """(real, effective, saved, filesystem) uids of a running process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return tuple(int(uid) for uid in line.split()[1:])
    raise AssertionError(f"no Uid line for {pid}")


def leftovers(root):
    """What could outlive httpd: /dev/shm entries and sockets, locks or segments under root."""
    shm = set(os.listdir("/dev/shm"))
    kept = {p for p in Path(root).rglob("*")
            if p.is_socket() or p.suffix in (".shm", ".lock", ".sock") or "tomograph" in p.name
            and p.suffix != ".json"}
    return shm, kept


class PermissionsTest(TracingTestCase):
    def test_span_file_is_not_open_to_others(self):
        span_file = self.httpd.root / DEFAULT_SPAN_FILE
        self.request("/app/permissions")
        wait_for(lambda: span_file_lines(span_file), "the span file", context=self.httpd.describe)
        mode = span_file.stat().st_mode
        self.assertEqual(mode & (stat.S_IRWXO | stat.S_IWGRP | stat.S_IXGRP), 0,
                         f"span file mode {stat.filemode(mode)}")
        self.assertEqual(span_file.stat().st_uid, 0, "owned by root, as httpd starts")

    def test_shipper_runs_as_the_httpd_user(self):
        user = pwd.getpwnam(HTTPD_USER).pw_uid
        pid = shipper_pid(self.httpd)
        self.assertEqual(uids_of(pid), (user, user, user, user))


class NothingLeftBehindTest(unittest.TestCase):
    def test_stop_leaves_no_segment_socket_or_lock(self):
        before_shm = set(os.listdir("/dev/shm"))
        httpd = Httpd()
        try:
            httpd.start()
            self.assertEqual(httpd.request("GET", "/static.txt").status, 200)
            wait_for(lambda: span_file_lines(httpd.root / DEFAULT_SPAN_FILE),
                     "the span of the request", context=httpd.describe)
            httpd.stop_server()
            shm, kept = leftovers(httpd.root)
            self.assertEqual(shm - before_shm, set(), "new entries in /dev/shm")
            self.assertEqual(kept, set(), "sockets, locks or segments left in the ServerRoot")
        finally:
            httpd.stop()
