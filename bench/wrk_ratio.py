#!/usr/bin/python3
"""Requests per second under wrk on loopback, mod_tomograph not loaded vs loaded (every
request traced, Zipkin and statsd on), for a static 1 KiB file and a mod_wsgi app in
daemon mode. Both servers run side by side; the runs alternate (off, on, off, on, ...)
so that drift in the machine hits both alike, and the ratio of the medians is reported
(target >= 0.97).

The collectors are bench/receiver (a Zipkin receiver that answers 202 at once and a
statsd port nobody reads): a collector runs on another machine in production, and one
in node.js here would take CPU from the servers being compared.

With --pin, the servers (and every process they start) run on the upper half of the CPUs,
wrk and the collectors on the lower half: the load generator no longer competes with the
server it measures for the same cores, which on a 2-core machine is otherwise what the
scheduler decides run by run."""

import os
import re
import subprocess
import sys

import benchlib
from benchlib import harness

TARGET = 0.97
TARGETS = (("static 1 KiB file", benchlib.STATIC_PATH),
           ("mod_wsgi app (daemon)", benchlib.APP_PATH))
CONFIGS = ("off", "on")
# The shipper is the one child of httpd that is not a worker (ThreadsPerChild 25).
SHIPPER_MAX_THREADS = 10
ROLES = ("httpd", "wsgi daemon", "shipper", "collectors")


def parse_args():
    parser = benchlib.argument_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each configuration (5)")
    parser.add_argument("--seconds", type=int, default=5, help="length of a run (5)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--pin", action="store_true",
                        help="servers on the upper half of the CPUs, wrk and the collectors on "
                             "the lower half")
    return parser.parse_args()


def cpu_halves():
    """(load generator's CPU list, servers' CPU list) for taskset: the lower and upper halves
    of the CPUs this process may use."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        sys.exit("--pin needs at least 2 CPUs")
    half = len(cpus) // 2
    return (",".join(map(str, cpus[:half])), ",".join(map(str, cpus[half:])))


def pinned_to(cpus):
    """The command prefix that runs a program on `cpus` (None: anywhere)."""
    return ["taskset", "-c", cpus] if cpus else []


def build_receiver(build):
    benchlib.run(["make", "-s", "-C", str(benchlib.BENCH_DIR), f"BUILD={build.resolve()}"],
                 timeout=300)
    return build.resolve() / "bench" / "receiver"


class Receiver:
    """bench/receiver: its Zipkin URL and statsd port; it stops when its stdin closes."""

    def __init__(self, program, prefix=()):
        self.process = subprocess.Popen([*prefix, str(program)], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, text=True)
        self.zipkin_url = self.process.stdout.readline().split()[1]
        self.statsd_port = int(self.process.stdout.readline().split()[1])

    def stop(self):
        self.process.stdin.close()
        self.process.wait(harness.STOP_WAIT)


def wrk(url, args, seconds):
    """(requests per second, requests) of one wrk run; fails on any error or non-2xx
    answer."""
    done = benchlib.run([*pinned_to(args.client_cpus), "wrk", f"-t{args.threads}",
                         f"-c{args.connections}", f"-d{seconds}s", url], timeout=seconds + 60)
    for problem in ("Non-2xx or 3xx responses", "Socket errors"):
        if problem in done.stdout:
            raise AssertionError(f"wrk {url}: {problem}\n{done.stdout}")
    return (float(re.search(r"Requests/sec:\s*([\d.]+)", done.stdout).group(1)),
            int(re.search(r"(\d+) requests in", done.stdout).group(1)))


def cpu_by_role(server, receiver):
    """CPU seconds used so far by each part of a server, and by the collectors."""
    roles = {}
    httpd_pid = server.process.popen.pid
    for pid, (ppid, group, threads, cpu, cmdline) in benchlib.processes().items():
        if pid == receiver.process.pid:
            role = "collectors"
        elif group != httpd_pid:
            continue
        elif cmdline.startswith("(wsgi:"):
            role = "wsgi daemon"
        elif ppid == httpd_pid and threads < SHIPPER_MAX_THREADS:
            role = "shipper"
        else:
            role = "httpd"
        roles[role] = roles.get(role, 0) + cpu
    return roles


def measured_run(server, receiver, path, args, cpu_used):
    """One wrk run against server; adds the CPU each role used to cpu_used and returns
    (requests per second, requests)."""
    before = cpu_by_role(server, receiver)
    rate, requests = wrk(server.url(path), args, args.seconds)
    for role, cpu in cpu_by_role(server, receiver).items():
        cpu_used[role] = cpu_used.get(role, 0) + cpu - before.get(role, 0)
    return rate, requests


def main():
    args = parse_args()
    args.client_cpus, server_cpus = cpu_halves() if args.pin else (None, None)
    benchlib.use_build(args.build)
    receiver = Receiver(build_receiver(args.build), pinned_to(args.client_cpus))
    benchlib.print_header("wrk_ratio: requests/s, mod_tomograph loaded vs not loaded")
    print(f"wrk -t{args.threads} -c{args.connections} -d{args.seconds}s on loopback, "
          f"{args.runs} runs of each configuration, alternated")
    if args.pin:
        print(f"pinned: servers on CPUs {server_cpus}, wrk and the collectors on CPUs "
              f"{args.client_cpus}")
    servers = {}
    try:
        servers["off"] = benchlib.BenchHttpd(False, wsgi=True)
        servers["on"] = benchlib.BenchHttpd(
            True, benchlib.traced_directives(receiver.zipkin_url, receiver.statsd_port), wsgi=True)
        for server in servers.values():
            server.start(prefix=pinned_to(server_cpus))
        summary = []
        for name, path in TARGETS:
            for config in CONFIGS:
                wrk(servers[config].url(path), args, 1)  # warm-up: workers, wsgi daemon
            rates = {config: [] for config in CONFIGS}
            requests = {config: 0 for config in CONFIGS}
            cpu_used = {config: {} for config in CONFIGS}
            for _ in range(args.runs):
                for config in CONFIGS:
                    rate, count = measured_run(servers[config], receiver, path, args,
                                               cpu_used[config])
                    rates[config].append(rate)
                    requests[config] += count
            medians = {config: benchlib.median(rates[config]) for config in CONFIGS}
            print(f"{name} ({path}):")
            for config in CONFIGS:
                print(f"  {config:3s} requests/s: " + " ".join(f"{r:8.0f}" for r in rates[config])
                      + f"   median {medians[config]:8.0f}")
            cpu_per_request = {config: {role: cpu * 1e6 / requests[config]
                                        for role, cpu in cpu_used[config].items()}
                               for config in CONFIGS}
            for config in CONFIGS:
                print(f"  {config:3s} CPU us per request: " + ", ".join(
                    f"{role} {cpu_per_request[config][role]:.1f}"
                    for role in ROLES if cpu_per_request[config].get(role)))
            server_cpu = {config: sum(cpu for role, cpu in cpu_per_request[config].items()
                                      if role != "collectors") for config in CONFIGS}
            print(f"  server CPU per request, on / off (collectors left out): "
                  f"{server_cpu['on'] / server_cpu['off']:.3f}")
            summary.append(benchlib.ratio_line(f"ratio of medians, {name}",
                                               medians["on"] / medians["off"], TARGET, False))
            print("  " + summary[-1], flush=True)
        print("\n".join(summary))
        print(f"load average at the end: {benchlib.load_average()}")
    finally:
        for server in servers.values():
            server.stop()
        receiver.stop()


if __name__ == "__main__":
    main()
