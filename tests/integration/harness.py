"""Fixtures of the mod_tomograph integration tests: a real httpd with the module, the real
statsd daemon, and our validating Zipkin receiver, all on loopback ports, each stopped for
sure (process group killed) when a test is done, and every wait bounded."""

import base64
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import unittest
import uuid
from pathlib import Path

INTEGRATION_DIR = Path(__file__).resolve().parent
REPO_ROOT = INTEGRATION_DIR.parent.parent
DEMO_CONF_DIR = REPO_ROOT / "conf" / "demo"
HTTPD_MODULES = Path("/usr/lib/apache2/modules")
RECEIVER_JS = INTEGRATION_DIR / "zipkin_receiver.js"
STATSD_JS = REPO_ROOT / "node_modules" / "statsd" / "stats.js"
APACHE2 = os.environ.get("APACHE2", "/usr/sbin/apache2")
# A module built with sanitizers needs their runtime first in httpd's library list
# (scripts/check-sanitizers): preloaded into httpd alone, not into these tools.
HTTPD_ENV = dict(os.environ)
if os.environ.get("TOMOGRAPH_HTTPD_PRELOAD"):
    HTTPD_ENV["LD_PRELOAD"] = os.environ["TOMOGRAPH_HTTPD_PRELOAD"]
NODE = os.environ.get("NODE", shutil.which("node") or "/usr/bin/node")
WRK = os.environ.get("WRK", shutil.which("wrk") or "/usr/bin/wrk")
UWSGI = os.environ.get("UWSGI", "/usr/bin/uwsgi-core")
HTTPD_USER = os.environ.get("TOMOGRAPH_TEST_USER", "www-data")
HTTPD_GROUP = os.environ.get("TOMOGRAPH_TEST_GROUP", "www-data")

# Spans leave in batches every 200 ms; a second is usual, ten is a failure.
SPAN_WAIT = 10.0
START_WAIT = 10.0
STOP_WAIT = 10.0
REQUEST_TIMEOUT = 10.0

KEEP_ROOTS = os.environ.get("TOMOGRAPH_TEST_KEEP") == "1"


def find_module():
    """The built mod_tomograph.so: $TOMOGRAPH_MODULE, else ./.libs (make check runs in the
    build dir), else an in-tree build of the repository, else its build/ (scripts/setup)."""
    explicit = os.environ.get("TOMOGRAPH_MODULE")
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise FileNotFoundError(f"TOMOGRAPH_MODULE={explicit} is not a file")
        return path.resolve()
    candidates = [Path.cwd() / ".libs", REPO_ROOT / ".libs", REPO_ROOT / "build" / ".libs"]
    for directory in candidates:
        path = directory / "mod_tomograph.so"
        if path.is_file():
            return path.resolve()
    raise FileNotFoundError(
        "mod_tomograph.so not found in " + ", ".join(str(c) for c in candidates)
        + ": build it (make) or set TOMOGRAPH_MODULE")


def load_modules(*names):
    """Configuration lines loading Debian's httpd modules of these names ("ssl" for
    mod_ssl), each unless the configuration already has it."""
    return tuple(line for name in names
                 for line in (f"<IfModule !{name}_module>",
                              f"    LoadModule {name}_module {HTTPD_MODULES}/mod_{name}.so",
                              "</IfModule>"))


# mod_status at /server-status, its own requests untraced so that reading the counters
# (Httpd.status_counters) does not move them.
STATUS_SITE_CONFIG = (
    *load_modules("status"),
    "<Location /server-status>",
    "    SetHandler server-status",
    "    TomographEnable Off",
    "</Location>",
)


def processes():
    """{pid: (session id, parent pid, state, command line)} of every process."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        # The command name in parentheses may hold anything: the fields follow the last ')'.
        state, parent, _, session = stat[stat.rindex(")") + 2:].split()[:4]
        found[int(entry.name)] = (int(session), int(parent), state, command)
    return found


def instance_processes(httpd):
    """{pid: (state, parent pid)} of every process of an Httpd instance (httpd runs in a session
    of its own), the parent included."""
    session = httpd.process.popen.pid
    return {pid: (state, parent) for pid, (sid, parent, state, _) in processes().items()
            if sid == session}


def shipper_pids(httpd):
    """Every shipper pid an Httpd's error log announced (TG00005), the oldest first."""
    return [int(pid) for pid in
            re.findall(r"TG00005: shipper ([0-9]+) started", httpd.error_log.read_text())]


