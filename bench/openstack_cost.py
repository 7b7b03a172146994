#!/usr/bin/python3
"""What tracing costs keystone and glance: Debian 12's keystone and glance-api served by one
httpd under mod_wsgi (tests/openstack/cloud.py: one Layout, the services' databases in
SQLite with WAL), in five configurations measured one after the other in one run (each
httpd started, warmed up, measured, stopped before the next starts):

  untraced     no module, [profiler] enabled = false;
  module       mod_tomograph loaded (every request a SERVER span, to a span file, as the
               openstack suite configures it), osprofiler disabled;
  tomograph    the module with TomographHMACKey and TomographDeepTraceRate 1 (every request
               handed a signed X-Trace-Info), [profiler] enabled with hmac_keys,
               trace_sqlalchemy and connection_string = tomograph:// (the driver imported
               into both daemons by WSGIImportScript): osprofiler's spans leave through the
               module's queue;
  redis        the same, but connection_string = redis://127.0.0.1:<port>: osprofiler's own
               redis driver (an LPUSH per span start and per span stop, in the request),
               to Debian's redis-server, started here on loopback (nothing saved);
  noop         the same with connection_string = noop://, a driver of this benchmark's that
               drops every notification (NOOP_DRIVER, imported like tomograph's): what
               osprofiler's own Python costs, apart from what a driver does with a span.

Two requests, each sent one after the other on loopback (a connection each, as a client
that does not keep connections): keystone's token request (POST /v3/auth/tokens, the admin
password, project scope) and glance's image list (GET /v2/images, with a token obtained
from keystone first; glance's keystonemiddleware validates it at keystone once and then
caches it). --warmup requests first, then --requests measured; the median and mean latency
(ms) per request and configuration, the CPU time of the httpd's processes (parent,
workers, shipper, mod_wsgi daemons; and redis-server's apart) per measured request, and the
ratios of the medians to the untraced one's.
Targets (issue 17): tomograph/untraced <= 1.05, and (tomograph - untraced) less than half
of (redis - untraced).

Each traced configuration is checked to have done its work, so that no configuration is
cheap for having traced nothing: the module's span file holds a SERVER span per request
(and, with tomograph://, osprofiler's wsgi and db spans, counted per request), and redis
holds osprofiler's notifications (two per span), counted per request (noop:// counts what it
drops, by trace). --rounds N repeats the five configurations, in reverse order every other
round, and reports the medians over all rounds beside each round's: the spread of one
configuration's rounds is the noise that a ratio is to be read against.

Needs root (httpd runs the daemons as keystone and glance) and the packages of
scripts/setup-openstack. Usage: bench/openstack_cost.py [--build DIR] [--requests N]
[--warmup N] [--rounds N]"""

import json
import os
import statistics
import sys
import time
from pathlib import Path

import benchlib
from benchlib import harness

sys.path.insert(0, str(benchlib.REPO_ROOT / "tests" / "openstack"))

import cloud  # noqa: E402  (tests/openstack: the layout and the httpd serving both)

CONFIGS = ("untraced", "module", "noop", "tomograph", "redis")
REQUESTS = (("keystone", "token request", "POST /v3/auth/tokens"),
            ("glance", "image list", "GET /v2/images"))
SPAN_FILE = "logs/spans.jsonl"
# The module's own SERVER spans are named after the request ("post /v3/auth/tokens"),
# osprofiler's by what they are ("wsgi", "db").
HTTP_METHODS = ("get ", "post ", "put ", "delete ", "head ", "patch ", "options ")
DRIVER = "osprofiler_driver"
TARGET_OVER_UNTRACED = 1.05
TARGET_SHARE_OF_REDIS = 0.5


def parse_args():
    parser = benchlib.argument_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100,
                        help="measured requests of each kind per configuration (100)")
    parser.add_argument("--warmup", type=int, default=20,
                        help="requests of each kind before measuring (20)")
    parser.add_argument("--rounds", type=int, default=1,
                        help="times the four configurations run (1; every other round in "
                             "reverse order)")
    return parser.parse_args()


