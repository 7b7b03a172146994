/* tomograph._tomograph: libtomograph's spans as Python objects.
 *
 * The handles of include/tomograph.h, one Span object each: Python keeps
 * the context (which span is current, per thread and per coroutine) in a
 * contextvar of the pure-Python part (tomograph/__init__.py), not in the
 * library's per-thread stack, which a coroutine switch would confuse.
 *
 * A misuse (a span used after it ended, a token that does not parse) raises
 * tomograph.TraceError; nothing here can crash the interpreter.  The calls
 * into the library neither block nor release the GIL: each is a few hundred
 * nanoseconds of work in this thread. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <ctype.h>

#include "tomograph.h"

typedef struct {
    PyObject_HEAD
    tomograph_span_t *span; /* NULL once ended */
} SpanObject;

typedef struct {
    PyObject *trace_error;
    PyTypeObject *span_type;
} module_state;

static struct PyModuleDef tomograph_module;

static module_state *state_of(PyObject *module)
{
    return PyModule_GetState(module);
}

static module_state *state_of_type(PyTypeObject *type)
{
    return state_of(PyType_GetModuleByDef(type, &tomograph_module));
}

/* Raises TraceError for a status of the library's; NULL to return it. */
static PyObject *trace_error(PyTypeObject *type, int status, const char *doing)
{
    if (status == TOMOGRAPH_ENOMEM)
        return PyErr_NoMemory();
    PyErr_Format(state_of_type(type)->trace_error, "%s: %s", doing, tomograph_strerror(status));
    return NULL;
}

static tomograph_span_t *open_span(SpanObject *self, const char *doing)
{
    if (!self->span)
        PyErr_Format(state_of_type(Py_TYPE(self))->trace_error,
                     "%s: the span has ended", doing);
    return self->span;
}

static PyObject *wrap(PyTypeObject *type, tomograph_span_t *span)
{
    SpanObject *object = PyObject_New(SpanObject, type);
    if (!object) {
        tomograph_span_end(span);
        return NULL;
    }
    object->span = span;
    return (PyObject *)object;
}

/* A span never ended by Python (its object collected while open) is
 * finished then: the library's memory is not left behind. */
static void span_dealloc(SpanObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    if (self->span)
        tomograph_span_end(self->span);
    PyObject_Free(self);
    Py_DECREF(type);
}

/* --- headers through Python objects --- */

/* What a get-header callback reads: a WSGI environ (HTTP_X_TRACE_INFO) or
 * a mapping of headers (any case), and the bytes of the value it last gave
 * (the library reads it before the next call). */
typedef struct {
    PyObject *headers;
    int is_environ;
    PyObject *last; /* a new reference, or NULL */
    int failed;
} header_source_t;

static PyObject *header_key(const header_source_t *source, const char *name)
{
    char key[128];
    size_t i, at = 0;
    if (!source->is_environ)
        return PyUnicode_FromString(name);
    at = (size_t)snprintf(key, sizeof(key), "HTTP_");
    for (i = 0; name[i] && at + 1 < sizeof(key); i++, at++)
        key[at] = name[i] == '-' ? '_' : (char)toupper((unsigned char)name[i]);
    key[at] = '\0';
    return PyUnicode_FromString(key);
}

static const char *get_header(void *carrier, const char *name)
{
    header_source_t *source = carrier;
    PyObject *key, *value;
    if (source->failed)
        return NULL;
    key = header_key(source, name);
    value = key ? PyObject_CallMethod(source->headers, "get", "O", key) : NULL;
    Py_XDECREF(key);
    if (!value || !PyUnicode_Check(value)) {
        if (!value)
            source->failed = 1;
        Py_XDECREF(value);
        return NULL;
    }
    Py_XSETREF(source->last, value);
    return PyUnicode_AsUTF8(value);
}

static void set_header(void *carrier, const char *name, const char *value)
{
    header_source_t *sink = carrier;
    PyObject *py_value;
    if (sink->failed)
        return;
    py_value = PyUnicode_FromString(value);
    if (!py_value || PyMapping_SetItemString(sink->headers, name, py_value) < 0)
        sink->failed = 1;
    Py_XDECREF(py_value);
}

/* --- Span --- */

/* None, or TraceError for what the library answered. */
static PyObject *none_or_error(SpanObject *self, int status, const char *doing)
{
    return status ? trace_error(Py_TYPE(self), status, doing) : Py_NewRef(Py_None);
}

/* A call of the library's that takes the span and one string: annotate, fail. */
static PyObject *with_text(SpanObject *self, PyObject *arg,
                           int (*call)(tomograph_span_t *, const char *), const char *doing)
{
    const char *text = PyUnicode_AsUTF8(arg);
    tomograph_span_t *span = text ? open_span(self, doing) : NULL;
    return span ? none_or_error(self, call(span, text), doing) : NULL;
}

