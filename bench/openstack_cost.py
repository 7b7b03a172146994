#!/usr/bin/python3
"""What tracing costs keystone and glance: Debian 12's keystone and glance-api served by one
httpd under mod_wsgi (tests/openstack/cloud.py: one Layout, the services' databases in
SQLite with WAL), in four configurations measured one after the other in one run (each
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
               to Debian's redis-server, started here on loopback (nothing saved).

Two requests, each sent one after the other on loopback (a connection each, as a client
that does not keep connections): keystone's token request (POST /v3/auth/tokens, the admin
password, project scope) and glance's image list (GET /v2/images, with a token obtained
from keystone first; glance's keystonemiddleware validates it at keystone once and then
caches it). --warmup requests first, then --requests measured; the median and mean latency
(ms) per request and configuration, and the ratios of the medians to the untraced one's.
Targets (issue 17): tomograph/untraced <= 1.05, and (tomograph - untraced) less than half
of (redis - untraced).

Each traced configuration is checked to have done its work, so that no configuration is
cheap for having traced nothing: the module's span file holds a SERVER span per request
(and, with tomograph://, osprofiler's wsgi and db spans, counted per request), and redis
holds osprofiler's notifications (two per span), counted per request. --rounds N repeats
the four configurations, in reverse order every other round, and reports the medians over
all rounds.

Needs root (httpd runs the daemons as keystone and glance) and the packages of
scripts/setup-openstack. Usage: bench/openstack_cost.py [--build DIR] [--requests N]
[--warmup N] [--rounds N]"""

import json
import statistics
import sys
import time
from pathlib import Path

import benchlib
from benchlib import harness

sys.path.insert(0, str(benchlib.REPO_ROOT / "tests" / "openstack"))

import cloud  # noqa: E402  (tests/openstack: the layout and the httpd serving both)

CONFIGS = ("untraced", "module", "tomograph", "redis")
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


class Redis:
    """Debian's redis-server on a free loopback port, in a folder of its own, nothing
    saved; stop() ends it."""

    def __init__(self, root):
        self.dir = Path(root) / "redis"
        self.dir.mkdir(mode=0o755)
        self.port = harness.free_port()
        self.process = harness.ChildProcess(
            "redis-server",
            ["/usr/bin/redis-server", "--bind", "127.0.0.1", "--port", str(self.port),
             "--save", "", "--appendonly", "no", "--dir", str(self.dir)],
            self.dir / "redis.log")
        try:
            self.process.wait_for_output(r"Ready to accept connections")
        except BaseException:
            self.process.stop()
            raise

    @property
    def url(self):
        # osprofiler 3.4.3's redis driver: StrictRedis.from_url(connection_string).
        return f"redis://127.0.0.1:{self.port}"

    def client(self):
        import redis
        return redis.Redis(host="127.0.0.1", port=self.port)

    def notifications(self):
        """{project (keystone, glance): osprofiler notifications stored}, and the keys."""
        client = self.client()
        counts, keys = {}, 0
        try:
            for key in client.scan_iter("osprofiler_opt:*", count=1000):
                keys += 1
                for item in client.lrange(key, 0, -1):
                    project = json.loads(item).get("project")
                    counts[project] = counts.get(project, 0) + 1
        finally:
            client.close()
        return counts, keys

    def flush(self):
        client = self.client()
        try:
            client.flushall()
        finally:
            client.close()

    def stop(self):
        self.process.stop()


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


def measure(config, services, redis, args):
    """{service: [ms of each measured request]} and what the configuration traced:
    {service: (SERVER spans a request, osprofiler spans a request)}."""
    span_file = services.httpd.root / SPAN_FILE
    sent = args.warmup + args.requests
    latencies, traced = {}, {}
    for service, _, _ in REQUESTS:
        if service == "keystone":
            headers = None
            body = cloud.password_auth("admin", cloud.ADMIN_PASSWORD, "admin")
            expect = 201
        else:
            _, token = services.token()
            headers, body, expect = {"X-Auth-Token": token}, None, 200
        if config != "untraced":
            before = settled_span_counts(span_file, 0, service).get(service, (0, 0))
        if config == "redis":
            redis_before = redis.notifications()[0].get(service, 0)
        times = [timed(services, service, headers, body, expect) for _ in range(sent)]
        latencies[service] = times[args.warmup:]
        if config == "untraced":
            continue
        after = settled_span_counts(span_file, before[0] + sent, service)[service]
        module_spans = (after[0] - before[0]) / sent
        osprofiler_spans = (after[1] - before[1]) / sent
        if config == "redis":
            notifications = redis.notifications()[0].get(service, 0) - redis_before
            # Two notifications a span, its start and its stop.
            osprofiler_spans = notifications / 2 / sent
        traced[service] = (module_spans, osprofiler_spans)
    return latencies, traced


