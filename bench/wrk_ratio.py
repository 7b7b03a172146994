#!/usr/bin/python3
"""Requests per second under wrk on loopback, mod_tomograph not loaded vs loaded (every
request traced, Zipkin and statsd on), for a static 1 KiB file and a mod_wsgi app in
daemon mode. Both servers run side by side; the runs alternate (off, on, on, off, off, on,
...) so that drift in the machine hits both alike and neither always runs second, and the
ratio of the medians is reported (target >= 0.97).

With --control, the loaded server is replaced by a second unloaded one, a twin of the
first: the ratio then says how far two identical servers differ on this machine, the
noise that a ratio of the loaded server is to be read against.

The collectors are bench/receiver (a Zipkin receiver that answers 202 at once and a
statsd port nobody reads): a collector runs on another machine in production, and one
in node.js here would take CPU from the servers being compared.

With --collector-hung, the loaded server's Zipkin collector accepts connections and never
answers (the integration tests' SilentServer): the ratio is then what a hung collector costs
the requests, which the shipper alone should feel.

With --pin, the servers (and every process they start) run on the upper half of the CPUs,
wrk and the collectors on the lower half: the load generator no longer competes with the
server it measures for the same cores, which on a 2-core machine is otherwise what the
scheduler decides run by run.

With --perf, `perf record -a` samples the whole machine during every run (both servers',
so that its own cost falls on both alike), and the loaded server's samples say where its CPU
time went: in the module's code within httpd, and in the shipper (its own code, libcurl's
and the kernel's work for it).  Their share is what tracing takes from the server in time,
cache misses and contended atomics included (which callgrind does not see), and 1 minus it
is the ratio that wrk would show on a CPU-bound server, without the noise of two servers'
throughputs on a shared machine."""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

import benchlib
from benchlib import harness

TARGET = 0.97
TARGETS = (("static 1 KiB file", benchlib.STATIC_PATH),
           ("mod_wsgi app (daemon)", benchlib.APP_PATH))
CONFIGS = ("off", "on")
# The shipper is the one child of httpd that is not a worker (ThreadsPerChild 25).
SHIPPER_MAX_THREADS = 10
ROLES = ("httpd", "wsgi daemon", "shipper", "collectors")
PERF_HZ = 999


