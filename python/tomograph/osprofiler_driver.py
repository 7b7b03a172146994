"""osprofiler's spans through mod_tomograph: the driver behind `connection_string =
tomograph://` in an OpenStack service's `[profiler]` section.

osprofiler picks a driver among the subclasses of osprofiler.drivers.base.Driver that are
defined when the service initializes it, and imports only its own: this file must run in
the service's interpreter first, which takes one line of the server's configuration and
changes neither the service nor osprofiler (README.md, "Tracing OpenStack"):

    WSGIImportScript /usr/lib/python3/dist-packages/tomograph/osprofiler_driver.py \\
        process-group=keystone application-group=%{GLOBAL}

(under uWSGI, `import = tomograph.osprofiler_driver`). It runs as that script or as the
module tomograph.osprofiler_driver alike: its imports are absolute.

Each span osprofiler notifies, a `<name>-start` and then a `<name>-stop`, becomes one span of
libtomograph's, its ids mapped from osprofiler's UUIDs as mod_tomograph maps X-Trace-Info's:
under mod_tomograph it goes onto the module's queue, a child of the module's SERVER span
when the request came through it. No redis, no message bus, no I/O in the request.

What osprofiler records that may hold an application's data never reaches a span: of its
`info`, only the request's method, path and scheme, the SQL statement (its literals
replaced by '?', as the SQL listeners write it) and a traced function's name become tags;
SQL parameters and results, function arguments and results, error messages and the query
string are dropped. An error's type marks the span failed.
"""

import logging

from osprofiler.drivers import base

from tomograph import _statement_text
from tomograph._tomograph import CLIENT, INTERNAL, SERVER, TraceError, begin_osprofiler

LOG = logging.getLogger("tomograph.osprofiler_driver")

# osprofiler's span names that are a request served or a call out; the rest is work inside.
_KINDS = {"wsgi": SERVER, "db": CLIENT, "rpc": CLIENT}
# The members of `info` that become tags, as (section, member): all that is kept.
_KEPT = {("request", "method"), ("request", "path"), ("request", "scheme"),
         ("function", "name")}
_STATEMENT = ("db", "statement")
# Spans started and never stopped (a notification lost) are ended, failed, beyond this many.
_MAX_OPEN = 4096
# Addresses a service binds to, which are no address of its own.
_ANY_ADDRESS = {"0.0.0.0", "::", ""}


def _tags(info):
    """(key, value) of the members of osprofiler's info that a span keeps."""
    for section, members in info.items():
        if not isinstance(members, dict):
            continue
        for member, value in members.items():
            if (section, member) in _KEPT:
                yield f"{section}.{member}", str(value)
            elif (section, member) == _STATEMENT and isinstance(value, str):
                yield "db.statement", _statement_text(value)


class TomographDriver(base.Driver):
    """osprofiler's notifications as libtomograph's spans (see the module's docs)."""

    def __init__(self, connection_str, project=None, service=None, host=None, **kwargs):
        super().__init__(connection_str, project=project, service=service, host=host, **kwargs)
        self._service = project or service
        self._host = None if host in _ANY_ADDRESS else host
        # osprofiler's span id -> our open span. One driver serves every thread and
        # greenthread of the process: osprofiler's ids are unique, and a dict's get, set and
        # pop are each atomic under the GIL.
        self._open = {}
        self._refusals = 0

    @classmethod
    def get_name(cls):
        return "tomograph"

    def notify(self, info, **kwargs):
        """A notification of osprofiler's: never raises into the service."""
        try:
            name = info["name"]
            if name.endswith("-start"):
                self._start(name[:-len("-start")], info)
            elif name.endswith("-stop"):
                self._stop(info)
        except (TraceError, KeyError, TypeError, AttributeError) as error:
            self._refused(info, error)

    def _start(self, name, notification):
        details = notification.get("info") or {}
        span = begin_osprofiler(_KINDS.get(name, INTERNAL), self._service, name, self._host,
                                notification["base_id"], notification["trace_id"],
                                notification["parent_id"])
        for key, value in _tags(details):
            span.tag(key, value)
        if len(self._open) >= _MAX_OPEN:
            self._end_oldest()
        self._open[notification["trace_id"]] = span

    def _stop(self, notification):
        span = self._open.pop(notification["trace_id"], None)
        if span is None:
            return
        details = notification.get("info") or {}
        if details.get("etype"):
            span.fail(str(details["etype"]))
        for key, value in _tags(details):
            span.tag(key, value)
        span.end()

    def _end_oldest(self):
        try:
            oldest = next(iter(self._open))
            span = self._open.pop(oldest)
        except (StopIteration, KeyError, RuntimeError):
            return  # another thread took it first
        span.fail("never stopped")
        span.end()

    def _refused(self, notification, error):
        """A notification that makes no span: said once at warning, then at debug."""
        self._refusals += 1
        log = LOG.warning if self._refusals == 1 else LOG.debug
        log("tomograph: osprofiler notification %r makes no span (%s); later ones are "
            "logged at debug", notification.get("name") if isinstance(notification, dict)
            else notification, error)

    def _not_stored_here(self, *args, **kwargs):
        raise NotImplementedError(
            "tomograph:// keeps no traces: mod_tomograph ships them to its exporters "
            "(Zipkin, OTLP, statsd, the span file); read them there")

    get_report = list_traces = list_error_traces = _not_stored_here