def free_port(kind=socket.SOCK_STREAM):
    """A loopback port free right now (TCP or UDP)."""
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(probe, what, timeout=SPAN_WAIT, interval=0.05, context=None):
    """Calls probe until it returns something truthy, and returns that; raises
    AssertionError naming `what` (and context(), for diagnosis) after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() >= deadline:
            detail = f"\n{context()}" if context else ""
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}{detail}")
        time.sleep(interval)


def tail(path, lines=40):
    try:
        text = Path(path).read_text(errors="replace")
    except FileNotFoundError:
        return f"({path}: missing)"
    return f"--- {path} (last {lines} lines) ---\n" + "\n".join(text.splitlines()[-lines:])


class ChildProcess:
    """A process of ours, in its own process group, output to a file; stop() ends the group."""

    def __init__(self, name, argv, log_path, cwd=None, env=None):
        self.name = name
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "wb")
        self.popen = subprocess.Popen(
            argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=self._log,
            stderr=subprocess.STDOUT, start_new_session=True)

    def output(self):
        return self.log_path.read_text(errors="replace")

    def running(self):
        return self.popen.poll() is None

    def wait_for_output(self, pattern, timeout=START_WAIT):
        def probe():
            if not self.running():
                raise AssertionError(
                    f"{self.name} exited with {self.popen.returncode}:\n{self.output()}")
            return re.search(pattern, self.output(), re.MULTILINE)
        return wait_for(probe, f"{self.name} to print {pattern!r}", timeout,
                        context=self.output)

    def stop(self, sig=signal.SIGTERM, timeout=STOP_WAIT):
        """Signals the process, waits for it, then kills its whole group, leftovers included."""
        try:
            if self.running():
                self.popen.send_signal(sig)
                try:
                    self.popen.wait(timeout)
                except subprocess.TimeoutExpired:
                    pass
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.popen.wait(timeout)
        finally:
            self._log.close()


class ZipkinReceiver:
    """tests/integration/zipkin_receiver.js serving POST /api/v2/spans (on `port`, or on a free
    one), and OTLP's POST /v1/traces beside it."""

    def __init__(self, workdir, port=None):
        self.port = port or free_port()
        self.jsonl = Path(workdir) / "zipkin-received.jsonl"
        self.url = f"http://127.0.0.1:{self.port}/api/v2/spans"
        self.otlp_url = f"http://127.0.0.1:{self.port}/v1/traces"
        self.process = ChildProcess(
            "zipkin receiver",
            [NODE, str(RECEIVER_JS), "serve", str(self.port), str(self.jsonl)],
            Path(workdir) / "zipkin-receiver.log")
        try:
            self.process.wait_for_output(r"listening on")
        except BaseException:
            # No one else would stop it: the caller never gets the receiver.
            self.process.stop()
            raise

    def records(self, format="zipkin"):
        """Every span received so far in that format ("zipkin" or "otlp"): {"span", "valid",
        "errors", "headers"}, and for OTLP "service", "resource" and "scope"."""
        try:
            text = self.jsonl.read_text()
        except FileNotFoundError:
            return []
        records = (json.loads(line) for line in complete_lines(text))
        return [record for record in records if record.get("format") == format]

    def post(self, body, content_type="application/json", path="/api/v2/spans"):
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=REQUEST_TIMEOUT)
        try:
            connection.request("POST", path, body=body,
                               headers={"Content-Type": content_type})
            response = connection.getresponse()
            return response.status, response.read().decode()
        finally:
            connection.close()

    def describe(self):
        return tail(self.jsonl) + "\n" + tail(self.process.log_path)

    def stop(self):
        self.process.stop()


class UwsgiServer:
    """Debian's uWSGI serving the demo app (conf/demo/app.wsgi) on a loopback socket of its
    protocol: "uwsgi" (how DevStack serves OpenStack's APIs, behind httpd's mod_proxy_uwsgi),
    "fastcgi" (for mod_proxy_fcgi) or "scgi" (for mod_proxy_scgi)."""

    def __init__(self, workdir, protocol="uwsgi", unix_socket=None):
        """unix_socket: a path to listen on (which httpd's user may reach) instead of a
        loopback port."""
        self.port = None if unix_socket else free_port()
        socket_option = {"uwsgi": "--socket", "fastcgi": "--fastcgi-socket",
                         "scgi": "--scgi-socket"}[protocol]
        self.process = ChildProcess(
            "uwsgi",
            [UWSGI, "--plugin", "python3", socket_option,
             str(unix_socket) if unix_socket else f"127.0.0.1:{self.port}", "--chmod-socket=666",
             "--wsgi-file", str(DEMO_CONF_DIR / "app.wsgi"), "--processes", "1",
             "--die-on-term", "--disable-logging"],
            Path(workdir) / f"uwsgi-{protocol}.log")
        try:
            self.process.wait_for_output(r"WSGI app 0 .* ready")
        except BaseException:
            self.process.stop()
            raise

    def stop(self):
        self.process.stop()


class StatsdDaemon:
    """The real statsd (node_modules/statsd) on a loopback UDP port, printing each line it gets.

    graphite: a CarbonCache (below) that statsd's own graphite backend flushes to as well,
    every flush_interval_ms, with that backend's defaults otherwise (graphite_config adds to
    them, e.g. {"legacyNamespace": False}); without it, statsd only prints and never flushes."""

    LINE = re.compile(r" - DEBUG: (.*)$", re.MULTILINE)

    def __init__(self, workdir, graphite=None, flush_interval_ms=2000, graphite_config=None):
        if not STATSD_JS.is_file():
            raise FileNotFoundError(f"{STATSD_JS} missing: run 'npm ci' in {REPO_ROOT}")
        self.port = free_port(socket.SOCK_DGRAM)
        config = {
            "address": "127.0.0.1",
            "port": self.port,
            "mgmt_address": "127.0.0.1",
            "mgmt_port": free_port(),
            "flushInterval": 3600 * 1000,
            "deleteIdleStats": False,
            "dumpMessages": True,
            "backends": ["./backends/console"],
        }
        if graphite:
            config.update({
                "flushInterval": flush_interval_ms,
                "backends": ["./backends/console", "./backends/graphite"],
                "graphiteHost": "127.0.0.1",
                "graphitePort": graphite.line_port,
            })
            if graphite_config:
                config["graphite"] = dict(graphite_config)
        config_path = Path(workdir) / "statsd-config.js"
        config_path.write_text("(" + json.dumps(config, indent=2) + ")\n")
        self.process = ChildProcess(
            "statsd", [NODE, str(STATSD_JS), str(config_path)],
            Path(workdir) / "statsd.log", cwd=STATSD_JS.parent)
        self.process.wait_for_output(r"server is up")
        # Proof that the UDP socket is bound and read: our own line comes back.
        probe = f"tomograph_harness.probe_{uuid.uuid4().hex}:1|c"
        wait_for(lambda: self.send(probe) or probe in self.lines(), "statsd to echo a probe",
                 START_WAIT, interval=0.2, context=self.process.output)

    def send(self, payload):
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(payload.encode(), ("127.0.0.1", self.port))

    def lines(self):
        """Every metric line received so far, as sent."""
        return self.LINE.findall(self.process.output())

    def stop(self):
        self.process.stop()


