"""tomograph: spans from a Python application, in the same traces as mod_tomograph's.

The API of the Python library this project succeeds, over libtomograph (the C library):

    tomograph.start('my service', 'a query', '127.0.0.1', 80)
    tomograph.annotate('something happened')
    tomograph.stop('a query')

Spans nest: the current span is kept per thread and per coroutine (a contextvar), so
threads, asyncio tasks and greenthreads each have their own. A span goes where
libtomograph sends it: under mod_tomograph (a mod_wsgi daemon or embedded interpreter),
onto the module's queue; elsewhere to the exporters the environment names
(TOMOGRAPH_SPAN_FILE, TOMOGRAPH_ZIPKIN, ...). A misuse raises TraceError.
"""

import functools
import re
import weakref

from tomograph._tomograph import (CLIENT, INTERNAL, SERVER, TraceError, _open, begin,
                                  begin_server, flush, span, start, stop)
from tomograph._tomograph import push as _push, traced_function as _traced_function

__all__ = ["TraceError", "start", "stop", "annotate", "tag", "get_trace_info",
           "add_trace_info_header", "start_http", "traced", "span", "Middleware",
           "before_execute", "after_execute", "flush"]

# What a span costs the application is in the extension: start, stop, the span context
# manager and the function traced() makes, and _open, the contextvar of the spans open in
# this context (a tuple of Spans, innermost last, so that a context copied into a new task
# or thread goes on from the same spans without sharing later changes).


def _current(doing):
    spans = _open.get()
    if not spans:
        raise TraceError(f"{doing}: no span started in this thread or task")
    return spans[-1]


def annotate(message):
    """A note on the current span, at this time."""
    _current("annotate").annotate(str(message))


def tag(key, value):
    """A tag on the current span."""
    _current("tag").tag(str(key), str(value))


def get_trace_info():
    """The trace token of the current span, for start() on another thread or process."""
    return _current("get_trace_info").token()


def add_trace_info_header(headers):
    """Sets the headers that carry the current span's context (traceparent, b3,
    X-Trace-Info) in headers, a dict or anything with __setitem__."""
    _current("add_trace_info_header").inject(headers)


class _LowercaseHeaders:
    """Headers looked up without regard to case."""

    def __init__(self, headers):
        self._headers = {str(key).lower(): value for key, value in headers.items()}

    def get(self, name):
        return self._headers.get(name.lower())


def _request_headers(request):
    """(a mapping, whether it is a WSGI environ) of a request: a WSGI environ, an object with
    one (.environ, as WebOb's), or one with headers (.headers)."""
    if isinstance(request, dict) and ("REQUEST_METHOD" in request
                                      or any(k.startswith("HTTP_") for k in request)):
        return request, True
    if isinstance(getattr(request, "environ", None), dict):
        return request.environ, True
    headers = getattr(request, "headers", request)
    if not hasattr(headers, "items"):
        raise TraceError("start_http: a WSGI environ or an object with headers is needed")
    return _LowercaseHeaders(headers), False


def start_http(service, name, request):
    """Starts a server span for an incoming request, continuing the trace its headers carry
    (under mod_tomograph, the module's span for the request)."""
    headers, is_environ = _request_headers(request)
    return _push(begin_server(service, name, headers, is_environ))


def traced(service, name):
    """@tomograph.traced(service, name): a span for each call of the function, closed when it
    returns or raises (an exception marks it failed and is raised on unchanged)."""
    def decorate(function):
        return functools.update_wrapper(_traced_function(function, service, name), function)
    return decorate


def _end_request(request_span, failure=None):
    """Ends what a request left open (failed), then its span, and leaves the context empty:
    a thread that serves the next request must not find a span of this one."""
    for left in reversed(_open.get()):
        if left is not request_span and not left.ended:
            left.fail("left open")
            left.end()
    _open.set(())
    if failure:
        request_span.fail(failure)
    if not request_span.ended:
        request_span.end()


class _Response:
    """The application's response iterable, ending the request's span once closed."""

    def __init__(self, iterable, request_span):
        self._iterable, self._span = iterable, request_span

    def __iter__(self):
        return iter(self._iterable)

    def close(self):
        try:
            close = getattr(self._iterable, "close", None)
            if close:
                close()
        finally:
            _end_request(self._span)


