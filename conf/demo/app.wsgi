"""The demo application behind mod_tomograph, for the demo and the integration tests.

It answers, as JSON, what it was told about the trace: the variables mod_tomograph sets
and the trace headers it passes on. GET <mount>/status/<code> answers with that status.
"""
import http
import json

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


def requested_status(path_info):
    parts = path_info.strip("/").split("/")
    if len(parts) == 2 and parts[0] == "status" and parts[1].isdigit():
        try:
            return http.HTTPStatus(int(parts[1]))
        except ValueError:
            pass
    return http.HTTPStatus.OK


def application(environ, start_response):
    answer = {key: environ[key] for key in TRACE_KEYS if key in environ}
    # '' in embedded mode, the daemon's name in daemon mode.
    answer["mod_wsgi.process_group"] = environ.get("mod_wsgi.process_group")
    body = (json.dumps(answer, indent=2, sort_keys=True) + "\n").encode()
    status = requested_status(environ.get("PATH_INFO", ""))
    start_response(
        f"{status.value} {status.phrase}",
        [("Content-Type", "application/json"), ("Content-Length", str(len(body)))],
    )
    return [body]
