"""What the Python benchmarks share: a minimal self-contained httpd (with or without
mod_tomograph, optionally a mod_wsgi daemon app), started under any command prefix
(valgrind), a keep-alive client, the machine's description and the reproducing command.

Processes, ports, the Zipkin receiver and statsd come from the integration tests'
harness (tests/integration/harness.py), imported, not copied."""

import argparse
import gzip
import http.client
import os
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO_ROOT = BENCH_DIR.parent
sys.path.insert(0, str(REPO_ROOT / "tests" / "integration"))

import harness  # noqa: E402  (needs the path above)

MODULES = harness.HTTPD_MODULES
STATIC_PATH = "/static-1k.txt"
STATIC_BYTES = 1024
APP_PATH = "/app/hello"
WSGI_APP = """def application(environ, start_response):
    body = b"hello from a mod_wsgi daemon\\n"
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]
"""


def default_build():
    return Path(os.environ.get("TOMOGRAPH_BUILD_DIR", REPO_ROOT / "build"))


def argument_parser(description):
    """A parser with --build (where mod_tomograph.so was built: <build>/.libs)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--build", type=Path, default=default_build(),
                        help="build directory holding .libs/mod_tomograph.so "
                             "(default $TOMOGRAPH_BUILD_DIR or <repo>/build)")
    return parser


def use_build(build):
    """Makes harness.find_module() find this build's module, and returns its path."""
    module = Path(build).resolve() / ".libs" / "mod_tomograph.so"
    if not module.is_file():
        sys.exit(f"{module} not found: build first (scripts/setup, or configure && make in "
                 f"{build})")
    os.environ["TOMOGRAPH_MODULE"] = str(module)
    return harness.find_module()


def machine():
    model = "unknown"
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"nproc {os.cpu_count()}, CPU {model}"


def load_average():
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def print_header(title):
    """The benchmark's title, the machine, and the command that reproduces this run."""
    print(f"== {title}")
    print(f"machine: {machine()}")
    print(f"load average at start: {load_average()} (other work on the machine skews "
          "timings, not instruction counts)")
    argv = [str(Path(sys.argv[0]).resolve())] + sys.argv[1:]
    print("command: " + " ".join(shlex.quote(a) for a in argv), flush=True)


def ratio_line(name, ratio, target, at_most):
    met = ratio <= target if at_most else ratio >= target
    sign = "<=" if at_most else ">="
    verdict = "met" if met else f"NOT met (by {abs(ratio - target) / target:.1%})"
    return f"{name}: {ratio:.4f} (target {sign} {target}): {verdict}"


def traced_directives(zipkin_url, statsd_port):
    """The module's configuration in the benchmarks: every request traced, Zipkin and
    statsd on."""
    return ["TomographSampleRate 1", f"TomographZipkin {zipkin_url}",
            f"TomographStatsd 127.0.0.1:{statsd_port}"]


CONF = """ServerRoot "{root}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile run/httpd.pid
DefaultRuntimeDir run
User {user}
Group {group}

{load_modules}
{load_wsgi}
{load_tomograph}
{modules_conf}

StartServers 2
ServerLimit 2
ThreadsPerChild 25
MaxRequestWorkers 50
MinSpareThreads 25
MaxSpareThreads 50
Timeout 60
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 60

ErrorLog logs/error.log
LogLevel warn
{access_log}
TypesConfig /etc/mime.types
DocumentRoot "{root}/htdocs"
<Directory />
    AllowOverride None
    Require all denied
</Directory>
<Directory "{root}/htdocs">
    Require all granted
</Directory>
<Directory "{root}/app">
    Require all granted
</Directory>

<IfModule tomograph_module>
    TomographService bench
{tomograph_directives}
</IfModule>
{wsgi}
"""

# The access log's formats by the nicknames Debian's apache2.conf gives them: "common" is
# the Common Log Format, "combined" (Debian's default site's) adds referer and user agent.
ACCESS_LOG_FORMATS = {
    "common": '%h %l %u %t \\"%r\\" %>s %O',
    "combined": '%h %l %u %t \\"%r\\" %>s %O \\"%{Referer}i\\" \\"%{User-Agent}i\\"',
}

