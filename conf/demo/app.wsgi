"""The demo application behind mod_tomograph, for the demo and the integration tests.

It answers, as JSON, what it was told about the trace: the variables mod_tomograph sets
and the trace headers it passes on. GET <mount>/.../status/<code> answers with that status;
as an ErrorDocument, the app answers with the status of the error it stands for.
GET <mount>/.../log-error/<n> also writes n lines to the error log (wsgi.errors) once its
response headers are out, each quoting, as a careless app would, the query string, the
credential headers and the cookie it sets (the value of the request's X-Set-Cookie).
GET <mount>/.../stream/<n> sends its answer in n + 1 parts, each after STREAM_PAUSE.
GET <mount>/.../slow/<ms> waits that long before it answers.
A request with a body (a length, or chunks) gets the length and SHA-256 of the body the
app read.
"""
import hashlib
import http
import json
import time

TRACE_KEYS = (
    "TOMOGRAPH_TRACE_ID",
    "TOMOGRAPH_SPAN_ID",
    "HTTP_TRACEPARENT",
    "HTTP_TRACESTATE",
    "HTTP_B3",
    "HTTP_X_B3_TRACEID",
    "HTTP_X_B3_SPANID",
    "HTTP_X_B3_PARENTSPANID",
    "HTTP_X_B3_SAMPLED",
    "HTTP_X_B3_FLAGS",
    "HTTP_X_TRACE_INFO",
    "HTTP_X_TRACE_HMAC",
)


CARELESS_KEYS = (
    "QUERY_STRING",
    "HTTP_AUTHORIZATION",
    "HTTP_COOKIE",
    "HTTP_X_AUTH_TOKEN",
    "HTTP_X_SUBJECT_TOKEN",
)

STREAM_PAUSE = 0.1
READ_SIZE = 65536


def numbered(path_info, action):
    """n of a path that ends in "/<action>/<n>", else None."""
    parts = path_info.strip("/").split("/")
    if len(parts) >= 2 and parts[-2] == action and parts[-1].isdigit():
        return int(parts[-1])
    return None


def requested_status(environ):
    asked = numbered(environ.get("PATH_INFO", ""), "status")
    # httpd's REDIRECT_STATUS: the status of the error an ErrorDocument stands for.
    for candidate in (asked, environ.get("REDIRECT_STATUS", "")):
        try:
            return http.HTTPStatus(int(candidate))
        except (TypeError, ValueError):
            pass
    return http.HTTPStatus.OK


def logging_carelessly(environ, lines, body):
    yield body[:1]
    quoted = " ".join(f"{key}={environ.get(key, '')}" for key in CARELESS_KEYS)
    if "HTTP_X_SET_COOKIE" in environ:
        quoted += f" Set-Cookie={environ['HTTP_X_SET_COOKIE']}"
    for number in range(lines):
        environ["wsgi.errors"].write(f"app error {number}: {quoted}\n")
    environ["wsgi.errors"].flush()
    yield body[1:]


def streamed(parts, body):
    for _ in range(parts):
        yield b" "
        time.sleep(STREAM_PAUSE)
    yield body


def body_received(environ, left=None):
    """{"body_bytes": ..., "body_sha256": ...} of the request body (left bytes, or up to its
    end when None) as read."""
    digest, read = hashlib.sha256(), 0
    while left is None or left > read:
        chunk = environ["wsgi.input"].read(READ_SIZE if left is None else min(READ_SIZE, left - read))
        if not chunk:
            break
        digest.update(chunk)
        read += len(chunk)
    return {"body_bytes": read, "body_sha256": digest.hexdigest()}


def application(environ, start_response):
    answer = {key: environ[key] for key in TRACE_KEYS if key in environ}
    # '' in embedded mode, the daemon's name in daemon mode.
    answer["mod_wsgi.process_group"] = environ.get("mod_wsgi.process_group")
    length = int(environ.get("CONTENT_LENGTH") or 0)
    if length:
        answer.update(body_received(environ, length))
    elif environ.get("HTTP_TRANSFER_ENCODING", "").lower() == "chunked":
        answer.update(body_received(environ))
    body = (json.dumps(answer, indent=2, sort_keys=True) + "\n").encode()
    status = requested_status(environ)
    path_info = environ.get("PATH_INFO", "")
    parts = numbered(path_info, "stream")
    time.sleep((numbered(path_info, "slow") or 0) / 1000)
    headers = [("Content-Type", "application/json")]
    if not parts:
        headers.append(("Content-Length", str(len(body))))
    if "HTTP_X_SET_COOKIE" in environ:
        headers.append(("Set-Cookie", environ["HTTP_X_SET_COOKIE"]))
    start_response(f"{status.value} {status.phrase}", headers)
    error_lines = numbered(path_info, "log-error")
    if error_lines:
        return logging_carelessly(environ, error_lines, body)
    if parts:
        return streamed(parts, body)
    return [body]
