#!/usr/bin/python3
"""A CGI program that traces its work with libtomograph (include/tomograph.h), called
through ctypes, for tests/integration/test_app_library.py: httpd execs it (mod_cgid's
daemon or an httpd child under mod_cgi), so it has none of httpd's memory, only the
descriptors it inherited across exec, and an environment made from its request's.

It continues the request's trace (HTTP_TRACEPARENT, from the module) in a SERVER span of
its own and stops it, then answers, as JSON, the status of each call (0 is
TOMOGRAPH_OK), its span's token, the TOMOGRAPH_* variables it was given, the trace id the
module gave the request, and the descriptors it holds on the module's memfd. With the
query "suexec" it first runs itself again with the environment suexec would leave it
(the CGI variables and the request's headers, none of the module's), and the same
descriptors. The library is the libtomograph.so beside it."""
import ctypes
import json
import os
import sys

SERVICE = b"library-cgi"
TOKEN_SIZE = 56  # TOMOGRAPH_TOKEN_SIZE
GET_HEADER = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p)
# What suexec keeps of a CGI's environment besides HTTP_* (support/suexec.c, safe_env_lst).
SUEXEC_KEEPS = {"CONTENT_LENGTH", "CONTENT_TYPE", "DOCUMENT_ROOT", "GATEWAY_INTERFACE",
                "PATH_INFO", "QUERY_STRING", "REMOTE_ADDR", "REMOTE_PORT", "REQUEST_METHOD",
                "REQUEST_URI", "SCRIPT_FILENAME", "SCRIPT_NAME", "SERVER_NAME", "SERVER_PORT",
                "SERVER_PROTOCOL", "SERVER_SOFTWARE"}
CLEANED = "--cleaned-as-suexec-would"


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


def memfd_descriptors():
    """The descriptors this process holds on the module's memfd."""
    held = []
    for name in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{name}").startswith("/memfd:tomograph"):
                held.append(int(name))
        except OSError:
            pass
    return sorted(held)


def main():
    if os.environ.get("QUERY_STRING") == "suexec" and CLEANED not in sys.argv:
        cleaned = {name: value for name, value in os.environ.items()
                   if name in SUEXEC_KEEPS or (name.startswith("HTTP_") and name != "HTTP_PROXY")}
        cleaned["PATH"] = "/usr/local/bin:/usr/bin:/bin"
        os.execve(sys.executable, [sys.executable, __file__, CLEANED], cleaned)
    lib = ctypes.CDLL(os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                   "libtomograph.so"))
    lib.tomograph_start_server.argtypes = (ctypes.c_char_p, ctypes.c_char_p, GET_HEADER,
                                           ctypes.c_void_p)
    lib.tomograph_stop.argtypes = (ctypes.c_char_p,)
    lib.tomograph_token.argtypes = (ctypes.c_char_p, ctypes.c_size_t)
    kept = []
    token = ctypes.create_string_buffer(TOKEN_SIZE)
    codes = {"start_server": lib.tomograph_start_server(SERVICE, b"cgi", header_getter(kept),
                                                        None)}
    codes["token"] = lib.tomograph_token(token, TOKEN_SIZE)
    codes["stop_server"] = lib.tomograph_stop(b"cgi")
    body = json.dumps({"codes": codes, "token": token.value.decode(),
                       "variables": sorted(name for name in os.environ
                                           if name.startswith("TOMOGRAPH_")),
                       "module_trace_id": os.environ.get("TOMOGRAPH_TRACE_ID"),
                       "descriptors": memfd_descriptors()})
    sys.stdout.write("Content-Type: application/json\r\n\r\n" + body)


main()