static PyObject *span_annotate(SpanObject *self, PyObject *arg)
{
    return with_text(self, arg, tomograph_span_annotate, "annotate");
}

static PyObject *span_tag(SpanObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    const char *key, *value;
    tomograph_span_t *span;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "tag(key, value)");
        return NULL;
    }
    key = PyUnicode_AsUTF8(args[0]);
    value = key ? PyUnicode_AsUTF8(args[1]) : NULL;
    span = value ? open_span(self, "tag") : NULL;
    if (!span)
        return NULL;
    return none_or_error(self, tomograph_span_tag(span, key, value), "tag");
}

static PyObject *span_fail(SpanObject *self, PyObject *arg)
{
    return with_text(self, arg, tomograph_span_fail, "fail");
}

static PyObject *span_token(SpanObject *self, PyObject *unused)
{
    char token[TOMOGRAPH_TOKEN_SIZE];
    tomograph_span_t *span = open_span(self, "token");
    int status;
    if (!span)
        return NULL;
    status = tomograph_span_token(span, token, sizeof(token));
    return status ? trace_error(Py_TYPE(self), status, "token") : PyUnicode_FromString(token);
}

static PyObject *span_inject(SpanObject *self, PyObject *headers)
{
    header_source_t sink = {.headers = headers};
    tomograph_span_t *span = open_span(self, "inject");
    int status;
    if (!span)
        return NULL;
    status = tomograph_span_inject(span, set_header, &sink);
    return sink.failed ? NULL : none_or_error(self, status, "inject");
}

static PyObject *span_end(SpanObject *self, PyObject *unused)
{
    tomograph_span_t *span = open_span(self, "end");
    if (!span)
        return NULL;
    self->span = NULL;
    return none_or_error(self, tomograph_span_end(span), "end");
}

static PyObject *span_get_name(SpanObject *self, void *unused)
{
    tomograph_span_t *span = open_span(self, "name");
    return span ? PyUnicode_FromString(tomograph_span_name(span)) : NULL;
}

static PyObject *span_get_ended(SpanObject *self, void *unused)
{
    return PyBool_FromLong(self->span == NULL);
}

static PyMethodDef span_methods[] = {
    {"annotate", (PyCFunction)span_annotate, METH_O, "A note at this time."},
    {"tag", (PyCFunction)(void (*)(void))span_tag, METH_FASTCALL, "A tag: key, value."},
    {"fail", (PyCFunction)span_fail, METH_O, "Marks the span failed, with a reason."},
    {"token", (PyCFunction)span_token, METH_NOARGS, "The trace token that continues it."},
    {"inject", (PyCFunction)span_inject, METH_O,
     "Sets the headers that carry the span's context in a mapping."},
    {"end", (PyCFunction)span_end, METH_NOARGS, "Finishes the span and hands it on."},
    {NULL}
};

static PyGetSetDef span_getset[] = {
    {"name", (getter)span_get_name, NULL, "The span's name.", NULL},
    {"ended", (getter)span_get_ended, NULL, "Whether end() was called.", NULL},
    {NULL}
};

static PyType_Slot span_slots[] = {
    {Py_tp_dealloc, span_dealloc},
    {Py_tp_methods, span_methods},
    {Py_tp_getset, span_getset},
    {Py_tp_doc, "A span of libtomograph's, open until end()."},
    {0, NULL}
};

static PyType_Spec span_spec = {
    .name = "tomograph._tomograph.Span",
    .basicsize = sizeof(SpanObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_DISALLOW_INSTANTIATION,
    .slots = span_slots,
};

/* --- module functions --- */

static PyObject *begin(PyObject *module, PyObject *args, PyObject *kwargs)
{
    static char *keywords[] = {"parent", "token", "kind", "service", "name", "host", "port",
                               NULL};
    PyObject *parent = Py_None;
    const char *token = NULL, *service = NULL, *name, *host = NULL;
    int kind = TOMOGRAPH_KIND_INTERNAL, port = 0, status;
    module_state *state = state_of(module);
    tomograph_span_t *span;
    const tomograph_span_t *parent_span = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kwargs, "Ozizszi", keywords, &parent, &token, &kind,
                                     &service, &name, &host, &port))
        return NULL;
    if (parent != Py_None) {
        if (!PyObject_TypeCheck(parent, state->span_type)) {
            PyErr_SetString(PyExc_TypeError, "parent: a Span or None");
            return NULL;
        }
        parent_span = open_span((SpanObject *)parent, "start");
        if (!parent_span)
            return NULL;
    }
    status = tomograph_span_begin(&span, parent_span, token, (tomograph_kind_t)kind, service,
                                  name, host, port);
    return status ? trace_error(state->span_type, status, "start")
                  : wrap(state->span_type, span);
}

