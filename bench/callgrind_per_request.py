#!/usr/bin/python3
"""Instructions per request, counted by callgrind, of httpd -X serving a static 1 KiB
file: mod_tomograph not loaded, then loaded with every request traced and both Zipkin
(the integration tests' receiver) and statsd (the real statsd) on.

Each configuration runs twice, with two request counts N1 < N2 (sequential GETs on one
keep-alive connection, --pause ms apart); start-up and shut-down cancel in the difference:
    per request = (I(N2) - I(N1)) / (N2 - N1).
The pause lets httpd's worker finish each request (its logging, the module's span) before
the next one comes, so that every request takes the same keep-alive path, the connection
handed back to the event MPM's listener; sent back to back, a request was found already
there a varying share of the time, which moved a run's count by a few hundred instructions
a request.
Counted for the httpd process alone, and for every process of the instance (callgrind
follows the forked shipper: one callgrind.out.<pid> each, summed).
Targets (issue 4): httpd <= 1.03 of untraced, every process <= 1.15.

The server is the minimal one (mpm_event, authz_core, mime, dir; no access log unless
--access-log), or with --stock Debian's: the modules its apache2 package enables by default,
with their .conf, and its default site's access log ("combined"). The traced server adds
the same to either: the module and benchlib.traced_directives."""

import re
import shutil
import tempfile
import time
from pathlib import Path

import benchlib
from benchlib import harness

HTTPD_TARGET = 1.03
INSTANCE_TARGET = 1.15
MODULE_OBJECT = "mod_tomograph.so"
# The shipper's outer frames: each holds all of its work, and says nothing.
SHIPPER_FRAMES = {"post_config", "tomograph_start", "start_shipper", "run_shipper",
                  "tg_shipper_run"}
# What httpd calls in the module for a request: all the module does for it is
# under these (inclusive), so their sum is its cost without the difference
# in how httpd's own threads met the client's requests in two runs (the
# event MPM's hand-offs, a few hundred instructions a request either way
# with no --pause).
REQUEST_ENTRY_POINTS = {"decide_trace", "hand_on_span", "finish_server_span",
                        "insert_error_filter", "note_error_log", "merge_dir_conf",
                        "count_request_body"}
TOP = 12
CONFIGS = {"off": "not loaded", "traced": "traced"}
HTTPD = {"httpd"}
# The issue's figure for httpd alone, "measured the same way on this kind of machine".
ISSUE_UNTRACED = 45000


def parse_args():
    parser = benchlib.argument_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--counts", type=int, nargs=2, default=(200, 1200),
                        metavar=("N1", "N2"), help="the two request counts (default 200 1200)")
    server = parser.add_mutually_exclusive_group()
    server.add_argument("--access-log", action="store_true",
                        help="give both minimal servers an access log (Common Log Format)")
    server.add_argument("--stock", action="store_true",
                        help="Debian's stock server: the modules its apache2 enables by "
                             "default (/etc/apache2/mods-enabled) with their .conf, and the "
                             "combined access log")
    parser.add_argument("--openstack-client", action="store_true",
                        help="every request carries what an OpenStack client sends (an "
                             "X-Auth-Token, X-OpenStack-Request-ID, its User-Agent, Accept)")
    parser.add_argument("--app", action="store_true",
                        help=f"GET {benchlib.APP_PATH}, a mod_wsgi daemon's app (its daemon "
                             "process counted with the others), instead of the static file")
    parser.add_argument("--directive", action="append", default=[], metavar="LINE",
                        help="a line added to the traced server's configuration (repeatable), "
                             "e.g. 'TomographPropagate tracecontext'")
    parser.add_argument("--unrecorded", action="store_true",
                        help="the module loaded with TomographSampleRate 0: what a request "
                             "costs that it decides not to record (most of them, at a low rate)")
    parser.add_argument("--pause", type=float, default=1, metavar="MS",
                        help="milliseconds between two requests (default 1; 0: back to back)")
    parser.add_argument("--keep", type=Path,
                        help="keep the callgrind outputs in this directory")
    args = parser.parse_args()
    if not 0 < args.counts[0] < args.counts[1]:
        parser.error("--counts needs 0 < N1 < N2")
    return args


