#!/usr/bin/python3
"""A CGI program that traces its work with libtomograph (include/tomograph.h), called
through ctypes, for tests/integration/test_app_library.py: httpd execs it (mod_cgid's
daemon or an httpd child under mod_cgi), so it has none of httpd's memory, only what it
inherited across exec, and an environment made from its request's.

It continues the request's trace (HTTP_TRACEPARENT, from the module) in a SERVER span of
its own and stops it, then answers, as JSON, the status of each call (0 is
TOMOGRAPH_OK), the TOMOGRAPH_* variables it was given, the trace id the module gave the
request, and what the descriptor the module's locator names is in this process. The
library's path is the request's TOMOGRAPH_LIBRARY (SetEnv)."""
import ctypes
import json
import os
import sys

SERVICE = b"library-cgi"
GET_HEADER = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p)


def header_getter(kept):
    """A tomograph_get_header_fn over the CGI's environment (HTTP_* variables)."""

    def get(carrier, name):
        value = os.environ.get("HTTP_" + name.decode().upper().replace("-", "_"))
        if value is None:
            return None
        buffer = ctypes.create_string_buffer(value.encode("latin-1"))
        kept.append(buffer)
        return ctypes.addressof(buffer)

    return GET_HEADER(get)


def descriptor_of(locator):
    """What the locator's last field, a descriptor, is open on here (None: nothing)."""
    try:
        return os.readlink(f"/proc/self/fd/{int(locator.rsplit(':', 1)[-1])}")
    except (OSError, ValueError):
        return None


def main():
    lib = ctypes.CDLL(os.environ["TOMOGRAPH_LIBRARY"])
    lib.tomograph_start_server.argtypes = (ctypes.c_char_p, ctypes.c_char_p, GET_HEADER,
                                           ctypes.c_void_p)
    lib.tomograph_stop.argtypes = (ctypes.c_char_p,)
    kept = []
    get = header_getter(kept)
    codes = {"start_server": lib.tomograph_start_server(SERVICE, b"cgi", get, None),
             "stop_server": lib.tomograph_stop(b"cgi")}
    locator = os.environ.get("TOMOGRAPH_SEGMENT", "")
    body = json.dumps({"codes": codes,
                       "variables": sorted(name for name in os.environ
                                           if name.startswith("TOMOGRAPH_")),
                       "module_trace_id": os.environ.get("TOMOGRAPH_TRACE_ID"),
                       "descriptor": descriptor_of(locator) if locator else None})
    sys.stdout.write("Content-Type: application/json\r\n\r\n" + body)


main()