class CarbonCache:
    """Debian's carbon-cache (graphite-carbon) in the foreground, all of it under workdir
    (its configuration, whisper files, logs and pid file; no system service, nothing in
    /etc), its line, pickle and cache-query receivers on free loopback ports.

    retentions: storage-schemas.conf's for every metric; its finest step should be the
    flush interval of the statsd in front (a coarser one keeps only the last flush of each
    step). schemas: the text of a storage-schemas.conf instead. aggregation: the text of a
    storage-aggregation.conf (none: carbon averages every metric when it rolls a step up
    into a coarser archive's)."""

    CARBON_CACHE = os.environ.get("CARBON_CACHE", "/usr/bin/carbon-cache")

    def __init__(self, workdir, retentions="1s:1h", aggregation=None, schemas=None):
        if not Path(self.CARBON_CACHE).is_file():
            raise FileNotFoundError(f"{self.CARBON_CACHE} missing: install graphite-carbon "
                                    "(scripts/setup)")
        self.root = Path(workdir) / "carbon"
        self.conf_dir = self.root / "conf"
        self.whisper_dir = self.root / "storage" / "whisper"
        for sub in (self.conf_dir, self.whisper_dir, self.root / "log", self.root / "run"):
            sub.mkdir(parents=True, exist_ok=True)
        self.line_port = free_port()
        self.conf = self.conf_dir / "carbon.conf"
        self.conf.write_text("\n".join([
            "[cache]",
            f"STORAGE_DIR = {self.root / 'storage'}/",
            f"LOCAL_DATA_DIR = {self.whisper_dir}/",
            f"WHISPER_DIR = {self.whisper_dir}/",
            f"CONF_DIR = {self.conf_dir}/",
            f"LOG_DIR = {self.root / 'log'}/",
            f"PID_DIR = {self.root / 'run'}/",
            # As whoever runs the tests, not Debian's _graphite.
            "USER =",
            # Every metric statsd sends gets its file at once, and is written out at once.
            "MAX_CACHE_SIZE = inf",
            "MAX_UPDATES_PER_SECOND = inf",
            "MAX_CREATES_PER_MINUTE = inf",
            "LINE_RECEIVER_INTERFACE = 127.0.0.1",
            f"LINE_RECEIVER_PORT = {self.line_port}",
            "ENABLE_UDP_LISTENER = False",
            "PICKLE_RECEIVER_INTERFACE = 127.0.0.1",
            f"PICKLE_RECEIVER_PORT = {free_port()}",
            "CACHE_QUERY_INTERFACE = 127.0.0.1",
            f"CACHE_QUERY_PORT = {free_port()}",
            # No graphite-web to register tags with.
            "ENABLE_TAGS = False",
            "LOG_CREATES = True",
            "LOG_UPDATES = False",
            "",
        ]))
        (self.conf_dir / "storage-schemas.conf").write_text(
            schemas or f"[everything]\npattern = .*\nretentions = {retentions}\n")
        if aggregation is not None:
            (self.conf_dir / "storage-aggregation.conf").write_text(aggregation)
        self.process = ChildProcess(
            "carbon-cache",
            [self.CARBON_CACHE, f"--config={self.conf}", "--nodaemon",
             f"--pidfile={self.root / 'run' / 'carbon-cache.pid'}", "start"],
            self.root / "carbon-cache.log", cwd=self.root)
        self.process.wait_for_output(rf"CarbonReceiverFactory starting on {self.line_port}\b")

        def accepts():
            if not self.process.running():
                raise AssertionError(f"carbon-cache exited:\n{self.process.output()}")
            try:
                socket.create_connection(("127.0.0.1", self.line_port), timeout=1).close()
                return True
            except OSError:
                return False
        wait_for(accepts, "carbon-cache's line receiver", START_WAIT, interval=0.1,
                 context=self.process.output)

    def whisper_file(self, metric):
        """Where carbon keeps a metric: a.b.c is <whisper dir>/a/b/c.wsp."""
        return self.whisper_dir.joinpath(*metric.split(".")).with_suffix(".wsp")

    def metrics(self):
        """The dotted names of every metric that has a whisper file."""
        return sorted(".".join(path.relative_to(self.whisper_dir).with_suffix("").parts)
                      for path in self.whisper_dir.rglob("*.wsp"))

    def describe(self):
        return ("whisper files:\n  " + "\n  ".join(self.metrics()) + "\n"
                + tail(self.process.log_path))

    def stop(self):
        self.process.stop()


def fill_placeholders(text, values, where):
    """text with each @NAME@ replaced by values[NAME]; a placeholder left is an error."""
    for name, value in values.items():
        text = text.replace(f"@{name}@", value)
    leftover = re.search(r"@[A-Z_]+@", text)
    if leftover:
        raise ValueError(f"{where}: no value for {leftover.group(0)}")
    return text


def render_template(template, values):
    return fill_placeholders(Path(template).read_text(), values, template)


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)


