"""Span lines as the module's writer (src/tg_zipkin.c) makes them, for the tests of
tomograph-view: its members in its order, so that the tool's fast first pass reads them."""

import json
import os
import subprocess
from pathlib import Path

VIEW = Path(os.environ.get("TOMOGRAPH_VIEW")
            or Path(__file__).resolve().parent.parent.parent / "tools" / "tomograph-view")
T0 = 1765116000000000  # µs since the epoch: 2025-12-07 14:00:00 UTC


def span(trace, span_id, parent, name, service, start, duration, status=None, error=False,
         kind="SERVER", tags=None, notes=(), shared=False, remote=None):
    s = {"traceId": trace}
    if parent:
        s["parentId"] = parent
    s.update({"id": span_id, "kind": kind, "name": name, "timestamp": start,
              "duration": duration,
              "localEndpoint": {"serviceName": service, "ipv4": "127.0.0.1", "port": 80}})
    if remote:
        s["remoteEndpoint"] = {"serviceName": remote, "ipv4": "10.0.0.9", "port": 3306}
    s["annotations"] = ([{"timestamp": start, "value": "start"}]
                        + [{"timestamp": at, "value": value} for at, value in notes]
                        + [{"timestamp": start + duration, "value": "stop"}])
    all_tags = {}
    if status:
        all_tags["http.status_code"] = str(status)
    all_tags.update(tags or {})
    if error:
        all_tags["error"] = "true"
    if all_tags:
        s["tags"] = all_tags
    if shared:
        s["shared"] = True
    return json.dumps(s, separators=(",", ":"))


# Three traces, a minute apart: NOVA (nested three deep, an error), KEYSTONE (one span,
# continued from a caller's), GLANCE (slow).
NOVA, KEYSTONE, GLANCE = "a1" * 16, "b2" * 16, "c3" * 16
ROOT, DB, IMAGE, IMAGE_DB = "1000000000000001", "1000000000000002", "1000000000000003", \
    "1000000000000004"


def sample_lines():
    return [
        span(NOVA, ROOT, None, "get /servers", "nova", T0, 10000, 200,
             tags={"http.method": "GET", "http.path": "/servers"}),
        span(NOVA, DB, ROOT, "select servers", "nova", T0 + 1000, 2000, kind="CLIENT",
             remote="mysql", tags={"db.statement": "SELECT * FROM servers WHERE id = ?"}),
        span(NOVA, IMAGE, ROOT, "get /images/7", "glance", T0 + 4000, 5000, 500, error=True,
             notes=[(T0 + 4500, "body read")]),
        span(NOVA, IMAGE_DB, IMAGE, "select images", "glance", T0 + 5000, 1000, kind="CLIENT"),
        span(KEYSTONE, "2000000000000001", "e457b5a2e4d86bd1", "post /v3/auth/tokens",
             "keystone", T0 + 60_000_000, 300, 201),
        span(GLANCE, "3000000000000001", None, "put /images/9/file", "glance",
             T0 + 120_000_000, 2_500_000, 204),
    ]


def run_view(*args, stdin=None, timeout=60):
    """tomograph-view's (status, stdout, stderr)."""
    done = subprocess.run(["/usr/bin/python3", str(VIEW), "--colour", "never", *map(str, args)],
                          input=stdin, capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stdout, done.stderr
