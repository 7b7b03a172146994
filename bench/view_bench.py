#!/usr/bin/python3
"""How long tomograph-view takes over a big span file: writes N spans (default 1,000,000)
as the module's writer lays them out (src/tg_zipkin.c), in traces of 10 spans like an API
call's (a SERVER span, SQL statements, a call to another service and that service's
SERVER span and SQL), with 1% of the traces failing, then times the view as an operator
runs it: every trace to the terminal (to /dev/null), --slowest 10, --trace ID,
--errors --since, and --html (its 500 newest traces).  Prints the wall time, the rate and
the peak memory of each, the machine and the command.

Usage: bench/view_bench.py [--spans N] [--runs R] [--keep FILE]"""

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VIEW = REPO / "tools" / "tomograph-view"
T0 = 1765116000000000
SERVICES = ["nova", "glance", "keystone", "neutron", "cinder"]


def span_line(trace, span_id, kind, name, at, duration, local, tags, parent=None,
              remote=None):
    """One span as the module's writer lays it out (src/tg_zipkin.c): local and remote
    are the endpoints' JSON objects, tags the members of its tags object."""
    parent_member = f'"parentId":"{parent}",' if parent else ""
    remote_member = f',"remoteEndpoint":{remote}' if remote else ""
    return (f'{{"traceId":"{trace}",{parent_member}"id":"{span_id}","kind":"{kind}",'
            f'"name":"{name}","timestamp":{at},"duration":{duration},"localEndpoint":{local}'
            f'{remote_member},"annotations":[{{"timestamp":{at},"value":"start"}},'
            f'{{"timestamp":{at + duration},"value":"stop"}}],"tags":{{{tags}}}}}')


def http_tags(path, status):
    """An HTTP SERVER span's tags, with the error tag of a 5xx answer."""
    error = ',"error":"true"' if status.startswith("5") else ""
    return f'"http.method":"GET","http.path":"{path}","http.status_code":"{status}"{error}'


def select(trace, parent, span_id, service, at, duration, table, column):
    """A SQL statement's CLIENT span."""
    return span_line(trace, span_id, "CLIENT", "select", at, duration,
                     f'{{"serviceName":"{service}"}}',
                     f'"db.statement":"SELECT * FROM {table} WHERE {column} = ?"', parent)


def write_spans(path, count):
    """count spans in traces of 10, a trace every 10 ms; the trace ids of the last, the
    slowest and a failing one, and the time of the last tenth's start."""
    per_trace = 10
    with open(path, "w") as out:
        lines = []
        for t in range(count // per_trace):
            trace = f"{t * 2654435761 % (1 << 64):016x}{t:016x}"
            start = T0 + t * 10_000
            base = (t * 40503) % 100_000
            slow = 5_000_000 if t % 997 == 0 else 0
            status = "500" if t % 100 == 7 else "200"
            service, callee = SERVICES[t % 5], SERVICES[(t + 1) % 5]
            root, call, server = f"{t:08x}00000001", f"{t:08x}00000002", f"{t:08x}00000003"
            lines.append(span_line(
                trace, root, "SERVER", "get /v2/servers", start, 20_000 + base + slow,
                f'{{"serviceName":"{service}","ipv4":"10.0.0.{t % 250}","port":80}}',
                http_tags("/v2/servers", status),
                remote=f'{{"ipv4":"10.1.0.{t % 250}","port":{40000 + t % 20000}}}'))
            for i in range(4):
                lines.append(select(trace, root, f"{t:08x}0000001{i}", service,
                                    start + 500 + i * 1500, 900, "instances", "uuid"))
            at = start + 7000
            lines.append(span_line(trace, call, "CLIENT", "get /v2/images", at,
                                   10_000 + base + slow, f'{{"serviceName":"{service}"}}',
                                   f'"http.status_code":"{status}"', root))
            lines.append(span_line(
                trace, server, "SERVER", "get /v2/images", at + 300, 9_000 + base + slow,
                f'{{"serviceName":"{callee}","ipv4":"10.0.1.{t % 250}","port":9292}}',
                http_tags("/v2/images", status), call))
            for i in range(3):
                lines.append(select(trace, server, f"{t:08x}0000002{i}", callee,
                                    at + 1000 + i * 2000, 700, "images", "id"))
            if len(lines) >= 10000:
                out.write("\n".join(lines) + "\n")
                lines.clear()
        out.write("\n".join(lines) + ("\n" if lines else ""))
    traces = count // per_trace
    last = f"{(traces - 1) * 2654435761 % (1 << 64):016x}{traces - 1:016x}"
    since = (T0 + traces * 9 * 1000) // 1_000_000  # the last tenth of the traces
    return last, since


def timed(argv):
    """(seconds, peak resident MB) of a run of argv, its output to /dev/null."""
    start = time.monotonic()
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.monotonic() - start
    err = proc.stderr.read().decode()
    proc.stderr.close()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"{shlex.join(argv)} failed ({proc.returncode}): {err}")
    return seconds, usage.ru_maxrss / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3, help="runs of each, the median shown")
    parser.add_argument("--keep", type=Path, help="write the span file there and keep it")
    args = parser.parse_args()
    model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
                  if line.startswith("model name")), "unknown")
    print(f"== tomograph-view over {args.spans:,} spans")
    python = subprocess.run(["/usr/bin/python3", "--version"], capture_output=True,
                            text=True).stdout.strip()
    print(f"machine: nproc {os.cpu_count()}, CPU {model}; the view runs on {python}")
    print("load average at start: " + " ".join(open("/proc/loadavg").read().split()[:3]))
    print("command: " + shlex.join([str(Path(sys.argv[0]).resolve())] + sys.argv[1:]),
          flush=True)
    with tempfile.TemporaryDirectory(prefix="tomograph-view-bench-") as work:
        spans = args.keep or Path(work) / "spans.json"
        begun = time.monotonic()
        last, since = write_spans(spans, args.spans)
        size = spans.stat().st_size
        print(f"span file: {size / 1e6:.0f} MB, {size / args.spans:.0f} bytes a span "
              f"(written in {time.monotonic() - begun:.1f} s)")
        view = ["/usr/bin/python3", str(VIEW), "--colour", "never", str(spans)]
        cases = [("every trace, to the terminal", []),
                 ("--slowest 10", ["--slowest", "10"]),
                 ("--trace ID", ["--trace", last]),
                 ("--errors --since (the last tenth)",
                  ["--errors", "--since", time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                        time.gmtime(since))]),
                 ("--html (500 newest traces)", ["--html", str(Path(work) / "page.html")])]
        print(f"{'case':<36} {'seconds':>8} {'spans/s':>11} {'peak MB':>8}")
        for name, extra in cases:
            runs = [timed(view + extra) for _ in range(args.runs)]
            seconds = statistics.median(r[0] for r in runs)
            peak = max(r[1] for r in runs)
            print(f"{name:<36} {seconds:8.2f} {args.spans / seconds:11,.0f} {peak:8.0f}",
                  flush=True)
    print("load average at end: " + " ".join(open("/proc/loadavg").read().split()[:3]))


if __name__ == "__main__":
    main()