class Httpd:
    """A real httpd (Debian's apache2) in a temporary ServerRoot, configured from
    conf/demo/httpd.conf.in with the app of conf/demo/app.wsgi and a static file.

    tomograph_directives go where the template says; site_config lines (which may name
    @SERVER_ROOT@ and @PORT@) become conf.d/site.conf, read after the template; files maps
    paths under htdocs/ to their text; mpm: event, worker or prefork (the template's
    TOMOGRAPH_MPM, defined on the command line); log_ids False: the access log format
    names no variable of the module's, so that nothing in the configuration does;
    dual_stack: `Listen <port>` with no address, as Debian's ports.conf has it (one socket
    on [::], IPv4 clients as IPv4-mapped addresses), instead of 127.0.0.1 alone; env:
    variables added to the environment httpd starts with, which what it forks (mod_wsgi
    daemons) inherits (LD_LIBRARY_PATH, read once when the process is executed)."""

    STATIC_TEXT = "a static file\n"
    ACCESS_LOG_IDS = " trace=%{TOMOGRAPH_TRACE_ID}e span=%{TOMOGRAPH_SPAN_ID}e"

    def __init__(self, tomograph_directives=(), with_module=True, site_config=(), files=None,
                 mpm="event", log_ids=True, dual_stack=False, env=None):
        self.env = dict(HTTPD_ENV, **(env or {}))
        load = (f'LoadModule tomograph_module "{find_module()}"' if with_module else "")
        self.root = Path(tempfile.mkdtemp(prefix="tomograph-it-"))
        # httpd starts as root and its children run as www-data: they must reach the app.
        self.root.chmod(0o755)
        for sub in ("run", "logs", "htdocs", "app", "conf.d"):
            (self.root / sub).mkdir(mode=0o755)
        shutil.copy(DEMO_CONF_DIR / "app.wsgi", self.root / "app" / "app.wsgi")
        (self.root / "htdocs" / "static.txt").write_text(self.STATIC_TEXT)
        # What start() polls, apart from the paths the tests trace.
        (self.root / "htdocs" / "ready.txt").write_text("ready\n")
        for relative, text in (files or {}).items():
            path = self.root / "htdocs" / relative
            path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
            path.write_text(text)
        self.port = free_port()
        places = {"SERVER_ROOT": str(self.root), "PORT": str(self.port)}
        self.conf = self.root / "httpd.conf"
        conf = render_template(DEMO_CONF_DIR / "httpd.conf.in", dict(
            places,
            USER=HTTPD_USER,
            GROUP=HTTPD_GROUP,
            LOAD_TOMOGRAPH=load,
            TOMOGRAPH_DIRECTIVES="\n".join("    " + d for d in tomograph_directives),
        ))
        if not log_ids:
            if self.ACCESS_LOG_IDS not in conf:
                raise AssertionError(f"{self.ACCESS_LOG_IDS!r} not in the demo configuration")
            conf = conf.replace(self.ACCESS_LOG_IDS, "")
        if dual_stack:
            loopback_listen = f"\nListen 127.0.0.1:{self.port}\n"
            if loopback_listen not in conf:
                raise AssertionError(f"{loopback_listen!r} not in the demo configuration")
            conf = conf.replace(loopback_listen, f"\nListen {self.port}\n")
        self.conf.write_text(conf)
        if site_config:
            (self.root / "conf.d" / "site.conf").write_text(
                fill_placeholders("\n".join(site_config) + "\n", places, "site_config"))
        self.arguments = ["-C", f"Define TOMOGRAPH_MPM {mpm}", "-f", str(self.conf),
                          "-d", str(self.root)]
        self.process = None

    @property
    def error_log(self):
        return self.root / "logs" / "error.log"

    @property
    def access_log(self):
        return self.root / "logs" / "access.log"

    def config_test(self):
        """(exit status, output) of `apache2 -t` on this configuration."""
        done = subprocess.run(
            [APACHE2, "-t"] + self.arguments, env=self.env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            timeout=START_WAIT, check=False)
        return done.returncode, done.stdout.decode(errors="replace")

    def start(self):
        status, output = self.config_test()
        if status != 0:
            raise AssertionError(f"httpd configuration rejected ({status}):\n{output}")
        self.process = ChildProcess(
            "httpd",
            [APACHE2, "-DFOREGROUND"] + self.arguments,
            self.root / "logs" / "httpd.out", env=self.env)
        wait_for(self._answers, f"httpd to answer on port {self.port}", START_WAIT,
                 interval=0.1, context=self.describe)

    def _answers(self):
        if not self.process.running():
            raise AssertionError(
                f"httpd exited with {self.process.popen.returncode}\n{self.describe()}")
        try:
            return self.request("GET", "/ready.txt", timeout=1).status == 200
        except OSError:
            return False

    def stop_server(self):
        """What `apache2 -k stop` does (SIGTERM to the parent), then waits for the pid to go;
        the server root stays for a look at what was left."""
        if self.process is not None:
            self.process.stop(signal.SIGTERM)

    def stop(self):
        try:
            self.stop_server()
        finally:
            if not KEEP_ROOTS:
                shutil.rmtree(self.root, ignore_errors=True)

    def graceful_restart(self):
        """What `apache2 -k graceful` does (SIGUSR1); returns once the new generation answers."""
        marker = "resuming normal operations"
        generations = self.error_log.read_text().count(marker)
        self.process.popen.send_signal(signal.SIGUSR1)
        wait_for(lambda: self.error_log.read_text().count(marker) > generations,
                 "httpd to come back from a graceful restart", START_WAIT, context=self.describe)
        wait_for(self._answers, "httpd to answer after the restart", START_WAIT,
                 interval=0.1, context=self.describe)

    def status_counters(self):
        """The Tomograph* counters of /server-status?auto (mod_status, mapped at
        /server-status by the site configuration), as {name without "Tomograph": int}."""
        response = self.request("GET", "/server-status?auto")
        if response.status != 200:
            raise AssertionError(f"/server-status?auto: {response.status} {response.body}")
        return {name: int(value) for name, value
                in re.findall(r"^Tomograph(\w+): ([0-9]+)$", response.body, re.MULTILINE)}

    def request(self, method, path, headers=None, body=None, timeout=REQUEST_TIMEOUT,
                address="127.0.0.1", port=None):
        """headers: a mapping, or (name, value) pairs to send a header more than once;
        address and port: another listener of this server's than its main one (address "::1"
        for a dual_stack server's IPv6 side)."""
        pairs = list(headers.items() if isinstance(headers, dict) else headers or ())
        data = body.encode() if isinstance(body, str) else body or b""
        connection = http.client.HTTPConnection(address, port or self.port, timeout=timeout)
        try:
            connection.putrequest(method, path,
                                  skip_host=any(name.lower() == "host" for name, _ in pairs))
            for name, value in pairs + [("Content-Length", str(len(data)))]:
                connection.putheader(name, value)
            connection.endheaders(data)
            response = connection.getresponse()
            return Response(response.status, response.getheaders(), response.read().decode())
        finally:
            connection.close()

    def describe(self):
        return tail(self.error_log) + "\n" + tail(self.root / "logs" / "httpd.out")


