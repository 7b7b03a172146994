"""Keystone and glance as Debian 12's packages install them (python3-keystone, glance-api),
laid out in a temporary folder instead of /etc and /var/lib, and served by one httpd under
mod_wsgi instead of uWSGI: a <VirtualHost> and a mod_wsgi daemon per service, run as the
service's own user, each reading its configuration from the folder through a small WSGI
script that sets the variable the service reads (OS_KEYSTONE_CONFIG_DIR,
OS_GLANCE_CONFIG_DIR) and then runs Debian's WSGI script unchanged.

Layout (Layout.build, once a run, about 15 s: the databases made, keystone bootstrapped;
glance's service user is made through the first httpd that serves keystone):
  <root>/keystone/   keystone.conf (keystone-manage's), keystone.db (SQLite, WAL), Fernet
                     and credential keys; owned by the user keystone
  <root>/glance/     glance-api.conf (glance-manage's), glance.db (WAL), the file store,
                     staging, locks; owned by the user glance
  <root>/python/     the tomograph package as installed (python/tomograph with the
                     extension and libtomograph.so.0 just built), on both daemons' path
  <root>/conf/<name>/  one httpd's (Services): keystone/keystone.conf and keystone.log,
                     glance/glance-api.conf, glance-api-paste.ini (Debian's) and
                     glance-api.log, and the two WSGI scripts
One httpd runs at a time: each serves keystone on the layout's port, the one in keystone's
catalog, where glance's keystonemiddleware checks tokens."""

import atexit
import configparser
import contextlib
import json
import os
import random
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))

import harness  # noqa: E402  (tests/integration, the fixtures of the integration tests)
from harness import REPO_ROOT, Httpd, free_port, tail, wait_for  # noqa: E402

KEYSTONE_WSGI = Path("/usr/bin/keystone-wsgi-public")
GLANCE_WSGI = Path("/usr/bin/glance-wsgi-api")
KEYSTONE_MANAGE = "/usr/bin/keystone-manage"
GLANCE_MANAGE = "/usr/bin/glance-manage"
GLANCE_PASTE = Path("/etc/glance/glance-api-paste.ini")
REQUIRED = (KEYSTONE_WSGI, GLANCE_WSGI, Path(KEYSTONE_MANAGE), Path(GLANCE_MANAGE), GLANCE_PASTE)

ADMIN_PASSWORD = "Adm1n-pass-" + os.urandom(6).hex()
GLANCE_PASSWORD = "Gl4nce-pass-" + os.urandom(6).hex()
HMAC_KEY = "SECRET_KEY"
REGION = "RegionOne"
# What keystone and glance take long for: the first request imports the service.
SERVICE_START_WAIT = 120.0
MANAGE_TIMEOUT = 180.0



def libs():
    """Where the build put the module, the extension and libtomograph.so.0: the folder of
    the module the harness finds (./.libs when run from the build dir, as make does)."""
    try:
        return harness.find_module().parent
    except FileNotFoundError:
        return Path.cwd() / ".libs"


def missing():
    """Why the suite cannot run here (a sentence), or None."""
    if os.geteuid() != 0:
        return ("run as root: httpd starts as root to run the daemons as keystone and glance,"
                " and the layout is theirs")
    absent = [str(path) for path in REQUIRED if not path.exists()]
    if absent:
        return "not installed: " + ", ".join(absent) + " (run scripts/setup-openstack as root)"
    extension, library = built_package()
    if not (extension and library):
        return f"the Python binding is not built in {libs()} (run make in the build dir)"
    return None


def built_package():
    """(extension, libtomograph.so.0) just built in .libs, either None when missing."""
    extensions = sorted(libs().glob("_tomograph*.so"))
    library = libs() / "libtomograph.so.0"
    return (extensions[0] if extensions else None), (library if library.is_file() else None)


