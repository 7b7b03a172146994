"""A glance-registry-like WSGI app traced with `import tomograph`, for
tests/integration/test_python_app.py (tests/integration/python_app.ini puts it behind
tomograph.Middleware in a paste pipeline; tests/integration/python_app.wsgi loads that).

GET .../images: the decorated list_images calls the decorated image_get_all, which runs two
statements on SQLite through SQLAlchemy with tomograph's listeners (one with a secret written
into its text, one with a secret bound as a parameter), and continues the trace on a thread
through get_trace_info(). GET .../call: the decorated call_peer makes an HTTP request with
add_trace_info_header() to the URL in the request's TOMOGRAPH_TEST_PEER (SetEnv).
Each answers, as JSON, what it found, the trace id the module gave the request
(TOMOGRAPH_TRACE_ID) and where tomograph was imported from."""
import http.client
import json
import threading
import urllib.parse

import sqlalchemy
from sqlalchemy import Column, MetaData, String, Table, select, text

import tomograph

SERVICE = "glance"

images = Table("images", MetaData(), Column("name", String), Column("owner", String),
               Column("checksum", String))


def app_factory(global_conf, database, inlined_owner, bound_checksum, **_):
    engine = sqlalchemy.create_engine(database)
    sqlalchemy.event.listen(engine, "before_execute", tomograph.before_execute(SERVICE))
    sqlalchemy.event.listen(engine, "after_execute", tomograph.after_execute(SERVICE))
    return Registry(engine, inlined_owner, bound_checksum)


def prefetch(token, found):
    """On another thread, a span continuing the trace of the one that gave the token."""
    tomograph.start(SERVICE, "prefetch", None, 0, token)
    found["prefetched"] = True
    tomograph.stop("prefetch")


class Registry:
    def __init__(self, engine, inlined_owner, bound_checksum):
        self.engine = engine
        self.inlined_owner, self.bound_checksum = inlined_owner, bound_checksum

    @tomograph.traced(SERVICE, "image_get_all")
    def image_get_all(self):
        with self.engine.connect() as connection:
            # An application that writes a value into its SQL (the listener hides it) ...
            by_owner = connection.execute(
                text(f"SELECT name FROM images WHERE owner = '{self.inlined_owner}'")).scalars()
            by_owner = list(by_owner)
            # ... and one that binds it (never recorded).
            by_checksum = list(connection.execute(
                select(images.c.name).where(images.c.checksum == self.bound_checksum)).scalars())
        return {"by_owner": by_owner, "by_checksum": by_checksum}

    @tomograph.traced(SERVICE, "list_images")
    def list_images(self):
        found = self.image_get_all()
        thread = threading.Thread(target=prefetch, args=(tomograph.get_trace_info(), found))
        thread.start()
        thread.join()
        return found

    @tomograph.traced(SERVICE, "call_peer")
    def call_peer(self, url):
        headers = {}
        tomograph.add_trace_info_header(headers)
        parts = urllib.parse.urlsplit(url)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        try:
            connection.request("GET", parts.path, headers=headers)
            response = connection.getresponse()
            response.read()
            return {"peer_status": response.status, "sent": sorted(headers)}
        finally:
            connection.close()

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == "/images":
            found = self.list_images()
        elif path == "/call":
            found = self.call_peer(environ["TOMOGRAPH_TEST_PEER"])
        else:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        found.update(module_trace_id=environ.get("TOMOGRAPH_TRACE_ID"),
                     tomograph=tomograph.__file__)
        body = json.dumps(found).encode()
        start_response("200 OK", [("Content-Type", "application/json"),
                                  ("Content-Length", str(len(body)))])
        return [body]