def callgrind_total(path):
    """The Ir total of one callgrind output file."""
    text = path.read_text(errors="replace")
    match = re.search(r"^(?:totals|summary):\s*(\d+)", text, re.MULTILINE)
    if not match:
        raise AssertionError(f"{path}: no totals line")
    return int(match.group(1))


class Instance:
    """One configuration: with or without the module, its exporters started once."""

    def __init__(self, with_module, workdir, server, headers, target, pause, extra=()):
        """server: BenchHttpd's keywords for the configuration (access_log, stock, wsgi);
        headers: what each request carries beside Host (None: nothing); target: (path,
        the bytes its answer has or None); pause: seconds between two requests; extra:
        the module's directives beside benchlib.traced_directives."""
        self.with_module = with_module
        self.server = server
        self.headers = headers
        self.target = target
        self.pause = pause
        self.directives = []
        self.receiver = self.statsd = None
        if with_module:
            self.receiver = harness.ZipkinReceiver(workdir)
            self.statsd = harness.StatsdDaemon(workdir)
            self.directives = (benchlib.traced_directives(self.receiver.url, self.statsd.port)
                               + list(extra))
        self.recorded = not any(line.split()[:2] == ["TomographSampleRate", "0"]
                                for line in self.directives)

    def count_spans(self, path):
        return sum(1 for r in self.receiver.records()
                   if (r["span"].get("tags") or {}).get("http.path") == path)

    def run(self, requests, outdir):
        """Serves `requests` (plus the one readiness request) under callgrind; returns
        {process: (callgrind output, Ir)}, the processes being "httpd" and the rest by
        role ("shipper", or "child 1"... for mod_wsgi's daemons)."""
        outdir.mkdir(parents=True)
        benchlib.give_to_httpd_user(outdir)
        httpd = benchlib.BenchHttpd(self.with_module, self.directives, **self.server)
        prefix = ["valgrind", "--tool=callgrind", "--trace-children=yes", "--vgdb=no",
                  f"--callgrind-out-file={outdir}/callgrind.out.%p",
                  f"--log-file={outdir}/valgrind.%p.log"]
        path, expect_bytes = self.target
        spans_before = self.count_spans(path) if self.receiver else 0
        try:
            httpd.start(prefix, single_process=True, unprivileged=True)
            benchlib.get_many(httpd.port, path, requests, expect_bytes, self.headers,
                              self.pause)
            if self.receiver and self.recorded:
                # and the readiness GET's, of the static file
                expected = spans_before + requests + (path == benchlib.STATIC_PATH)
                harness.wait_for(lambda: self.count_spans(path) >= expected,
                                 f"{expected - spans_before} spans at the receiver", 60,
                                 interval=0.2, context=httpd.describe)
                # statsd gets the same batch right after Zipkin.
                time.sleep(0.5)
            httpd_pid = httpd.process.popen.pid
        finally:
            httpd.stop(timeout=60)
        processes = {}
        others = sorted(int(p.name.rsplit(".", 1)[1]) for p in outdir.glob("callgrind.out.*")
                        if p.name != f"callgrind.out.{httpd_pid}")
        for pid in [httpd_pid, *others]:
            path = outdir / f"callgrind.out.{pid}"
            if pid == httpd_pid:
                role = "httpd"
            elif "tg_shipper_run" in path.read_text(errors="replace"):
                role = "shipper"
            else:  # a mod_wsgi daemon: the same ones, in the same order, in every run
                role = f"child {sum(1 for r in processes if r.startswith('child')) + 1}"
            processes[role] = (path, callgrind_total(path))
        return processes

    def stop(self):
        for daemon in (self.receiver, self.statsd):
            if daemon:
                daemon.stop()