class HangupBackend:
    """A backend that reads a request's head, keeps it, and hangs up without answering
    (mod_proxy answers 502)."""

    def __init__(self):
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self.heads = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="hangup backend", daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with connection:
                head = self._read_head(connection)
                self.heads.append(head)
                self._answer(connection, head)

    def _answer(self, connection, head):
        """Nothing: this backend hangs up."""

    @staticmethod
    def _read_head(connection):
        connection.settimeout(REQUEST_TIMEOUT)
        head = b""
        try:
            while b"\r\n\r\n" not in head and len(head) < 65536:
                chunk = connection.recv(65536)
                if not chunk:
                    break
                head += chunk
        except OSError:
            pass
        return head.decode("latin-1")

    def headers(self, index=-1):
        """{lowercased name: value} of a request received (the last by default)."""
        lines = self.heads[index].split("\r\n\r\n", 1)[0].split("\r\n")[1:]
        return {name.strip().lower(): value.strip()
                for name, _, value in (line.partition(":") for line in lines)}

    def stop(self):
        self._stopping.set()
        self._thread.join(STOP_WAIT)
        self._listener.close()


class WebSocketBackend(HangupBackend):
    """A WebSocket server (RFC 6455): it accepts the upgrade of each request with 101, then
    echoes what comes until the client closes."""

    GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

    def _answer(self, connection, head):
        key = self.headers().get("sec-websocket-key", "")
        accept = base64.b64encode(hashlib.sha1((key + self.GUID).encode()).digest()).decode()
        try:
            connection.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n")
                               .encode())
            while True:
                chunk = connection.recv(65536)
                if not chunk:
                    return
                connection.sendall(chunk)
        except OSError:
            pass


class AjpBackend(HangupBackend):
    """A servlet container as mod_proxy_ajp sees one (AJP/1.3, as Tomcat speaks it): it
    answers each forward request with the status its URI ends in (".../status/<code>", else
    200) and, as JSON, the request headers it received, then ends the response without
    keeping the connection."""

    FORWARD_REQUEST = 2
    SEND_BODY_CHUNK, SEND_HEADERS, END_RESPONSE = 3, 4, 5
    NO_STRING = 0xFFFF
    # The request header names that AJP sends as a code (0xA001 ...), in code order.
    CODED_HEADERS = ("accept", "accept-charset", "accept-encoding", "accept-language",
                     "authorization", "connection", "content-type", "content-length",
                     "cookie", "cookie2", "host", "pragma", "referer", "user-agent")

    @classmethod
    def _read_head(cls, connection):
        """{"uri": ..., "headers": {lowercased name: value}} of the forward request; {} when
        what came is not one."""
        connection.settimeout(REQUEST_TIMEOUT)
        try:
            magic, length = struct.unpack(">HH", cls._receive(connection, 4))
            packet = cls._receive(connection, length)
        except (OSError, struct.error, EOFError):
            return {}
        if magic != 0x1234 or not packet or packet[0] != cls.FORWARD_REQUEST:
            return {}
        at = 2  # the prefix code and the method
        fields = []
        for _ in range(5):  # protocol, URI, remote address, remote host, server name
            value, at = cls._string(packet, at)
            fields.append(value)
        at += 3  # the server's port and is_ssl
        (count,) = struct.unpack_from(">H", packet, at)
        at += 2
        headers = {}
        for _ in range(count):
            (code,) = struct.unpack_from(">H", packet, at)
            if code >= 0xA001:
                name, at = cls.CODED_HEADERS[code - 0xA001], at + 2
            else:
                name, at = cls._string(packet, at)
            headers[name.lower()], at = cls._string(packet, at)
        return {"uri": fields[1], "headers": headers}

    @staticmethod
    def _receive(connection, length):
        data = b""
        while len(data) < length:
            chunk = connection.recv(length - len(data))
            if not chunk:
                raise EOFError("the connection closed within a packet")
            data += chunk
        return data

    @classmethod
    def _string(cls, packet, at):
        (length,) = struct.unpack_from(">H", packet, at)
        if length == cls.NO_STRING:
            return None, at + 2
        # the bytes, then a NUL
        return packet[at + 2:at + 2 + length].decode("latin-1"), at + 2 + length + 1

    @staticmethod
    def _packet(payload):
        return b"AB" + struct.pack(">H", len(payload)) + payload

    @staticmethod
    def _put_string(text):
        data = text.encode("latin-1")
        return struct.pack(">H", len(data)) + data + b"\0"

    def _answer(self, connection, head):
        if not head:
            return
        tail = head["uri"].rstrip("/").split("/")
        status = int(tail[-1]) if len(tail) >= 2 and tail[-2] == "status" else 200
        body = json.dumps(head["headers"]).encode()
        response_headers = (("Content-Type", "application/json"),
                            ("Content-Length", str(len(body))))
        try:
            connection.sendall(
                self._packet(bytes([self.SEND_HEADERS]) + struct.pack(">H", status)
                             + self._put_string(http.HTTPStatus(status).phrase)
                             + struct.pack(">H", len(response_headers))
                             + b"".join(self._put_string(name) + self._put_string(value)
                                        for name, value in response_headers))
                + self._packet(bytes([self.SEND_BODY_CHUNK]) + struct.pack(">H", len(body))
                               + body + b"\0")
                + self._packet(bytes([self.END_RESPONSE, 0])))
            # Read what else comes (a body) until httpd closes: closing with it unread
            # would reset the connection, and could lose the answer.
            connection.shutdown(socket.SHUT_WR)
            while connection.recv(65536):
                pass
        except OSError:
            pass

    def headers(self, index=-1):
        return self.heads[index].get("headers", {})