class Middleware:
    """WSGI middleware: a server span for each request, continuing its trace (under
    mod_tomograph, the module's span), lasting until the response is closed. In a paste
    pipeline:

        [filter:tomo]
        paste.filter_factory = tomograph:Middleware.factory
        service_name = glance-registry
    """

    def __init__(self, app, service_name=None):
        self.app, self.service = app, service_name

    @classmethod
    def factory(cls, global_conf, **local_conf):
        service = local_conf.get("service_name") or global_conf.get("service_name")
        return lambda app: cls(app, service)

    def __call__(self, environ, start_response):
        _open.set(())
        name = f"{environ.get('REQUEST_METHOD', '')} {environ.get('PATH_INFO', '') or '/'}"
        request_span = start_http(self.service, name, environ)

        def traced_start_response(status, headers, exc_info=None):
            code = status.split(" ", 1)[0]
            request_span.tag("http.status_code", code)
            if code.isdigit() and int(code) >= 500:
                request_span.fail(code)
            return start_response(status, headers, exc_info)

        try:
            iterable = self.app(environ, traced_start_response)
        except BaseException as error:
            _end_request(request_span, type(error).__name__)
            raise
        return _Response(iterable, request_span)


# --- SQLAlchemy -----------------------------------------------------------------------

# A literal in SQL text: a quoted string (quotes doubled inside), or a number that is not
# part of a name or a bind parameter (:param_1).
_SQL_LITERAL = re.compile(r"'(?:[^']|'')*'|(?<![\w:.])[-+]?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?\b")
# Per connection, the statements under way: (span, whether to keep literals).
_SQL_SPANS = "tomograph_sql_spans"
_engines_watched = weakref.WeakSet()


def _verb(clauseelement):
    """What a statement does (select, insert...), without compiling it: compiling is what
    SQLAlchemy does next, and costs many times the statement on SQLite."""
    text = clauseelement if isinstance(clauseelement, str) else getattr(clauseelement, "text", None)
    if isinstance(text, str):
        return (text.split(None, 1) or ["sql"])[0].lower()
    return getattr(clauseelement, "__visit_name__", "sql")


def _statement_text(statement, keep_literals=False):
    """A statement as its span shows it: on one line, and its literals replaced by '?'
    unless keep_literals."""
    text = " ".join(statement.split())
    return text if keep_literals else _SQL_LITERAL.sub("?", text)


def _end_statement(connection, statement, failure=None):
    """Ends the connection's latest statement span, its text as SQLAlchemy sent it."""
    spans = connection.info.get(_SQL_SPANS) if connection is not None else None
    if not spans:
        return
    ended, keep_literals = spans.pop()
    if statement:
        ended.tag("sql.statement", _statement_text(statement, keep_literals))
    if failure:
        ended.fail(failure)
    ended.end()


def _statement_failed(context):
    _end_statement(context.connection, context.statement,
                   type(context.original_exception).__name__)


def _watch_errors(engine):
    """A statement the database refuses runs no after_execute: handle_error ends its span."""
    if engine in _engines_watched:
        return
    from sqlalchemy import event
    event.listen(engine, "handle_error", _statement_failed)
    _engines_watched.add(engine)


def before_execute(service, keep_literals=False):
    """A listener for sqlalchemy.event.listen(engine, 'before_execute', ...): a client span
    per statement, named after what it does, with the statement as SQLAlchemy sends it to
    the database as the tag sql.statement, the literals written in it replaced by '?'
    (keep_literals=True keeps them); bound parameters never reach a span."""
    def listener(connection, clauseelement, *rest):
        spans = _open.get()
        parent = spans[-1] if spans else None
        opened = begin(parent, None, CLIENT, service, _verb(clauseelement), None, 0)
        connection.info.setdefault(_SQL_SPANS, []).append((opened, keep_literals))
        _watch_errors(connection.engine)
    return listener


def after_execute(service):
    """A listener for sqlalchemy.event.listen(engine, 'after_execute', ...): ends the
    statement's span, tagged with the text SQLAlchemy compiled for it."""
    def listener(connection, clauseelement, multiparams, params, *rest):
        result = rest[-1] if rest else None
        context = getattr(result, "context", None)
        _end_statement(connection, getattr(context, "statement", None))
    return listener