def check_traced(config, traced):
    """Fails when a configuration did not trace what it is there to trace."""
    for service, (module_spans, osprofiler_spans) in traced.items():
        if module_spans < 1:
            raise AssertionError(f"{config}: {module_spans} SERVER spans a request of {service}")
        if config == "module" and osprofiler_spans:
            raise AssertionError(f"{config}: osprofiler made spans ({osprofiler_spans} a "
                                 f"request of {service}) while disabled")
        if config in ("tomograph", "redis") and osprofiler_spans < 2:
            raise AssertionError(f"{config}: {osprofiler_spans} osprofiler spans a request "
                                 f"of {service}: osprofiler did not trace")


def run_config(config, layout, redis, args, round_number):
    name = f"{config}-{round_number}"
    services = services_of(config, layout, redis, name)
    started = time.monotonic()
    services.start()
    try:
        print(f"  {name}: started in {time.monotonic() - started:.0f} s", flush=True)
        latencies, traced = measure(config, services, redis, args)
        check_traced(config, traced)
        dropped = None
        if config != "untraced":
            dropped = services.httpd.status_counters().get("SpansDropped")
        errors = services.service_log_errors()
    finally:
        services.stop()
    for service, label, _ in REQUESTS:
        line = (f"  {name}: {service} {label}: median {statistics.median(latencies[service]):.1f}"
                f" ms, mean {statistics.mean(latencies[service]):.1f} ms")
        if service in traced:
            module_spans, osprofiler_spans = traced[service]
            line += (f"; {module_spans:.2f} module spans and {osprofiler_spans:.1f} osprofiler "
                     "spans a request")
        print(line, flush=True)
    if dropped:
        print(f"  {name}: WARNING: the module dropped {dropped} spans", flush=True)
    if errors:
        print(f"  {name}: the services logged errors: {sorted(errors)[:5]}", flush=True)
    return latencies, traced, dropped


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
        redis = Redis(layout.root)
        print(f"layout built in {layout.seconds:.0f} s ({layout.root}); redis-server on "
              f"{redis.url}", flush=True)
        latencies = {config: {service: [] for service, _, _ in REQUESTS} for config in CONFIGS}
        traced = {config: {} for config in CONFIGS}
        dropped = {}
        for round_number in range(args.rounds):
            order = CONFIGS if round_number % 2 == 0 else tuple(reversed(CONFIGS))
            for config in order:
                if config == "redis":
                    redis.flush()
                measured, spans, lost = run_config(config, layout, redis, args, round_number)
                for service, times in measured.items():
                    latencies[config][service].extend(times)
                traced[config].update(spans)
                dropped[config] = (dropped.get(config) or 0) + (lost or 0)
        report(args, latencies, traced, dropped)
    finally:
        if redis is not None:
            redis.stop()
        layout.remove()
    print(f"load average at end: {benchlib.load_average()}; {time.monotonic() - started:.0f} s")


def report(args, latencies, traced, dropped):
    print()
    print(f"{args.requests} requests of each kind per configuration and round, after "
          f"{args.warmup} warm-up ones, {args.rounds} round(s); sequential, a connection a "
          "request, on loopback; latency in ms")
    print()
    print("| request | configuration | median ms | mean ms | median / untraced "
          "| module spans / request | osprofiler spans / request |")
    print("|---|---|---:|---:|---:|---:|---:|")
    medians = {}
    for service, label, request in REQUESTS:
        base = statistics.median(latencies["untraced"][service])
        for config in CONFIGS:
            times = latencies[config][service]
            medians[config, service] = statistics.median(times)
            module_spans, osprofiler_spans = traced[config].get(service, (0, 0))
            print(f"| {service} {label} (`{request}`) | {config} "
                  f"| {medians[config, service]:.1f} | {statistics.mean(times):.1f} "
                  f"| {medians[config, service] / base:.3f} "
                  f"| {module_spans:.0f} | {osprofiler_spans:.0f} |")
    print()
    for service, label, _ in REQUESTS:
        untraced = medians["untraced", service]
        tomograph = medians["tomograph", service] - untraced
        redis = medians["redis", service] - untraced
        print(f"{service} {label}: module alone {medians['module', service] / untraced:.3f}, "
              f"tomograph {medians['tomograph', service] / untraced:.3f}, "
              f"redis {medians['redis', service] / untraced:.3f} of untraced; osprofiler's "
              f"cost over untraced: tomograph:// {tomograph:+.1f} ms, redis {redis:+.1f} ms")
        print("  " + benchlib.ratio_line("tomograph / untraced",
                                         medians["tomograph", service] / untraced,
                                         TARGET_OVER_UNTRACED, True))
        if redis > 0:
            print("  " + benchlib.ratio_line("(tomograph - untraced) / (redis - untraced)",
                                             tomograph / redis, TARGET_SHARE_OF_REDIS, True))
        else:
            print("  (tomograph - untraced) / (redis - untraced): redis cost nothing measurable")
    lost = {config: n for config, n in dropped.items() if n}
    print(f"spans dropped by the module: {lost or 'none'}")


if __name__ == "__main__":
    main()