class SilentServer:
    """A TCP server that accepts every connection, reads what comes, and never answers nor
    hangs up until stopped (a hung collector or backend)."""

    def __init__(self):
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.1)
        self.port = self._listener.getsockname()[1]
        self.accepted = 0
        self._connections = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="silent server", daemon=True)
        self._thread.start()

    def _serve(self):
        while not self._stopping.is_set():
            try:
                connection, _ = self._listener.accept()
                connection.setblocking(False)
                self._connections.append(connection)
                self.accepted += 1
            except socket.timeout:
                pass
            except OSError:
                return
            # Read and forget, so that the client's writes never block on a full buffer;
            # what the client closed is closed here too.
            for connection in list(self._connections):
                try:
                    if not connection.recv(65536):
                        self._connections.remove(connection)
                        connection.close()
                except OSError:
                    pass

    def stop(self):
        self._stopping.set()
        self._thread.join(STOP_WAIT)
        self._listener.close()
        for connection in self._connections:
            connection.close()


class DownBackend:
    """A loopback TCP port where nothing listens (a backend that is down): bound, so that
    no other fixture gets it, but not listening, so that connections are refused."""

    def __init__(self):
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))
        self.port = self._socket.getsockname()[1]

    def stop(self):
        self._socket.close()


class WrkResult:
    """What a wrk run reports: requests, errors by kind, average latency (ms)."""

    LATENCY_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}

    def __init__(self, output):
        self.output = output
        done = re.search(r"^\s*([0-9]+) requests in ", output, re.MULTILINE)
        if not done:
            raise AssertionError(f"wrk printed no request count:\n{output}")
        self.requests = int(done.group(1))
        errors = re.search(r"Socket errors: connect ([0-9]+), read ([0-9]+), write ([0-9]+), "
                           r"timeout ([0-9]+)", output)
        self.socket_errors = dict(zip(("connect", "read", "write", "timeout"),
                                      (int(n) for n in errors.groups()) if errors
                                      else (0, 0, 0, 0)))
        not_ok = re.search(r"Non-2xx or 3xx responses: ([0-9]+)", output)
        self.non_2xx = int(not_ok.group(1)) if not_ok else 0
        latency = re.search(r"^\s*Latency\s+([0-9.]+)(us|ms|s|m|h)\b", output, re.MULTILINE)
        if not latency:
            raise AssertionError(f"wrk printed no latency:\n{output}")
        self.latency_ms = float(latency.group(1)) * self.LATENCY_UNITS_MS[latency.group(2)]

    def __str__(self):
        return (f"{self.requests} requests, average latency {self.latency_ms:.3f} ms, "
                f"non-2xx {self.non_2xx}, socket errors {self.socket_errors}")


class Wrk:
    """wrk on loopback in the background: start it, then result() once it has run its
    duration, or stop() to end it early (SIGINT: it stops and reports)."""

    def __init__(self, url, seconds, threads=2, connections=8, script=None):
        """script: a wrk Lua script (e.g. one whose delay() paces each connection)."""
        self.seconds = seconds
        self.process = subprocess.Popen(
            [WRK, f"-t{threads}", f"-c{connections}", f"-d{seconds}s"]
            + (["-s", str(script)] if script else []) + [url],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            start_new_session=True)

    def result(self, timeout=None):
        """The report, waiting at most the run's duration plus STOP_WAIT (or timeout)."""
        try:
            output, _ = self.process.communicate(
                timeout=timeout if timeout is not None else self.seconds + STOP_WAIT)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"wrk did not end in time:\n{self.process.communicate()[0]}")
        return WrkResult(output.decode(errors="replace"))

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        return self.result(STOP_WAIT)

    def kill(self):
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.process.wait(STOP_WAIT)


def run_wrk(url, seconds, threads=2, connections=8):
    """A whole wrk run: its WrkResult."""
    wrk = Wrk(url, seconds, threads, connections)
    try:
        return wrk.result()
    finally:
        wrk.kill()


def complete_lines(text):
    """The non-empty lines of a file that another process appends to: a read may catch an
    append half done, and only the lines it has ended are whole."""
    return [line for line in text[:text.rfind("\n") + 1].splitlines() if line.strip()]


def span_file_lines(path):
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return []
    return complete_lines(text)


def validate_span_file(path):
    """Runs the receiver's schema validation over a span file: (ok, report)."""
    done = subprocess.run([NODE, str(RECEIVER_JS), "validate", str(path)],
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=START_WAIT, check=False)
    return done.returncode == 0, done.stdout.decode(errors="replace")


def random_hex(digits):
    """Random lowercase hex that surely holds a letter (so case matters)."""
    return "a" + os.urandom(digits).hex()[: digits - 1]


def osprofiler_headers(key, base_id, parent_id):
    """X-Trace-Info and X-Trace-HMAC as osprofiler's web.get_trace_id_headers() makes them."""
    info = base64.urlsafe_b64encode(
        json.dumps({"base_id": base_id, "parent_id": parent_id}).encode())
    return {"X-Trace-Info": info.decode(), "X-Trace-HMAC": sign(key, info.decode())}


def sign(key, text):
    return hmac.new(key.encode(), text.encode(), hashlib.sha1).hexdigest()


def now_us():
    return int(time.time() * 1_000_000)


def span_matches(span, method, path):
    """Whether span is the server span of `method path` (path without its query)."""
    tags = span.get("tags") or {}
    by_name = span.get("name") == f"{method} {path}".lower()
    by_tags = tags.get("http.path") == path and tags.get("http.method") == method
    return by_name or by_tags


def b3_value(trace_id, span_id, sampled=None, parent_id=None):
    """The single b3 header: {trace}-{span}[-{sampled}[-{parent}]]."""
    parts = [trace_id, span_id] + ([sampled] if sampled is not None else [])
    return "-".join(parts + ([parent_id] if parent_id else []))


# TomographPropagate's default: the formats handed on unless configured otherwise.
DEFAULT_PROPAGATE = ("tracecontext", "b3", "x-trace-info")
# The headers of each format, as WSGI environ keys.
TRACE_HEADERS = {
    "tracecontext": ("HTTP_TRACEPARENT", "HTTP_TRACESTATE"),
    "b3": ("HTTP_B3",),
    "b3multi": ("HTTP_X_B3_TRACEID", "HTTP_X_B3_SPANID", "HTTP_X_B3_PARENTSPANID",
                "HTTP_X_B3_SAMPLED", "HTTP_X_B3_FLAGS"),
    "x-trace-info": ("HTTP_X_TRACE_INFO", "HTTP_X_TRACE_HMAC"),
}