# The modules of the minimal server: the MPM, what static files need, nothing else.
MINIMAL_MODULES = ("mpm_event", "authz_core", "mime", "dir")
# Debian's stock server: the modules enabled here as Debian's apache2 package enables them
# (a2enmod's links), each with its own .conf, loaded and included as Debian's apache2.conf
# does (mods-enabled/*.load, then *.conf, in name order).
DEBIAN_MODS_ENABLED = Path("/etc/apache2/mods-enabled")
# Enabled on this machine by another package (libapache2-mod-wsgi-py3, the project's
# setup), not by apache2; the wsgi benchmark loads it itself.
NOT_DEBIAN_DEFAULTS = {"wsgi"}
# The MPM's settings are the benchmark's own (CONF), the same in every configuration.
STOCK_CONF_SKIPPED = {"mpm_event"}


def stock_modules():
    """The names (alias, authz_core, ...) of the modules Debian's apache2 package enables
    by default, as /etc/apache2/mods-enabled holds them, in the order Debian loads them."""
    names = sorted(p.name[:-len(".load")] for p in DEBIAN_MODS_ENABLED.glob("*.load"))
    names = [n for n in names if n not in NOT_DEBIAN_DEFAULTS]
    if "mpm_event" not in names:
        sys.exit(f"{DEBIAN_MODS_ENABLED}: no mpm_event.load (apache2 not installed with its "
                 "defaults?)")
    return names


def stock_directives():
    """(LoadModule part, configuration part) of Debian's stock server: Include of each
    mods-enabled/<name>.load and of its .conf (self-contained: no sites, no ports)."""
    names = stock_modules()
    load = "\n".join(f"Include {DEBIAN_MODS_ENABLED / n}.load" for n in names)
    confs = [DEBIAN_MODS_ENABLED / f"{n}.conf" for n in names if n not in STOCK_CONF_SKIPPED]
    return load, "\n".join(f"Include {c}" for c in confs if c.exists())

WSGI_CONF = """WSGISocketPrefix run/wsgi
WSGIDaemonProcess bench-app processes=1 threads=8 display-name=%{{GROUP}}
WSGIScriptAlias /app "{root}/app/app.wsgi"
<Location /app>
    WSGIProcessGroup bench-app
    WSGIApplicationGroup %{{GLOBAL}}
</Location>"""


def access_log_directives(name):
    """The LogFormat and CustomLog (logs/access.log) of the access log format `name`."""
    return (f'LogFormat "{ACCESS_LOG_FORMATS[name]}" {name}\n'
            f"CustomLog logs/access.log {name}")