def function_costs(outfile, inclusive):
    """{function: Ir} of one callgrind output, and the set of functions of the module.
    callgrind lists a function once per source file its code came from (inlined
    headers, code without line info as ???): exclusive costs add up, inclusive ones
    are the largest entry."""
    argv = ["callgrind_annotate", "--auto=no", "--threshold=100", str(outfile)]
    if inclusive:
        argv.insert(1, "--inclusive=yes")
    done = benchlib.run(argv, timeout=120)
    costs, ours = {}, set()
    for line in done.stdout.splitlines():
        match = re.match(r"\s*([\d,]+)\s+\(\s*[\d.]+%\)\s+(\S.*?)(?:\s+\[(.*)\])?$", line)
        if not match or "PROGRAM TOTALS" in line:
            continue
        cost = int(match.group(1).replace(",", ""))
        function = match.group(2).rsplit(":", 1)[-1]
        if match.group(3) and match.group(3).endswith(MODULE_OBJECT):
            ours.add(function)
        costs[function] = max(costs.get(function, 0), cost) if inclusive \
            else costs.get(function, 0) + cost
    return costs, ours


def per_request_costs(outputs, key, n_diff, inclusive, baseline=None):
    """{function: Ir per request} between the N1 and N2 runs of `key`, less the same
    for the `baseline` key when given; and the module's functions."""
    (costs1, ours1), (costs2, ours2) = (function_costs(outputs[key, i], inclusive)
                                        for i in (0, 1))
    result = {f: (costs2.get(f, 0) - costs1.get(f, 0)) / n_diff for f in set(costs1) | set(costs2)}
    if baseline:
        base, _ = per_request_costs(outputs, baseline, n_diff, inclusive)
        result = {f: result.get(f, 0) - base.get(f, 0) for f in set(result) | set(base)}
    return result, ours1 | ours2


def print_top(title, costs, only=None):
    print(title)
    ranked = sorted(((cost, f) for f, cost in costs.items() if only is None or f in only),
                    reverse=True)
    for cost, function in ranked[:TOP]:
        print(f"    {cost:10.0f}  {function}")


def print_breakdown(outputs, n_diff):
    """Where the traced instance's instructions go, per request."""
    httpd_inclusive, ours = per_request_costs(outputs, ("traced", "httpd"), n_diff, True)
    print_top("httpd process, the module's functions, inclusive Ir per request:",
              httpd_inclusive, ours)
    print_top("httpd process, extra exclusive Ir per request (traced - not loaded), by "
              "function:", per_request_costs(outputs, ("traced", "httpd"), n_diff, False,
                                              baseline=("off", "httpd"))[0])
    if ("traced", "shipper") in {key for key, _ in outputs}:
        shipper_inclusive, ours = per_request_costs(outputs, ("traced", "shipper"), n_diff, True)
        print_top("shipper process, its functions, inclusive Ir per span:",
                  shipper_inclusive, ours - SHIPPER_FRAMES)
        print_top("shipper process, exclusive Ir per span, by function:",
                  per_request_costs(outputs, ("traced", "shipper"), n_diff, False)[0])


def print_module_cost(outputs, n_diff, untraced, untraced_instance, shipper):
    """The module's own instructions per request, from its entry points in the traced
    run alone, and what they make of the untraced httpd's count, and they and the shipper's
    (per span) of the untraced instance's (httpd and, for the app, its mod_wsgi daemon)."""
    inclusive, _ = per_request_costs(outputs, ("traced", "httpd"), n_diff, True)
    module = sum(inclusive.get(f, 0) for f in REQUEST_ENTRY_POINTS)
    print(f"the module's own instructions per request (its hooks, inclusive): {module:.0f}")
    print(f"  (untraced + that) / untraced: {(untraced + module) / untraced:.4f}")
    print(f"  the shipper per span: {shipper:.0f}; (untraced instance + both) / untraced "
          f"instance: {(untraced_instance + module + shipper) / untraced_instance:.4f}")