def as_environ(headers):
    """HTTP headers ({name: value}) as the WSGI environ names them."""
    return {"HTTP_" + name.upper().replace("-", "_"): value for name, value in headers.items()}


class AppViewAssertions:
    """What the application (or a backend) behind must see of the span that serves it.
    PROPAGATE: the formats the server hands on (TomographPropagate)."""

    PROPAGATE = DEFAULT_PROPAGATE
    # Whether every request is deep-traced (TomographDeepTraceRate 1), so that X-Trace-Info
    # comes with every sampled one. Else it comes only where the caller sent a valid one
    # (test_osprofiler_compat checks when): checked here when it comes.
    DEEP_TRACED = False

    def assertCarries(self, env, trace_id, span_id, flags, parent_id=None, hmac_keys=(),
                      debug=False):
        """The trace headers of env (WSGI names) carry this context in each format handed
        on, and none of the others. flags: the two hex digits of traceparent, whose bit 1 is
        the sampling decision; hmac_keys: the server's (X-Trace-HMAC signs with the first)."""
        sampled = bool(int(flags, 16) & 1)
        for name, keys in TRACE_HEADERS.items():
            if name not in self.PROPAGATE:
                self.assertEqual([k for k in keys if k in env], [], f"{name} is not handed on")
        if "tracecontext" in self.PROPAGATE:
            self.assertEqual(env.get("HTTP_TRACEPARENT"), f"00-{trace_id}-{span_id}-{flags}", env)
        if "b3" in self.PROPAGATE:
            decision = "d" if debug else "1" if sampled else "0"
            # The parent is optional in b3; when there, it is the span's.
            self.assertIn(env.get("HTTP_B3"), {b3_value(trace_id, span_id, decision),
                                               b3_value(trace_id, span_id, decision, parent_id)},
                          env)
        if "b3multi" in self.PROPAGATE:
            expected = {"HTTP_X_B3_TRACEID": trace_id, "HTTP_X_B3_SPANID": span_id}
            if parent_id:
                expected["HTTP_X_B3_PARENTSPANID"] = parent_id
            if debug:
                expected["HTTP_X_B3_FLAGS"] = "1"
            else:
                expected["HTTP_X_B3_SAMPLED"] = "1" if sampled else "0"
            self.assertEqual({k: env[k] for k in TRACE_HEADERS["b3multi"] if k in env},
                             expected, env)
        if "x-trace-info" in self.PROPAGATE and (sampled or debug) and (
                self.DEEP_TRACED or "HTTP_X_TRACE_INFO" in env):
            info = json.loads(base64.urlsafe_b64decode(env["HTTP_X_TRACE_INFO"]))
            self.assertEqual(info.get("base_id"), str(uuid.UUID(hex=trace_id)), info)
            if hmac_keys:
                # osprofiler honours only signed X-Trace-Info.
                self.assertEqual(env.get("HTTP_X_TRACE_HMAC"),
                                 sign(hmac_keys[0], env["HTTP_X_TRACE_INFO"]), env)
        elif "x-trace-info" in self.PROPAGATE and not (sampled or debug):
            # osprofiler has no sampled flag: the header itself asks for a profile.
            self.assertNotIn("HTTP_X_TRACE_INFO", env, "an unsampled trace is not profiled")

    def assertAppSeesContext(self, env, trace_id, span_id, flags, parent_id=None, hmac_keys=(),
                             debug=False):
        self.assertEqual(env.get("TOMOGRAPH_TRACE_ID"), trace_id, env)
        self.assertEqual(env.get("TOMOGRAPH_SPAN_ID"), span_id, env)
        self.assertCarries(env, trace_id, span_id, flags, parent_id, hmac_keys, debug)

    def assertAppSeesSpan(self, env, span, hmac_keys=()):
        # Sampled; a trace started here also has the W3C Level 2 random-trace-id flag.
        flags = "01" if span.get("parentId") else "03"
        self.assertAppSeesContext(env, span["traceId"], span["id"], flags, span.get("parentId"),
                                  hmac_keys, span.get("debug", False))


