"""An application that traces its own work with libtomograph (include/tomograph.h), called
through ctypes, for tests/integration/test_app_library.py.

Each request continues the request's trace in a SERVER span of its own (from its
headers), nests two spans under it, and continues the inner one on a second thread through
its token. It answers, as JSON, the status of every call (0 is TOMOGRAPH_OK), the token and
the trace id the module gave the request. The library's path is the request's
TOMOGRAPH_LIBRARY (SetEnv)."""
import ctypes
import json
import threading

SERVICE = b"library-app"
TOKEN_SIZE = 56  # TOMOGRAPH_TOKEN_SIZE

GET_HEADER = ctypes.CFUNCTYPE(ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p)
_libraries = {}


def library(path):
    """The library, loaded once per process, its calls typed."""
    if path not in _libraries:
        lib = ctypes.CDLL(path)
        lib.tomograph_start.argtypes = (ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p,
                                        ctypes.c_int, ctypes.c_char_p)
        lib.tomograph_start_server.argtypes = (ctypes.c_char_p, ctypes.c_char_p, GET_HEADER,
                                               ctypes.c_void_p)
        lib.tomograph_stop.argtypes = (ctypes.c_char_p,)
        lib.tomograph_tag.argtypes = (ctypes.c_char_p, ctypes.c_char_p)
        lib.tomograph_annotate.argtypes = (ctypes.c_char_p,)
        lib.tomograph_token.argtypes = (ctypes.c_char_p, ctypes.c_size_t)
        lib.tomograph_depth.argtypes = ()
        _libraries[path] = lib
    return _libraries[path]


def header_getter(environ):
    """A tomograph_get_header_fn over a WSGI environ. The values it returns stay alive until
    the request is over (the library copies them during the call anyway)."""
    kept = []

    def get(carrier, name):
        value = environ.get("HTTP_" + name.decode().upper().replace("-", "_"))
        if value is None:
            return None
        buffer = ctypes.create_string_buffer(value.encode("latin-1"))
        kept.append(buffer)
        return ctypes.addressof(buffer)

    return GET_HEADER(get)


def continue_on_thread(lib, token, codes):
    codes["thread_start"] = lib.tomograph_start(SERVICE, b"in-thread", None, 0, token)
    codes["thread_stop"] = lib.tomograph_stop(b"in-thread")


def application(environ, start_response):
    lib = library(environ["TOMOGRAPH_LIBRARY"])
    get = header_getter(environ)
    codes = {}
    token = ctypes.create_string_buffer(TOKEN_SIZE)
    codes["start_server"] = lib.tomograph_start_server(SERVICE, b"handle", get, None)
    codes["start_outer"] = lib.tomograph_start(SERVICE, b"outer", None, 0, None)
    codes["tag"] = lib.tomograph_tag(b"step", b"outer")
    codes["start_inner"] = lib.tomograph_start(SERVICE, b"inner", None, 0, None)
    codes["annotate"] = lib.tomograph_annotate(b"inner-note")
    codes["token"] = lib.tomograph_token(token, TOKEN_SIZE)
    thread = threading.Thread(target=continue_on_thread, args=(lib, token.value, codes))
    thread.start()
    thread.join()
    codes["stop_inner"] = lib.tomograph_stop(b"inner")
    codes["stop_outer"] = lib.tomograph_stop(b"outer")
    codes["stop_server"] = lib.tomograph_stop(b"handle")
    body = json.dumps({"codes": codes, "depth": lib.tomograph_depth(),
                       "token": token.value.decode(),
                       "module_trace_id": environ.get("TOMOGRAPH_TRACE_ID")}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("Content-Length", str(len(body)))])
    return [body]