def server_configuration(args):
    """(BenchHttpd's keywords, a description) of the server the arguments ask for."""
    if args.stock:
        return ({"stock": True, "access_log": "combined"},
                "Debian stock: the modules " + ", ".join(benchlib.stock_modules())
                + f" (from {benchlib.DEBIAN_MODS_ENABLED}, with their .conf); "
                "access log \"combined\"")
    log = "common" if args.access_log else None
    return ({"access_log": log},
            "minimal: the modules " + ", ".join(benchlib.MINIMAL_MODULES)
            + f"; access log {'Common Log Format' if log else 'off'}")


def main():
    args = parse_args()
    benchlib.use_build(args.build)
    n1, n2 = args.counts
    server, described_server = server_configuration(args)
    server_name = "Debian stock" if args.stock else "minimal"
    benchlib.print_header("callgrind_per_request: instructions per request, "
                          f"httpd -X, {'a mod_wsgi app' if args.app else 'static 1 KiB file'}, "
                          f"{server_name} server")
    print(f"server: {described_server}")
    if args.unrecorded:
        args.directive.append("TomographSampleRate 0")
    if args.directive:
        print("traced server's extra directives: " + "; ".join(args.directive))
    headers = benchlib.OPENSTACK_CLIENT_HEADERS if args.openstack_client else None
    target = (benchlib.APP_PATH, None) if args.app else (benchlib.STATIC_PATH,
                                                        benchlib.STATIC_BYTES)
    if args.app:
        server["wsgi"] = True
    print(f"requests: {n1} and {n2} sequential GETs of {target[0]} on one "
          f"keep-alive connection, {args.pause:g} ms apart (plus one readiness GET each), "
          + ("with an OpenStack client's headers: " + ", ".join(headers) if headers
             else "with no header but Host and Accept-Encoding"))
    workdir = Path(args.keep or tempfile.mkdtemp(prefix="tomograph-callgrind-"))
    workdir.mkdir(parents=True, exist_ok=True)
    # httpd runs as its user from the start, and writes its profiles below.
    workdir.chmod(0o755)
    runs = {}      # (config, i): {process: (output, Ir)}
    outputs = {}   # ((config, process), i): output
    try:
        for config in CONFIGS:
            instance = Instance(config == "traced", workdir, server, headers, target,
                                args.pause / 1000, args.directive)
            try:
                for i, n in enumerate((n1, n2)):
                    runs[config, i] = instance.run(n, workdir / f"{config}-{n}")
                    for process, (path, ir) in runs[config, i].items():
                        outputs[(config, process), i] = path
                    described = ", ".join(f"{p} {ir:,d}" for p, (_, ir) in runs[config, i].items())
                    print(f"  {CONFIGS[config]:10s} N={n:5d}: Ir {described}", flush=True)
            finally:
                instance.stop()

        def per_request(config, roles=None):
            """Of the processes in roles ({"httpd"}, {"shipper"}), or of every process."""
            totals = [sum(ir for p, (_, ir) in runs[config, i].items()
                          if roles is None or p in roles) for i in (0, 1)]
            return (totals[1] - totals[0]) / (n2 - n1)

        untraced = per_request("off", HTTPD)
        print(f"untraced httpd, {server_name} server: "
              f"{untraced:,.0f} instructions per request (the issue's httpd alone: about "
              f"{ISSUE_UNTRACED // 1000}k, {untraced / ISSUE_UNTRACED:.2f} of it)")
        print("instructions per request:")
        for config, name in CONFIGS.items():
            print(f"  {name:10s}  "
                  f"httpd {per_request(config, HTTPD):8.0f}   "
                  f"every process {per_request(config):8.0f}")
        print(benchlib.ratio_line("ratio, httpd process",
                                  per_request("traced", HTTPD) / per_request("off", HTTPD),
                                  HTTPD_TARGET, True))
        print(benchlib.ratio_line("ratio, every process (shipper included)",
                                  per_request("traced") / per_request("off"),
                                  INSTANCE_TARGET, True))
        print_module_cost(outputs, n2 - n1, per_request("off", HTTPD), per_request("off"),
                          per_request("traced", {"shipper"}))
        print_breakdown(outputs, n2 - n1)
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