# osprofiler with a driver that drops every notification (noop://): what osprofiler's own
# Python costs a span (its SQLAlchemy hooks, its notification's dict, ids and timestamps),
# apart from what a driver does with it. It counts what it was handed, a count a trace
# (base_id), and writes the counts when the daemon's interpreter ends (mod_wsgi runs atexit
# then).
NOOP_DRIVER = '''"""osprofiler's notifications dropped (bench/openstack_cost.py's noop://)."""
import atexit
import json
import os
from osprofiler.drivers import base

_COUNTS = {{}}


def _write():
    for project, traces in _COUNTS.items():
        with open(os.path.join({counts_dir!r}, f"{{project}}-{{os.getpid()}}"), "w") as out:
            json.dump(list(traces.values()), out)


atexit.register(_write)


class NoopDriver(base.Driver):
    def __init__(self, connection_str, project=None, service=None, host=None, **kwargs):
        super().__init__(connection_str, project=project, service=service, host=host, **kwargs)
        self._traces = _COUNTS.setdefault(project or service, {{}})

    @classmethod
    def get_name(cls):
        return "noop"

    def notify(self, info, **kwargs):
        base_id = info.get("base_id")
        self._traces[base_id] = self._traces.get(base_id, 0) + 1
'''


def noop_driver(layout):
    """The noop:// driver's script in the layout (made once), and its counts' folder."""
    folder = layout.root / "bench"
    script = folder / "noop_driver.py"
    counts = folder / "counts"
    if not script.exists():
        folder.mkdir(mode=0o755)
        counts.mkdir()
        counts.chmod(0o1777)  # the daemons (users keystone and glance) write there
        script.write_text(NOOP_DRIVER.format(counts_dir=str(counts)))
        script.chmod(0o644)
    return script, counts


def noop_spans(counts_dir):
    """{project: the median of osprofiler's spans a trace} that the noop:// driver counted
    in the daemons that ended (nearly all their traces are the measured requests': the
    others are the warm-up's, the start's and glance's token checks), and clears them."""
    found = {}
    for path in counts_dir.iterdir():
        project = path.name.rsplit("-", 1)[0]
        found.setdefault(project, []).extend(json.loads(path.read_text() or "[]"))
        path.unlink()
    # Two notifications a span, its start and its stop.
    return {project: statistics.median(counts) / 2 for project, counts in found.items()}