def lasting_port():
    """A loopback port free now, for the whole run: below the kernel's ephemeral range, where
    neither outgoing connections nor the other fixtures' free ports (bind to port 0) land
    meanwhile."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(100):
        port = random.randrange(max(1024, low - 12000), low)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    return free_port()


def write_conf(path, sections):
    parser = configparser.ConfigParser(interpolation=None)
    parser.optionxform = str
    for section, options in sections.items():
        parser[section] = {name: str(value) for name, value in options.items()}
    with open(path, "w") as out:
        parser.write(out)


def chown_tree(path, user):
    shutil.chown(path, user, user)
    for child in Path(path).rglob("*"):
        shutil.chown(child, user, user)


def run(argv, what, user=None, timeout=MANAGE_TIMEOUT, log=None):
    """Runs a command (as user, through runuser, when given); fails with its output."""
    if user:
        argv = ["runuser", "-u", user, "--"] + list(argv)
    done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=timeout, check=False)
    output = done.stdout.decode(errors="replace")
    if log is not None:
        with open(log, "a") as out:
            out.write(f"$ {' '.join(argv)}\n{output}\n")
    if done.returncode != 0:
        raise AssertionError(f"{what} failed ({done.returncode}): {' '.join(argv)}\n{output}")
    return output


def wal(database):
    with contextlib.closing(sqlite3.connect(database)) as connection:
        mode = connection.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if mode != "wal":
        raise AssertionError(f"{database}: journal_mode {mode}, not wal")


WRAPPER = '''\
"""{service} as Debian serves it ({debian}), its configuration from {config_dir}."""
import os
os.environ["{variable}"] = "{config_dir}"
__file__ = "{debian}"
with open(__file__) as _script:
    exec(compile(_script.read(), __file__, "exec"))
'''


class Layout:
    """The two services' files in a temporary folder (see the module's docstring), and the
    port every httpd serves keystone on (keystone_port)."""

    def __init__(self, keep=False):
        self.root = Path(tempfile.mkdtemp(prefix="tomograph-os-"))
        self.root.chmod(0o755)
        self.keep = keep
        self.keystone_dir = self.root / "keystone"
        self.glance_dir = self.root / "glance"
        self.conf_dir = self.root / "conf"
        self.python_dir = self.root / "python"
        self.manage_log = self.root / "manage.log"
        # Where keystone's catalog says it is (bootstrap), so where glance's
        # keystonemiddleware reaches it: every httpd of the run serves keystone there.
        self.keystone_port = lasting_port()
        self.service_user_made = False

    @property
    def keystone_conf(self):
        return self.keystone_dir / "keystone.conf"

    @property
    def glance_conf(self):
        return self.glance_dir / "glance-api.conf"

    @property
    def keystone_url(self):
        return f"http://127.0.0.1:{self.keystone_port}"

    def build(self):
        started = time.monotonic()
        self.assemble_python()
        self.conf_dir.mkdir(mode=0o755)
        self.build_keystone()
        self.build_glance()
        self.seconds = time.monotonic() - started
        return self

    def remove(self):
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)

    # --- the tomograph package, for the daemons' python path ---------------------------

    def assemble_python(self):
        self.python_dir.mkdir(mode=0o755)
        extension, library = built_package()
        package = self.python_dir / "tomograph"
        shutil.copytree(REPO_ROOT / "python" / "tomograph", package,
                        ignore=shutil.ignore_patterns("*.c", "__pycache__"))
        if extension:
            shutil.copy(extension, package)
        if library:
            shutil.copy(library, self.python_dir)
        for path in [self.python_dir, *self.python_dir.rglob("*")]:
            path.chmod(0o755 if path.is_dir() else 0o644)

    # --- keystone ------------------------------------------------------------------------

    def keystone_sections(self, profiler=None, log_dir=None):
        d = self.keystone_dir
        return {
            "DEFAULT": {"log_dir": log_dir or d / "log", "log_file": "keystone.log",
                        "debug": "false"},
            # Connections are closed by whichever thread collects them (NullPool).
            "database": {"connection": f"sqlite:///{d / 'keystone.db'}"
                                       "?check_same_thread=false"},
            "fernet_tokens": {"key_repository": d / "fernet-keys"},
            "fernet_receipts": {"key_repository": d / "fernet-keys"},
            "credential": {"key_repository": d / "credential-keys"},
            # bcrypt's fewest rounds: a password check in milliseconds, not a second.
            "identity": {"password_hash_rounds": 4},
            "oslo_policy": {"policy_dirs": "/etc/keystone/policy.d"},
            "profiler": profiler or {"enabled": "false"},
        }

    def write_keystone_conf(self, profiler=None):
        write_conf(self.keystone_conf, self.keystone_sections(profiler))
        shutil.chown(self.keystone_conf, "keystone", "keystone")

    def build_keystone(self):
        d = self.keystone_dir
        for sub in ("", "log", "fernet-keys", "credential-keys"):
            (d / sub).mkdir(mode=0o750, exist_ok=True)
        chown_tree(d, "keystone")
        self.write_keystone_conf()
        conf = ["--config-file", str(self.keystone_conf)]
        run([KEYSTONE_MANAGE, *conf, "db_sync"], "keystone-manage db_sync", "keystone",
            log=self.manage_log)
        wal(d / "keystone.db")
        run([KEYSTONE_MANAGE, *conf, "fernet_setup", "--keystone-user", "keystone",
             "--keystone-group", "keystone"], "keystone-manage fernet_setup", "keystone",
            log=self.manage_log)
        run([KEYSTONE_MANAGE, *conf, "credential_setup", "--keystone-user", "keystone",
             "--keystone-group", "keystone"], "keystone-manage credential_setup", "keystone",
            log=self.manage_log)
        run([KEYSTONE_MANAGE, *conf, "bootstrap", "--bootstrap-password", ADMIN_PASSWORD,
             "--bootstrap-admin-url", f"{self.keystone_url}/v3/",
             "--bootstrap-internal-url", f"{self.keystone_url}/v3/",
             "--bootstrap-public-url", f"{self.keystone_url}/v3/",
             "--bootstrap-region-id", REGION], "keystone-manage bootstrap", "keystone",
            log=self.manage_log)
        chown_tree(d, "keystone")

    # --- glance --------------------------------------------------------------------------

    def glance_sections(self, profiler=None, log_dir=None):
        d = self.glance_dir
        return {
            "DEFAULT": {"log_dir": log_dir or d / "log", "log_file": "glance-api.log",
                        "debug": "false",
                        "node_staging_uri": f"file://{d / 'staging'}",
                        "enabled_import_methods": "[]"},
            "database": {"connection": f"sqlite:///{d / 'glance.db'}"
                                       "?check_same_thread=false"},
            "glance_store": {"stores": "file", "default_store": "file",
                             "filesystem_store_datadir": d / "images"},
            "os_glance_staging_store": {"filesystem_store_datadir": d / "staging"},
            "os_glance_tasks_store": {"filesystem_store_datadir": d / "tasks"},
            "oslo_concurrency": {"lock_path": d / "lock"},
            "keystone_authtoken": {
                "auth_url": self.keystone_url,
                "www_authenticate_uri": self.keystone_url,
                "auth_type": "password",
                "project_domain_name": "Default",
                "user_domain_name": "Default",
                "project_name": "service",
                "username": "glance",
                "password": GLANCE_PASSWORD,
                "region_name": REGION,
            },
            "paste_deploy": {"flavor": "keystone"},
            "profiler": profiler or {"enabled": "false"},
        }

    def write_glance_conf(self, profiler=None):
        write_conf(self.glance_conf, self.glance_sections(profiler))
        shutil.chown(self.glance_conf, "glance", "glance")

    def build_glance(self):
        d = self.glance_dir
        for sub in ("", "log", "images", "staging", "tasks", "lock"):
            (d / sub).mkdir(mode=0o750, exist_ok=True)
        # Found beside glance-api.conf (glance.common.config._get_paste_config_path).
        shutil.copy(GLANCE_PASTE, d / "glance-api-paste.ini")
        chown_tree(d, "glance")
        self.write_glance_conf()
        run([GLANCE_MANAGE, "--config-file", str(self.glance_conf), "db_sync"],
            "glance-manage db_sync", "glance", log=self.manage_log)
        wal(d / "glance.db")
        chown_tree(d, "glance")

    def ensure_service_user(self, services):
        """Glance's service user (glance, admin in the project service), made once through
        the keystone that services serves."""
        if self.service_user_made:
            return
        _, token = services.token()
        auth = {"X-Auth-Token": token}

        def call(method, path, body=None, expect=(200, 201, 204)):
            response = services.request("keystone", method, path, auth, body)
            if response.status not in expect:
                raise AssertionError(f"{method} {path}: {response.status} {response.body}")
            return response.json() if response.body else None

        project = call("POST", "/v3/projects",
                       {"project": {"name": "service", "domain_id": "default"}})["project"]
        user = call("POST", "/v3/users", {"user": {
            "name": "glance", "password": GLANCE_PASSWORD, "domain_id": "default"}})["user"]
        role = call("GET", "/v3/roles?name=admin")["roles"][0]
        call("PUT", f"/v3/projects/{project['id']}/users/{user['id']}/roles/{role['id']}")
        self.service_user_made = True

    def describe(self):
        return tail(self.manage_log, 30)




def password_auth(user, password, project):
    """The body of keystone's POST /v3/auth/tokens for a password and a project scope."""
    return {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": user, "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}


