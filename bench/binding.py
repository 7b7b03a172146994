"""What the benchmarks of the Python binding share (python_span_bench.py, sql_bench.py).

The binding is assembled as tests/python/run assembles it (tests/python/assemble.py: the
package from python/tomograph/ and the build's extension, in a temporary folder), and the
benchmark runs again in /usr/bin/python3 over it with LD_LIBRARY_PATH=<build>/.libs, so
that the build's libtomograph is the one measured, not an installed one.

Where the spans go: a segment as mod_tomograph's (bench/bench_segment.c, loaded with
ctypes from <build>/bench/bench_segment.so), made before the first span and named by
TOMOGRAPH_SEGMENT, so that every span is encoded and pushed onto a shared queue as in an
app under mod_tomograph; the benchmark empties the queue between rounds, untimed, as the
shipper would. Timings are the CPU time of the benchmark's thread."""

import ctypes
import gc
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import benchlib

BENCH_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH_DIR.parent / "tests" / "python"))

from assemble import assemble, extension  # noqa: E402  (needs the path above)

ASSEMBLED = "TOMOGRAPH_BENCH_ASSEMBLED"
QUEUE_RECORDS = 4096  # TomographQueueSize's default: a round must fit
EXPORTER_VARIABLES = ("TOMOGRAPH_SEGMENT", "TOMOGRAPH_ZIPKIN", "TOMOGRAPH_OTLP",
                      "TOMOGRAPH_STATSD", "TOMOGRAPH_SPAN_FILE")


class Segment:
    """The segment libtomograph enqueues on, from bench_segment.so."""

    def __init__(self, build):
        library = ctypes.CDLL(str(build / "bench" / "bench_segment.so"))
        library.bench_segment_open.argtypes = [ctypes.c_uint32]
        library.bench_segment_open.restype = ctypes.c_char_p
        library.bench_segment_drain.restype = ctypes.c_uint64
        library.bench_segment_lost.restype = ctypes.c_uint64
        self._library = library
        self.locator = library.bench_segment_open(QUEUE_RECORDS)
        if not self.locator:
            sys.exit("bench_segment_open failed")
        self.popped = 0

    def drain(self):
        """Empties the queue, as the shipper would; exits when spans were dropped."""
        self.popped += self._library.bench_segment_drain()
        if self._library.bench_segment_lost():
            sys.exit("the queue filled: spans were dropped (rounds too long)")


def enter(build):
    """In the first run: assembles the binding and runs this script again over it, then
    exits with its status. In that second run: makes the segment, imports the binding and
    returns (the tomograph module, the segment)."""
    build = Path(build).resolve()
    if os.environ.get(ASSEMBLED) != str(build):
        if not extension(build):
            sys.exit(f"no extension built in {build}/.libs: make -C {build} first")
        if not (build / "bench" / "bench_segment.so").is_file():
            sys.exit(f"no {build}/bench/bench_segment.so: make -C bench first")
        with tempfile.TemporaryDirectory(prefix="tomograph-bench-") as work:
            assemble(build, work)
            env = dict(os.environ, PYTHONPATH=work, LD_LIBRARY_PATH=str(build / ".libs"),
                       PYTHONDONTWRITEBYTECODE="1", **{ASSEMBLED: str(build)})
            for name in EXPORTER_VARIABLES:
                env.pop(name, None)
            command = ["/usr/bin/python3", str(Path(sys.argv[0]).resolve())] + sys.argv[1:]
            sys.exit(subprocess.run(command, env=env, check=False).returncode)
    segment = Segment(build)
    import tomograph
    with open("/proc/self/maps") as maps:
        libraries = {line.split()[-1] for line in maps if "libtomograph.so" in line}
    if not tomograph.__file__.startswith(os.environ["PYTHONPATH"]) \
            or libraries != {str((build / ".libs" / "libtomograph.so.0").resolve())}:
        sys.exit(f"not the build's binding: {tomograph.__file__}, {libraries}")
    return tomograph, segment


def alternate(cases, rounds, between):
    """Times cases, (name, function of n, n) each, in rounds: every case once a round, the
    first moving on by one each round, between() after each, untimed. Each case runs once
    first, untimed (warm). Returns {name: [CPU ns per call of each round]}."""
    per_call = {name: [] for name, _, _ in cases}
    for _, function, n in cases:
        function(n)
        between()
    for round_ in range(rounds):
        for k in range(len(cases)):
            name, function, n = cases[(round_ + k) % len(cases)]
            start = time.thread_time_ns()
            function(n)
            per_call[name].append((time.thread_time_ns() - start) / n)
            between()
    return per_call


def between_rounds(segment):
    """What runs between rounds: the queue emptied, the garbage collected."""
    def between():
        segment.drain()
        gc.collect()
    return between


def argument_parser(description):
    return benchlib.argument_parser(description)


print_header = benchlib.print_header
median = benchlib.median