def session_cpu(session):
    """CPU seconds (user + system) so far of the processes of a session: an httpd's (its
    parent, workers, shipper, mod_wsgi daemons)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[3]) == session:
            total += int(fields[11]) + int(fields[12])
    return total / tick


def process_cpu(pid):
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def profiler(connection_string):
    return {"enabled": "true", "hmac_keys": cloud.HMAC_KEY, "trace_sqlalchemy": "true",
            "connection_string": connection_string}


def services_of(config, layout, redis, name):
    """The cloud.Services of a configuration."""
    exporter = ["TomographBatch 512 200", f"TomographSpanFile {SPAN_FILE}"]
    deep = [f"TomographHMACKey {cloud.HMAC_KEY}", "TomographDeepTraceRate 1"]
    driver = [layout.python_dir / "tomograph" / f"{DRIVER}.py"]
    if config == "untraced":
        return cloud.Services(layout, name, with_module=False)
    if config == "module":
        return cloud.Services(layout, name, True, exporter)
    if config == "noop":
        script, _ = noop_driver(layout)
        return cloud.Services(layout, name, True, exporter + deep,
                              profiler=profiler("noop://"), wsgi_imports=driver + [script])
    if config == "tomograph":
        return cloud.Services(layout, name, True, exporter + deep,
                              profiler=profiler("tomograph://"), wsgi_imports=driver)
    # The driver imported too (it only registers a class), so that the two differ in the
    # connection string alone.
    return cloud.Services(layout, name, True, exporter + deep, profiler=profiler(redis.url),
                          wsgi_imports=driver)


def span_counts(path):
    """{service: (the module's SERVER spans, osprofiler's spans)} in a span file."""
    counts = {}
    for line in harness.span_file_lines(path):
        span = json.loads(line)
        service = (span.get("localEndpoint") or {}).get("serviceName")
        module, osprofiler = counts.get(service, (0, 0))
        if span.get("name", "").startswith(HTTP_METHODS):
            module += 1
        else:
            osprofiler += 1
        counts[service] = (module, osprofiler)
    return counts


def settled_span_counts(path, at_least, service):
    """The span file's counts once the module has written at least `at_least` SERVER spans
    of service and no more lines come (the shipper writes by batches)."""
    harness.wait_for(lambda: span_counts(path).get(service, (0, 0))[0] >= at_least,
                     f"{at_least} SERVER spans of {service} in {path}", timeout=60,
                     interval=0.2)
    previous = None
    while True:
        counts = span_counts(path)
        if counts == previous:
            return counts
        previous = counts
        time.sleep(0.5)


def timed(services, service, headers, body, expect):
    method, path = ("POST", "/v3/auth/tokens") if service == "keystone" else ("GET", "/v2/images")
    started = time.perf_counter()
    response = services.request(service, method, path, headers, body)
    elapsed = time.perf_counter() - started
    if response.status != expect:
        raise AssertionError(f"{service} {method} {path}: {response.status} "
                             f"{response.body[:500]}\n{services.describe()}")
    return elapsed * 1000.0


class Result:
    """What one configuration measured, over its rounds: latencies[service] (ms of each
    measured request), cpu[service] (CPU ms of the httpd's processes a request, one value a
    round), redis_cpu[service] (redis-server's), spans[service] = (the module's SERVER
    spans, osprofiler's spans) a measured request, dropped (the module's lost spans)."""

    def __init__(self):
        self.latencies, self.cpu, self.redis_cpu, self.spans = {}, {}, {}, {}
        self.round_medians = {}
        self.dropped = 0


def measure(config, services, redis, args, result):
    """Sends each request --warmup times, then --requests times timed, and counts what the
    measured ones traced."""
    span_file = services.httpd.root / SPAN_FILE
    session = services.httpd.process.popen.pid
    traced = config != "untraced"
    for service, _, _ in REQUESTS:
        if service == "keystone":
            headers = None
            body = cloud.password_auth("admin", cloud.ADMIN_PASSWORD, "admin")
            expect = 201
        else:
            _, token = services.token()
            headers, body, expect = {"X-Auth-Token": token}, None, 200
        if traced:
            spans = settled_span_counts(span_file, 0, service).get(service, (0, 0))
        for _ in range(args.warmup):
            timed(services, service, headers, body, expect)
        if traced:
            before = settled_span_counts(span_file, spans[0] + args.warmup,
                                         service)[service]
        if config == "redis":
            notified = redis.notifications()[0].get(service, 0)
            redis_cpu = process_cpu(redis.process.popen.pid)
        cpu = session_cpu(session)
        times = [timed(services, service, headers, body, expect)
                 for _ in range(args.requests)]
        if traced:
            # The shipper writes the spans after the requests: its CPU counts too.
            after = settled_span_counts(span_file, before[0] + args.requests,
                                        service)[service]
        result.cpu.setdefault(service, []).append(
            (session_cpu(session) - cpu) * 1000.0 / args.requests)
        result.latencies.setdefault(service, []).extend(times)
        if not traced:
            continue
        module_spans = (after[0] - before[0]) / args.requests
        osprofiler_spans = (after[1] - before[1]) / args.requests
        if config == "redis":
            result.redis_cpu.setdefault(service, []).append(
                (process_cpu(redis.process.popen.pid) - redis_cpu) * 1000.0 / args.requests)
            # Two notifications a span, its start and its stop.
            osprofiler_spans = ((redis.notifications()[0].get(service, 0) - notified)
                                / 2 / args.requests)
        result.spans[service] = (module_spans, osprofiler_spans)


def check_traced(config, result):
    """Fails when a configuration did not trace what it is there to trace."""
    for service, (module_spans, osprofiler_spans) in result.spans.items():
        if module_spans < 1:
            raise AssertionError(f"{config}: {module_spans} SERVER spans a request of {service}")
        if config in ("module", "noop") and osprofiler_spans:
            raise AssertionError(f"{config}: {osprofiler_spans} osprofiler spans a request of "
                                 f"{service} in the span file")
        if config in ("tomograph", "redis") and osprofiler_spans < 2:
            raise AssertionError(f"{config}: {osprofiler_spans} osprofiler spans a request "
                                 f"of {service}: osprofiler did not trace")


def run_config(config, layout, redis, args, round_number, result):
    name = f"{config}-{round_number}"
    services = services_of(config, layout, redis, name)
    started = time.monotonic()
    services.start()
    try:
        print(f"  {name}: started in {time.monotonic() - started:.0f} s", flush=True)
        measure(config, services, redis, args, result)
        check_traced(config, result)
        dropped = 0
        if config != "untraced":
            dropped = services.httpd.status_counters().get("SpansDropped", 0)
        errors = services.service_log_errors()
    finally:
        services.stop()
    result.dropped += dropped
    if config == "noop":
        # Counted by the daemons as they ended, a count a trace.
        counted = noop_spans(noop_driver(layout)[1])
        for service, _, _ in REQUESTS:
            if not counted.get(service):
                raise AssertionError(f"noop: osprofiler notified nothing in {service}")
            result.spans[service] = (result.spans[service][0], counted[service])
    for service, label, _ in REQUESTS:
        times = result.latencies[service][-args.requests:]
        result.round_medians.setdefault(service, []).append(statistics.median(times))
        line = (f"  {name}: {service} {label}: median {statistics.median(times):.1f} ms, "
                f"mean {statistics.mean(times):.1f} ms, CPU {result.cpu[service][-1]:.1f} ms")
        if service in result.spans:
            module_spans, osprofiler_spans = result.spans[service]
            line += (f"; {module_spans:.2f} module spans and {osprofiler_spans:.1f} osprofiler "
                     "spans a request")
        if service in result.redis_cpu:
            line += f"; redis-server CPU {result.redis_cpu[service][-1]:.2f} ms a request"
        print(line, flush=True)
    if dropped:
        print(f"  {name}: WARNING: the module dropped {dropped} spans", flush=True)
    if errors:
        print(f"  {name}: the services logged errors: {sorted(errors)[:5]}", flush=True)


def main():
    args = parse_args()
    benchlib.use_build(args.build)
    why_not = cloud.missing()
    if why_not:
        sys.exit(f"openstack_cost: cannot run: {why_not}")
    if not Path("/usr/bin/redis-server").exists():
        sys.exit("openstack_cost: cannot run: /usr/bin/redis-server missing (apt-get install "
                 "redis-server python3-redis)")
    benchlib.print_header("openstack_cost: keystone and glance untraced, with the module, with "
                          "osprofiler through tomograph:// and through redis")
    started = time.monotonic()
    layout = cloud.Layout().build()
    redis = None
    try:
        redis = cloud.RedisServer(layout.root / "redis")
        print(f"layout built in {layout.seconds:.0f} s ({layout.root}); redis-server on "
              f"{redis.url}", flush=True)
        results = {config: Result() for config in CONFIGS}
        for round_number in range(args.rounds):
            order = CONFIGS if round_number % 2 == 0 else tuple(reversed(CONFIGS))
            for config in order:
                if config == "redis":
                    redis.flush()
                run_config(config, layout, redis, args, round_number, results[config])
        report(args, results)
    finally:
        if redis is not None:
            redis.stop()
        layout.remove()
    print(f"load average at end: {benchlib.load_average()}; {time.monotonic() - started:.0f} s")


LABELS = {
    "untraced": "untraced (no module, osprofiler off)",
    "module": "module alone (osprofiler off)",
    "noop": "module + osprofiler, no-op driver",
    "tomograph": "module + osprofiler via tomograph://",
    "redis": "module + osprofiler via redis://",
}


def osprofiler_span_us():
    """µs that osprofiler's profiler.start() and stop() take for a db span as its SQLAlchemy
    hook makes it, the notifier doing nothing: its own Python a span, in this process (the
    best of 5 rounds of 20,000)."""
    from osprofiler import notifier, profiler
    notifier.set(lambda info: None)
    profiler.init(cloud.HMAC_KEY, base_id="5b0b7fd3-54d1-4d7c-bc61-ab2a5f39c1b1",
                  parent_id="5b0b7fd3-54d1-4d7c-bc61-ab2a5f39c1b2")
    best = None
    for _ in range(5):
        started = time.perf_counter()
        for i in range(20000):
            profiler.start("db", info={"db": {"statement": "SELECT a FROM b WHERE c = ?",
                                              "params": {"c": i}}})
            profiler.stop()
        elapsed = (time.perf_counter() - started) / 20000 * 1e6
        best = elapsed if best is None else min(best, elapsed)
    profiler.clean()
    return best


def report(args, results):
    print()
    print(f"{args.requests} requests of each kind per configuration and round, after "
          f"{args.warmup} warm-up ones, {args.rounds} round(s); sequential, a connection a "
          "request, on loopback. CPU: the httpd's processes (parent, workers, shipper, "
          "mod_wsgi daemons) per request, median of the rounds")
    print()
    print("| request | configuration | median ms | mean ms | rounds' medians ms "
          "| median / untraced | CPU ms / request | module spans / request "
          "| osprofiler spans / request |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    medians, cpus = {}, {}
    for service, label, request in REQUESTS:
        base = statistics.median(results["untraced"].latencies[service])
        for config in CONFIGS:
            result = results[config]
            times = result.latencies[service]
            medians[config, service] = statistics.median(times)
            cpus[config, service] = statistics.median(result.cpu[service])
            module_spans, osprofiler_spans = result.spans.get(service, (0, 0))
            print(f"| {service} {label} (`{request}`) | {LABELS[config]} "
                  f"| {medians[config, service]:.1f} | {statistics.mean(times):.1f} "
                  f"| {min(result.round_medians[service]):.1f}-"
                  f"{max(result.round_medians[service]):.1f} "
                  f"| {medians[config, service] / base:.3f} | {cpus[config, service]:.1f} "
                  f"| {module_spans:.0f} | {osprofiler_spans:.0f} |")
    print()
    for service, label, _ in REQUESTS:
        m = {config: medians[config, service] for config in CONFIGS}
        c = {config: cpus[config, service] for config in CONFIGS}
        untraced = m["untraced"]
        print(f"{service} {label}: of untraced, module alone {m['module'] / untraced:.3f}, "
              f"tomograph {m['tomograph'] / untraced:.3f}, redis {m['redis'] / untraced:.3f}")
        print("  " + benchlib.ratio_line("tomograph / untraced", m["tomograph"] / untraced,
                                         TARGET_OVER_UNTRACED, True))
        if m["redis"] > untraced:
            print("  " + benchlib.ratio_line(
                "(tomograph - untraced) / (redis - untraced)",
                (m["tomograph"] - untraced) / (m["redis"] - untraced), TARGET_SHARE_OF_REDIS,
                True))
        else:
            print("  (tomograph - untraced) / (redis - untraced): redis cost nothing measurable")
        if c["redis"] > c["untraced"]:
            print(f"  in CPU: tomograph / untraced {c['tomograph'] / c['untraced']:.3f}, "
                  f"(tomograph - untraced) / (redis - untraced) "
                  f"{(c['tomograph'] - c['untraced']) / (c['redis'] - c['untraced']):.3f}")
        spans = results["tomograph"].spans[service][1] or 1
        print(f"  where the latency goes (medians, ms): the module {m['module'] - untraced:+.1f}, "
              f"osprofiler's own Python (no-op driver) {m['noop'] - m['module']:+.1f}, "
              f"tomograph:// driver {m['tomograph'] - m['noop']:+.1f}, "
              f"redis driver {m['redis'] - m['noop']:+.1f}; per osprofiler span: "
              f"osprofiler {(m['noop'] - m['module']) * 1000 / spans:.0f} us, "
              f"tomograph:// {(m['tomograph'] - m['noop']) * 1000 / spans:.0f} us, "
              f"redis {(m['redis'] - m['noop']) * 1000 / spans:.0f} us")
        print(f"  the same in CPU (ms): the module {c['module'] - c['untraced']:+.1f}, "
              f"osprofiler {c['noop'] - c['module']:+.1f}, "
              f"tomograph:// {c['tomograph'] - c['noop']:+.1f}, "
              f"redis {c['redis'] - c['noop']:+.1f} (+ redis-server "
              f"{statistics.median(results['redis'].redis_cpu[service]):.2f})")
    print(f"osprofiler's own start + stop of a db span, a null notifier, in this process: "
          f"{osprofiler_span_us():.1f} us")
    lost = {config: r.dropped for config, r in results.items() if r.dropped}
    print(f"spans dropped by the module: {lost or 'none'}")


if __name__ == "__main__":
    main()