def service_site(name, service, port, home, script, python_dir, imports=(), processes=1,
                 threads=4):
    """The <VirtualHost> of one service, as Debian's wsgi-keystone.conf lays it out (a
    mod_wsgi daemon as the service's user, the application group the main interpreter),
    with the service's TomographService when the module is loaded; imports: scripts the
    daemon imports at its start (WSGIImportScript, in the virtual host that defines the
    daemon: only there is its process group known)."""
    return (
        f"Listen 127.0.0.1:{port}",
        f"<VirtualHost 127.0.0.1:{port}>",
        f"    ServerName {service}.openstack.test",
        "    <IfModule tomograph_module>",
        f"        TomographService {service}",
        "    </IfModule>",
        f"    WSGIDaemonProcess {service} user={service} group={service} processes={processes}"
        f" threads={threads} display-name=({name}-{service}) home={home}"
        f" python-path={python_dir}",
        f"    WSGIProcessGroup {service}",
        "    WSGIApplicationGroup %{GLOBAL}",
        "    WSGIPassAuthorization On",
        f"    WSGIScriptAlias / {script}",
        *(f"    WSGIImportScript {path} process-group={service} application-group=%{{GLOBAL}}"
          for path in imports),
        "</VirtualHost>",
    )


class Services:
    """One httpd serving keystone and glance from a Layout, keystone on the layout's port
    (the one in its catalog, where glance's keystonemiddleware validates tokens: one
    Services runs at a time) and glance on one of its own; with mod_tomograph
    (directives: the server-wide Tomograph lines) or without. Its configuration files
    (name: their folder under the layout's conf/) take `profiler`, the [profiler] section
    of both services; wsgi_imports: scripts each daemon imports at its start
    (WSGIImportScript); site_config: more lines for httpd."""

    def __init__(self, layout, name, with_module=True, directives=(), profiler=None,
                 wsgi_imports=(), site_config=()):
        self.layout = layout
        self.name = name
        self.with_module = with_module
        self.keystone_port = layout.keystone_port
        self.glance_port = free_port()
        self.conf_dir = layout.conf_dir / name
        self.conf_dir.mkdir(mode=0o755)
        keystone_conf_dir = self.conf_dir / "keystone"
        glance_conf_dir = self.conf_dir / "glance"
        keystone_conf_dir.mkdir(mode=0o750)
        glance_conf_dir.mkdir(mode=0o750)
        # Each httpd's services log beside their configuration.
        self.keystone_log = keystone_conf_dir / "keystone.log"
        self.glance_log = glance_conf_dir / "glance-api.log"
        write_conf(keystone_conf_dir / "keystone.conf",
                   layout.keystone_sections(profiler, keystone_conf_dir))
        write_conf(glance_conf_dir / "glance-api.conf",
                   layout.glance_sections(profiler, glance_conf_dir))
        shutil.copy(GLANCE_PASTE, glance_conf_dir / "glance-api-paste.ini")
        chown_tree(keystone_conf_dir, "keystone")
        chown_tree(glance_conf_dir, "glance")
        scripts = {}
        for service, debian, variable, config_dir in (
                ("keystone", KEYSTONE_WSGI, "OS_KEYSTONE_CONFIG_DIR", keystone_conf_dir),
                ("glance", GLANCE_WSGI, "OS_GLANCE_CONFIG_DIR", glance_conf_dir)):
            scripts[service] = self.conf_dir / f"{service}.wsgi"
            scripts[service].write_text(WRAPPER.format(
                service=service, debian=debian, variable=variable, config_dir=config_dir))
            scripts[service].chmod(0o644)
        site = (*(harness.STATUS_SITE_CONFIG if with_module else ()),
                f'<Directory "{self.conf_dir}">',
                "    Require all granted",
                "</Directory>",
                *(f'<Directory "{Path(script).parent}">\n    Require all granted\n</Directory>'
                  for script in wsgi_imports),
                *service_site(name, "keystone", self.keystone_port, layout.keystone_dir,
                              scripts["keystone"], layout.python_dir, wsgi_imports),
                *service_site(name, "glance", self.glance_port, layout.glance_dir,
                              scripts["glance"], layout.python_dir, wsgi_imports),
                *site_config)
        self.httpd = Httpd(list(directives), with_module=with_module, site_config=site,
                           env={"LD_LIBRARY_PATH": str(layout.python_dir)})

    def start(self):
        """Starts httpd, then waits until both services answer (their first request loads
        them), and makes sure glance's service user exists."""
        self.httpd.start()
        try:
            wait_for(lambda: self._answers(self.keystone_port, "/v3"), "keystone to answer",
                     SERVICE_START_WAIT, interval=0.5, context=self.describe)
            wait_for(lambda: self._answers(self.glance_port, "/versions"),
                     "glance to answer", SERVICE_START_WAIT, interval=0.5,
                     context=self.describe)
            self.layout.ensure_service_user(self)
        except BaseException:
            self.stop()
            raise
        return self

    def _answers(self, port, path):
        if not self.httpd.process.running():
            raise AssertionError(f"httpd exited\n{self.describe()}")
        try:
            return self.httpd.request("GET", path, port=port, timeout=60).status == 200
        except OSError:
            return False

    def stop(self):
        self.httpd.stop()

    def request(self, service, method, path, headers=None, body=None):
        """A request to keystone or glance; a body that is not bytes or text is sent as JSON."""
        port = self.keystone_port if service == "keystone" else self.glance_port
        headers = dict(headers or {})
        if body is not None and not isinstance(body, (bytes, str)):
            body = json.dumps(body)
            headers.setdefault("Content-Type", "application/json")
        return self.httpd.request(method, path, headers=headers, body=body, port=port,
                                  timeout=60)

    def token(self, user="admin", password=None, project="admin"):
        """(the answer to POST /v3/auth/tokens, its X-Subject-Token)."""
        response = self.request("keystone", "POST", "/v3/auth/tokens", body=password_auth(
            user, ADMIN_PASSWORD if password is None else password, project))
        if response.status != 201:
            raise AssertionError(f"token for {user}: {response.status} {response.body}")
        return response, dict(response.headers)["X-Subject-Token"]

    def service_log_errors(self):
        """What keystone and glance logged at level ERROR, as {(logger, message)}: a
        traceback's first line, its ids written "<id>" (keystone logs each 404 and 401
        so)."""
        found = set()
        for log in (self.keystone_log, self.glance_log):
            if not log.exists():
                continue
            for line in log.read_text(errors="replace").splitlines():
                match = re.search(r" ERROR (\S+) \[[^]]*\] (.*)$", line)
                if match:
                    found.add((match.group(1), re.sub(r"[0-9a-f]{32}|[0-9a-f-]{36}", "<id>",
                                                      match.group(2))))
        return found

    def describe(self):
        return "\n".join([self.httpd.describe(), tail(self.keystone_log, 30),
                          tail(self.glance_log, 30)])


_shared = None


def shared_layout():
    """The run's Layout, built at the first call (about 15 s), removed when the run exits
    (kept with TOMOGRAPH_TEST_KEEP=1)."""
    global _shared
    if _shared is None:
        _shared = Layout(keep=harness.KEEP_ROOTS).build()
        atexit.register(_shared.remove)
    return _shared


class RedisServer:
    """Debian's redis-server on a free loopback port, its files in workdir (made if need
    be), nothing saved: the store of osprofiler's own redis driver, for the suite and for
    bench/openstack_cost.py."""

    def __init__(self, workdir):
        workdir = Path(workdir)
        workdir.mkdir(mode=0o755, exist_ok=True)
        self.port = free_port()
        self.process = harness.ChildProcess(
            "redis-server",
            ["/usr/bin/redis-server", "--bind", "127.0.0.1", "--port", str(self.port),
             "--save", "", "--appendonly", "no", "--dir", str(workdir)],
            workdir / "redis.log")
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

    def events(self, base):
        """The osprofiler notifications of a trace (its base_id), oldest first."""
        client = self.client()
        try:
            return [json.loads(item)
                    for item in reversed(client.lrange(f"osprofiler_opt:{base}", 0, -1))]
        finally:
            client.close()

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