class BenchHttpd:
    """An httpd in a temporary ServerRoot serving STATIC_PATH (1 KiB) and, with wsgi,
    APP_PATH from a mod_wsgi daemon. No access log unless asked (access_log: a key of
    ACCESS_LOG_FORMATS), and the MINIMAL_MODULES unless stock: the baseline is the
    leanest server, so the module's share is not diluted. stock: the modules Debian's
    apache2 enables by default, with their configuration (stock_directives)."""

    def __init__(self, with_module, directives=(), wsgi=False, access_log=None, stock=False):
        self.with_module = with_module
        self.root = Path(tempfile.mkdtemp(prefix="tomograph-bench-"))
        self.root.chmod(0o755)
        for sub in ("run", "logs", "htdocs", "app"):
            (self.root / sub).mkdir(mode=0o755)
        (self.root / "htdocs" / STATIC_PATH.lstrip("/")).write_bytes(
            bytes(ord("a") + i % 26 for i in range(STATIC_BYTES - 1)) + b"\n")
        (self.root / "app" / "app.wsgi").write_text(WSGI_APP)
        self.port = harness.free_port()
        load = f'LoadModule tomograph_module "{harness.find_module()}"' if with_module else ""
        if stock:
            load_modules, modules_conf = stock_directives()
        else:
            load_modules = "\n".join(f"LoadModule {n}_module {MODULES}/mod_{n}.so"
                                     for n in MINIMAL_MODULES)
            modules_conf = ""
        self.conf = self.root / "httpd.conf"
        self.conf.write_text(CONF.format(
            root=self.root, port=self.port, user=harness.HTTPD_USER, group=harness.HTTPD_GROUP,
            modules=MODULES, load_modules=load_modules, modules_conf=modules_conf,
            load_tomograph=load,
            load_wsgi=f"LoadModule wsgi_module {MODULES}/mod_wsgi.so" if wsgi else "",
            tomograph_directives="\n".join("    " + d for d in directives),
            wsgi=WSGI_CONF.format(root=self.root) if wsgi else "",
            access_log=access_log_directives(access_log) if access_log else ""))
        self.process = None

    def start(self, prefix=(), single_process=False, unprivileged=False, wait_ready=True):
        """Starts httpd (-X when single_process) after `prefix`; unprivileged starts it as
        the httpd user from the outset (for tools such as valgrind, which write their
        output after httpd has dropped root)."""
        argv = [*prefix, harness.APACHE2, "-DFOREGROUND", "-f", str(self.conf),
                "-d", str(self.root)]
        if single_process:
            argv.append("-X")
        if unprivileged and os.geteuid() == 0:
            give_to_httpd_user(self.root)
            argv = ["setpriv", f"--reuid={harness.HTTPD_USER}", f"--regid={harness.HTTPD_GROUP}",
                    "--init-groups", *argv]
        self.process = harness.ChildProcess("httpd", argv, self.root / "logs" / "httpd.out")
        if wait_ready:
            harness.wait_for(self.answers, f"httpd to answer on {self.port}", 120,
                             interval=0.2, context=self.describe)

    def answers(self):
        if not self.process.running():
            raise AssertionError(f"httpd exited\n{self.describe()}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
            try:
                connection.request("GET", STATIC_PATH)
                return connection.getresponse().read() and True
            finally:
                connection.close()
        except OSError:
            return False

    def url(self, path):
        return f"http://127.0.0.1:{self.port}{path}"

    def describe(self):
        return (harness.tail(self.root / "logs" / "error.log") + "\n"
                + harness.tail(self.root / "logs" / "httpd.out"))

    def stop(self, timeout=harness.STOP_WAIT):
        """SIGTERM, as `apache2 -k stop`; the process group is killed after timeout."""
        try:
            if self.process is not None:
                self.process.stop(signal.SIGTERM, timeout)
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def give_to_httpd_user(path):
    """chown -R path to the httpd user (when we are root)."""
    if os.geteuid() != 0:
        return
    for directory, _, files in os.walk(path):
        for name in [directory, *(os.path.join(directory, f) for f in files)]:
            shutil.chown(name, harness.HTTPD_USER, harness.HTTPD_GROUP)


# The headers an OpenStack client (keystoneauth1 over python-requests) sends with every
# request: a Fernet token, the global request id, its user agent.
OPENSTACK_CLIENT_HEADERS = {
    "User-Agent": "python-novaclient keystoneauth1/5.1.2 python-requests/2.28.1 "
                  "CPython/3.11.2",
    "Accept": "application/json",
    "Accept-Encoding": "gzip, deflate",
    "X-Auth-Token": "gAAAAABnT8x3" + "Qk9wZW5TdGFja0Zlcm5ldFRva2Vu" * 6,
    "X-OpenStack-Request-ID": "req-6b3c0e0e-3f6e-4a52-9d1e-8f1e2c9a7b41",
}


def get_many(port, path, count, expect_bytes=None, headers=None, pause=0.0):
    """count GETs of path, one after the other on one keep-alive connection, with headers
    (a dict) when given, pause seconds apart; each must answer 200 (with expect_bytes bytes
    once decoded, when given)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        for i in range(count):
            if pause and i:
                time.sleep(pause)
            connection.request("GET", path, headers=headers or {})
            response = connection.getresponse()
            body = response.read()
            if response.getheader("Content-Encoding") == "gzip":  # mod_deflate, when asked
                body = gzip.decompress(body)
            if response.status != 200 or (expect_bytes is not None
                                          and len(body) != expect_bytes):
                raise AssertionError(f"GET {path}: {response.status}, {len(body)} bytes")
    finally:
        connection.close()


def processes():
    """{pid: (ppid, process group, threads, CPU seconds so far, command line)} of every
    process we may read."""
    table = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
        except OSError:
            continue
        # The fields after the command, which may hold spaces: state is the first.
        fields = stat[stat.rindex(")") + 2:].split()
        table[int(entry.name)] = (int(fields[1]), int(fields[2]), int(fields[17]),
                                  (int(fields[11]) + int(fields[12])) / tick, cmdline)
    return table


def median(values):
    return statistics.median(values)


def run(argv, timeout, **kwargs):
    """subprocess.run with captured text output, raising on failure."""
    return subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=timeout, check=True, **kwargs)