class TracingTestCase(AppViewAssertions, unittest.TestCase):
    """One httpd with mod_tomograph per test class, its exporters on loopback, all stopped
    after the class whatever happens. Subclasses choose ZIPKIN, STATSD, DIRECTIVES,
    SITE_CONFIG, FILES, MPM, LOG_IDS and DUAL_STACK (see Httpd), and may start more servers in
    start_backends().
    OTLP: TomographOTLP to the same receiver as Zipkin (its records(format="otlp"))."""

    ZIPKIN = False
    OTLP = False
    STATSD = False
    DIRECTIVES = ()
    SITE_CONFIG = ()
    FILES = None
    MPM = "event"
    LOG_IDS = True
    DUAL_STACK = False
    receiver = None
    statsd = None

    @classmethod
    def setUpClass(cls):
        cls.workdir = Path(tempfile.mkdtemp(prefix="tomograph-it-work-"))
        if not KEEP_ROOTS:
            cls.addClassCleanup(shutil.rmtree, cls.workdir, ignore_errors=True)
        # Batches close within 200 ms (the default waits up to 1 s), so that a span that
        # would come twice comes within the short waits of server_span and wait_for_trace.
        cls.exporter_directives = ["TomographBatch 512 200"]
        if cls.ZIPKIN or cls.OTLP:
            cls.receiver = cls.stopped_after_class(ZipkinReceiver(cls.workdir))
        if cls.ZIPKIN:
            cls.exporter_directives.append(f"TomographZipkin {cls.receiver.url}")
        if cls.OTLP:
            cls.exporter_directives.append(f"TomographOTLP {cls.receiver.otlp_url}")
        if cls.STATSD:
            cls.statsd = cls.stopped_after_class(cls.start_statsd())
            cls.exporter_directives.append(f"TomographStatsd 127.0.0.1:{cls.statsd.port}")
        cls.start_backends()
        cls.httpd = cls.start_httpd(cls.DIRECTIVES, cls.site_config(), cls.FILES)

    @classmethod
    def start_statsd(cls):
        """The class's statsd daemon (STATSD): one that only prints what it gets here."""
        return StatsdDaemon(cls.workdir)

    @classmethod
    def start_backends(cls):
        """Starts what the main httpd's configuration needs first (nothing here)."""

    @classmethod
    def stopped_after_class(cls, server):
        """server (anything with a stop()), stopped after the class whatever happens."""
        cls.addClassCleanup(server.stop)
        return server

    @classmethod
    def site_config(cls):
        return cls.SITE_CONFIG

    @classmethod
    def httpd_env(cls):
        """Variables added to the environment of the class's httpd (see Httpd's env)."""
        return {}

    @classmethod
    def start_httpd(cls, directives=(), site_config=(), files=None):
        """An httpd shipping to the class's exporters, stopped after the class."""
        httpd = Httpd(list(directives) + cls.exporter_directives, site_config=site_config,
                      files=files, mpm=cls.MPM, log_ids=cls.LOG_IDS, dual_stack=cls.DUAL_STACK,
                      env=cls.httpd_env())
        cls.addClassCleanup(httpd.stop)
        httpd.start()
        return httpd

    # Where the spans land: the receiver by default; span-file tests override these two.
    def span_records(self):
        """[(span, schema errors or None)] of every span exported so far."""
        return [(r["span"], None if r["valid"] else r["errors"]) for r in self.receiver.records()]

    def describe_exports(self):
        return self.receiver.describe() + "\n" + self.httpd.describe()

    def request(self, path, headers=None, method="GET", expect_status=200, body=None):
        response = self.httpd.request(method, path, headers=headers, body=body)
        self.assertEqual(response.status, expect_status,
                         f"{method} {path} with {headers}: {response.body}")
        return response

    def spans_of(self, path, method="GET", kind="SERVER"):
        path = path.split("?", 1)[0]
        return [(span, errors) for span, errors in self.span_records()
                if isinstance(span, dict) and span.get("kind") == kind
                and span_matches(span, method, path)]

    def server_span(self, path, method="GET"):
        """The one span of the one request made to path; fails if it is invalid or doubled."""
        found = wait_for(lambda: self.spans_of(path, method), f"the span of {method} {path}",
                         context=self.describe_exports)
        # A second span for the same request would come in the same or the next batch.
        time.sleep(0.3)
        found = self.spans_of(path, method)
        self.assertEqual(len(found), 1, f"one span expected for {method} {path}: {found}")
        span, errors = found[0]
        self.assertIsNone(errors, f"span of {method} {path} fails zipkin2-api.yaml: {span}")
        return span

    def spans_created(self):
        """TomographSpansCreated of the class's httpd (whose site configuration has
        STATUS_SITE_CONFIG). The span of Httpd.start's readiness probe (GET /ready.txt) is
        made once the probe has its answer, maybe after a first reading: the first one
        of a class waits until that span has reached the receiver, and so is counted."""
        cls = type(self)
        if not cls.__dict__.get("readiness_span_counted"):
            wait_for(lambda: any(span_matches(span, "GET", "/ready.txt")
                                 and span["localEndpoint"].get("port") == self.httpd.port
                                 for span, _ in self.span_records()),
                     "the span of httpd's readiness probe", context=self.describe_exports)
            cls.readiness_span_counted = True
        return self.httpd.status_counters()["SpansCreated"]

    def traced(self, path, headers=None, method="GET", expect_status=200):
        """Makes the request and returns (response, its server span)."""
        response = self.request(path, headers, method, expect_status)
        return response, self.server_span(path, method)

    def spans_in_trace(self, trace_id):
        return [span for span, _ in self.span_records()
                if isinstance(span, dict) and span.get("traceId") == trace_id]

    def wait_for_trace(self, trace_id, count):
        """The `count` spans of a trace, once they are all in (and no more came)."""
        wait_for(lambda: len(self.spans_in_trace(trace_id)) >= count,
                 f"{count} spans of trace {trace_id}", context=self.describe_exports)
        time.sleep(0.3)
        spans = self.spans_in_trace(trace_id)
        self.assertEqual(len(spans), count, f"spans of trace {trace_id}: {spans}")
        return spans

    def assertNoSpanOf(self, path, method="GET"):
        """No span of the request(s) already made to path: spans leave in order, so once the
        span of a later request is in, theirs would be too."""
        marker = f"/app/after-{uuid.uuid4().hex[:12]}"
        # A sampled caller: recorded whatever the sampling settings.
        self.traced(marker, {"traceparent": f"00-{random_hex(32)}-{random_hex(16)}-01"})
        time.sleep(0.3)
        self.assertEqual(self.spans_of(path, method), [], f"{method} {path} was recorded")

    def assertNewTrace(self, span, *foreign_ids):
        self.assertRegex(span["traceId"], r"^[0-9a-f]{32}$")
        self.assertRegex(span["id"], r"^[0-9a-f]{16}$")
        self.assertNotIn("parentId", span, f"a new trace has no parent: {span}")
        for foreign in foreign_ids:
            self.assertNotEqual(span["traceId"], foreign.lower(), f"trace was continued: {span}")

    def assertContinues(self, span, trace_id, caller_span_id):
        self.assertEqual(span["traceId"], trace_id, f"caller's trace id lost: {span}")
        self.assertEqual(span.get("parentId"), caller_span_id, f"caller's span id lost: {span}")
        self.assertRegex(span["id"], r"^[0-9a-f]{16}$")
        self.assertNotEqual(span["id"], caller_span_id, f"server span reuses the caller's id: {span}")