def parse_args():
    parser = benchlib.argument_parser(__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of each configuration (5)")
    parser.add_argument("--seconds", type=int, default=5, help="length of a run (5)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (2)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (16)")
    parser.add_argument("--pin", action="store_true",
                        help="servers on the upper half of the CPUs, wrk and the collectors on "
                             "the lower half")
    parser.add_argument("--control", action="store_true",
                        help="an unloaded twin in place of the loaded server: the noise floor")
    parser.add_argument("--collector-hung", action="store_true",
                        help="the loaded server's Zipkin collector accepts and never answers")
    parser.add_argument("--perf", action="store_true",
                        help="sample every run with perf record -a and report the share of the "
                             "loaded server's CPU time that tracing takes")
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


def roles(server, receiver):
    """{pid: (role, CPU seconds so far)} of a server's processes and the collectors'."""
    found = {}
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
        found[pid] = (role, cpu)
    return found


def cpu_by_role(server, receiver):
    """CPU seconds used so far by each part of a server, and by the collectors."""
    totals = {}
    for role, cpu in roles(server, receiver).values():
        totals[role] = totals.get(role, 0) + cpu
    return totals


class Sampler:
    """perf record -a around a run: counts the samples of each role, and of those the
    httpd processes spent in the module's code ("module")."""

    def __init__(self, workdir):
        self.data = os.path.join(workdir, "perf.data")
        self.samples = {}
        self.process = None

    def start(self):
        self.process = subprocess.Popen(["perf", "record", "-a", "-F", str(PERF_HZ), "-o",
                                         self.data], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)

    def stop(self, pid_roles):
        self.process.send_signal(signal.SIGINT)
        self.process.wait(harness.STOP_WAIT)
        samples = benchlib.run(["perf", "script", "-i", self.data, "-F", "pid,ip,dso"],
                               timeout=300).stdout
        for line in samples.splitlines():
            fields = line.split()
            role = pid_roles.get(int(fields[0]), ("other",))[0] if fields else "other"
            if role == "httpd" and fields[-1].endswith("/mod_tomograph.so)"):
                role = "module"
            self.samples[role] = self.samples.get(role, 0) + 1


def measured_run(server, receiver, path, args, cpu_used, sampler=None):
    """One wrk run against server; adds the CPU each role used to cpu_used (and, with a
    sampler, its samples) and returns (requests per second, requests)."""
    before = cpu_by_role(server, receiver)
    if sampler:
        sampler.start()
    rate, requests = wrk(server.url(path), args, args.seconds)
    if sampler:
        sampler.stop(roles(server, receiver))
    for role, cpu in cpu_by_role(server, receiver).items():
        cpu_used[role] = cpu_used.get(role, 0) + cpu - before.get(role, 0)
    return rate, requests


def start_servers(servers, args, receiver, zipkin_url, server_cpus, path):
    """New servers of both configurations, each warmed up on path (its workers, its wsgi
    daemon)."""
    for server in servers.values():
        server.stop()
    servers["off"] = benchlib.BenchHttpd(False, wsgi=True)
    servers["on"] = (benchlib.BenchHttpd(False, wsgi=True) if args.control else
                     benchlib.BenchHttpd(True, benchlib.traced_directives(
                         zipkin_url, receiver.statsd_port), wsgi=True))
    for server in servers.values():
        server.start(prefix=pinned_to(server_cpus))
    for server in servers.values():
        wrk(server.url(path), args, 1)


def print_time_shares(samples):
    """The traced server's CPU samples: the share of the module and of the shipper."""
    server = sum(samples.get(role, 0) for role in ("httpd", "module", "wsgi daemon", "shipper"))
    if not server:
        print("  perf: no sample of the traced server")
        return
    module, shipper = samples.get("module", 0) / server, samples.get("shipper", 0) / server
    print(f"  perf, the traced server's CPU time ({server} samples at {PERF_HZ} Hz): "
          f"the module's code in httpd {100 * module:.2f}%, the shipper {100 * shipper:.2f}%; "
          f"what tracing leaves a CPU-bound server: {1 - module - shipper:.4f}")


def main():
    args = parse_args()
    args.client_cpus, server_cpus = cpu_halves() if args.pin else (None, None)
    benchlib.use_build(args.build)
    receiver = Receiver(build_receiver(args.build), pinned_to(args.client_cpus))
    benchlib.print_header("wrk_ratio: requests/s, mod_tomograph loaded vs not loaded")
    print(f"wrk -t{args.threads} -c{args.connections} -d{args.seconds}s on loopback, "
          f"{args.runs} runs of each configuration, alternated")
    if args.control:
        print("control: \"on\" is an unloaded twin of \"off\", the module loaded in neither")
    hung = harness.SilentServer() if args.collector_hung else None
    zipkin_url = f"http://127.0.0.1:{hung.port}/api/v2/spans" if hung else receiver.zipkin_url
    if hung:
        print("collector hung: the loaded server's Zipkin collector accepts and never answers")
    if args.pin:
        print(f"pinned: servers on CPUs {server_cpus}, wrk and the collectors on CPUs "
              f"{args.client_cpus}")
    servers = {}
    workdir = tempfile.mkdtemp(prefix="tomograph-wrk-")
    try:
        summary = []
        for name, path in TARGETS:
            start_servers(servers, args, receiver, zipkin_url, server_cpus, path)
            rates = {config: [] for config in CONFIGS}
            requests = {config: 0 for config in CONFIGS}
            cpu_used = {config: {} for config in CONFIGS}
            # Both configurations sampled alike: perf's own cost falls on both.
            samplers = {config: Sampler(workdir) if args.perf else None for config in CONFIGS}
            for run in range(args.runs):
                # Each configuration goes second every other time: whatever either place
                # gives (a warmer cache, a machine speeding up) falls on both alike.
                for config in CONFIGS if run % 2 == 0 else reversed(CONFIGS):
                    rate, count = measured_run(servers[config], receiver, path, args,
                                               cpu_used[config], samplers[config])
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
            if args.perf:
                print_time_shares(samplers["on"].samples)
            # The machine's speed moves in phases of seconds to minutes, which
            # the two medians may cut differently; a run and the one just
            # before it share a phase.
            paired = benchlib.median([on / off for off, on in zip(rates["off"], rates["on"])])
            print(f"  median of the paired ratios (each loaded run over the unloaded one next "
                  f"to it): {paired:.4f}")
            summary.append(benchlib.ratio_line(f"ratio of medians, {name}",
                                               medians["on"] / medians["off"], TARGET, False))
            print("  " + summary[-1], flush=True)
        print("\n".join(summary))
        print(f"load average at the end: {benchlib.load_average()}")
    finally:
        for server in servers.values():
            server.stop()
        receiver.stop()
        if hung:
            hung.stop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