static PyObject *begin_server(PyObject *module, PyObject *args)
{
    const char *service, *name;
    header_source_t source = {0};
    module_state *state = state_of(module);
    tomograph_span_t *span;
    int status;
    if (!PyArg_ParseTuple(args, "zsOp", &service, &name, &source.headers, &source.is_environ))
        return NULL;
    status = tomograph_span_begin_server(&span, service, name, get_header, &source);
    Py_XDECREF(source.last);
    if (source.failed) {
        if (!status)
            tomograph_span_end(span);
        return NULL;
    }
    return status ? trace_error(state->span_type, status, "start_http")
                  : wrap(state->span_type, span);
}

/* The osprofiler driver's: one call per start notification, so positional
 * arguments alone. */
static PyObject *begin_osprofiler(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    const char *text[6];
    module_state *state = state_of(module);
    tomograph_span_t *span;
    int kind, status;
    Py_ssize_t i;
    if (nargs != 7) {
        PyErr_Format(PyExc_TypeError,
                     "begin_osprofiler(kind, service, name, host, base_id, trace_id, "
                     "parent_id): 7 arguments, %zd given", nargs);
        return NULL;
    }
    kind = PyLong_AsLong(args[0]);
    if (kind == -1 && PyErr_Occurred())
        return NULL;
    for (i = 0; i < 6; i++) {
        text[i] = args[i + 1] == Py_None ? NULL : PyUnicode_AsUTF8(args[i + 1]);
        if (!text[i] && args[i + 1] != Py_None)
            return NULL;
    }
    status = tomograph_span_begin_osprofiler(&span, (tomograph_kind_t)kind, text[0], text[1],
                                             text[2], text[3], text[4], text[5]);
    return status ? trace_error(state->span_type, status,
                                       "an osprofiler span (its ids must be UUIDs)")
                  : wrap(state->span_type, span);
}

static PyObject *flush(PyObject *module, PyObject *arg)
{
    long timeout_ms = PyLong_AsLong(arg);
    int status;
    if (timeout_ms == -1 && PyErr_Occurred())
        return NULL;
    Py_BEGIN_ALLOW_THREADS
    status = tomograph_flush(timeout_ms);
    Py_END_ALLOW_THREADS
    return PyBool_FromLong(status == TOMOGRAPH_OK);
}

static PyMethodDef module_functions[] = {
    {"begin", (PyCFunction)(void (*)(void))begin, METH_VARARGS | METH_KEYWORDS,
     "begin(parent, token, kind, service, name, host, port) -> Span"},
    {"begin_server", begin_server, METH_VARARGS,
     "begin_server(service, name, headers, is_environ) -> Span"},
    {"begin_osprofiler", (PyCFunction)(void (*)(void))begin_osprofiler, METH_FASTCALL,
     "begin_osprofiler(kind, service, name, host, base_id, trace_id, parent_id) -> Span"},
    {"flush", flush, METH_O, "flush(timeout_ms) -> whether all was delivered"},
    {NULL}
};

static int module_exec(PyObject *module)
{
    module_state *state = state_of(module);
    state->trace_error = PyErr_NewExceptionWithDoc(
        "tomograph.TraceError", "A misuse of the tracing API (no span, the wrong span, a bad token).",
        PyExc_RuntimeError, NULL);
    if (!state->trace_error || PyModule_AddObjectRef(module, "TraceError", state->trace_error) < 0)
        return -1;
    state->span_type = (PyTypeObject *)PyType_FromModuleAndSpec(module, &span_spec, NULL);
    if (!state->span_type || PyModule_AddType(module, state->span_type) < 0)
        return -1;
    if (PyModule_AddIntConstant(module, "INTERNAL", TOMOGRAPH_KIND_INTERNAL) < 0
        || PyModule_AddIntConstant(module, "SERVER", TOMOGRAPH_KIND_SERVER) < 0
        || PyModule_AddIntConstant(module, "CLIENT", TOMOGRAPH_KIND_CLIENT) < 0)
        return -1;
    return 0;
}

static int module_traverse(PyObject *module, visitproc visit, void *arg)
{
    Py_VISIT(state_of(module)->trace_error);
    Py_VISIT(state_of(module)->span_type);
    return 0;
}

static int module_clear(PyObject *module)
{
    Py_CLEAR(state_of(module)->trace_error);
    Py_CLEAR(state_of(module)->span_type);
    return 0;
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
    {0, NULL}
};

static struct PyModuleDef tomograph_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "tomograph._tomograph",
    .m_doc = "libtomograph's spans (see the tomograph package).",
    .m_size = sizeof(module_state),
    .m_methods = module_functions,
    .m_slots = module_slots,
    .m_traverse = module_traverse,
    .m_clear = module_clear,
};

/* The one symbol the extension exports, which CPython looks up by name. */
PyMODINIT_FUNC PyInit__tomograph(void);

PyMODINIT_FUNC PyInit__tomograph(void)
{
    return PyModuleDef_Init(&tomograph_module);
}
