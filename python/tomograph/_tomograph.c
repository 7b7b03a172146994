/* tomograph._tomograph: libtomograph's spans as Python objects, and the
 * spans open in a Python context.
 *
 * The handles of include/tomograph.h, one Span object each.  The context
 * (which spans are open, innermost last, per thread and per coroutine) is a
 * contextvar holding a tuple of Spans, not the library's per-thread stack,
 * which a coroutine switch would confuse: a context copied into a new task
 * or thread goes on from the same spans without sharing later changes.
 *
 * What an application calls per span is here, in C, so that a span costs
 * the library's work and little more: start and stop, the span context
 * manager (`with tomograph.span(...)`) and the function @traced wraps.  The
 * rest of the package (tomograph/__init__.py) is Python.
 *
 * A misuse (a span used after it ended, a token that does not parse, stop
 * of another span than the current one) raises tomograph.TraceError;
 * nothing here can crash the interpreter.  The calls into the library
 * neither block nor release the GIL: each is a few hundred nanoseconds of
 * work in this thread. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

#include <ctype.h>
#include <limits.h>
#include <string.h>

#include "tomograph.h"

typedef struct {
    PyObject_HEAD
    tomograph_span_t *span; /* NULL once ended */
    PyObject *name;         /* the name it began with (an exact str): what stop() checks */
} SpanObject;

/* with tomograph.span(service, name, host, port): a span for the block. */
typedef struct {
    PyObject_HEAD
    PyObject *service, *name, *host, *port; /* as given */
    PyObject *span;                         /* the Span the block opened, or NULL */
} BlockObject;

/* What @tomograph.traced makes of a function: the function in a span. */
typedef struct {
    PyObject_HEAD
    PyObject *function, *service, *name;
    PyObject *dict;     /* the function's attributes, as functools.update_wrapper copies them */
    PyObject *weakrefs;
    vectorcallfunc vectorcall;
} TracedObject;

typedef struct {
    PyObject *trace_error;
    PyTypeObject *span_type;
    PyTypeObject *block_type;
    PyTypeObject *traced_type;
    PyObject *open; /* the ContextVar of the spans open: a tuple of Spans, innermost last */
} module_state;

static module_state *state_of(PyObject *module)
{
    return PyModule_GetState(module);
}

/* None of the types can be subclassed: an object's type is the module's. */
static module_state *state_of_object(PyObject *object)
{
    return PyType_GetModuleState(Py_TYPE(object));
}

/* Raises TraceError for a status of the library's; NULL to return it. */
static PyObject *trace_error(module_state *state, int status, const char *doing)
{
    if (status == TOMOGRAPH_ENOMEM)
        return PyErr_NoMemory();
    PyErr_Format(state->trace_error, "%s: %s", doing, tomograph_strerror(status));
    return NULL;
}

static tomograph_span_t *open_span(SpanObject *self, const char *doing)
{
    if (!self->span)
        PyErr_Format(state_of_object((PyObject *)self)->trace_error,
                     "%s: the span has ended", doing);
    return self->span;
}

/* A Span for span, which it ends if it cannot be made. */
static PyObject *wrap(module_state *state, tomograph_span_t *span, PyObject *name)
{
    SpanObject *object;
    name = PyUnicode_CheckExact(name) ? Py_NewRef(name) : PyObject_Str(name);
    object = name ? PyObject_New(SpanObject, state->span_type) : NULL;
    if (!object) {
        Py_XDECREF(name);
        tomograph_span_end(span);
        return NULL;
    }
    object->span = span;
    object->name = name;
    return (PyObject *)object;
}

/* A span never ended by Python (its object collected while open) is
 * finished then: the library's memory is not left behind. */
static void span_dealloc(SpanObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    if (self->span)
        tomograph_span_end(self->span);
    Py_DECREF(self->name);
    PyObject_Free(self);
    Py_DECREF(type);
}

static int end_span(SpanObject *self)
{
    tomograph_span_t *span = open_span(self, "end");
    int status;
    if (!span)
        return -1;
    self->span = NULL;
    status = tomograph_span_end(span);
    return status ? (trace_error(state_of_object((PyObject *)self), status, "end"), -1) : 0;
}

/* --- arguments --- */

/* The arguments of a call (positional, then by keyword) into given[], one
 * per name of keywords (borrowed; NULL for one not given): the first
 * `required` must be given. */
static int parse_args(const char *function, const char *const keywords[], Py_ssize_t required,
                      PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                      PyObject **given)
{
    Py_ssize_t count = 0, i, k;
    while (keywords[count])
        count++;
    if (nargs > count) {
        PyErr_Format(PyExc_TypeError, "%s() takes at most %zd arguments (%zd given)", function,
                     count, nargs);
        return -1;
    }
    for (i = 0; i < count; i++)
        given[i] = i < nargs ? args[i] : NULL;
    for (k = 0; kwnames && k < PyTuple_GET_SIZE(kwnames); k++) {
        PyObject *keyword = PyTuple_GET_ITEM(kwnames, k);
        for (i = 0; i < count && PyUnicode_CompareWithASCIIString(keyword, keywords[i]); i++)
            ;
        if (i == count) {
            PyErr_Format(PyExc_TypeError, "%s() got an unexpected keyword argument %R", function,
                         keyword);
            return -1;
        }
        if (given[i]) {
            PyErr_Format(PyExc_TypeError, "%s() got multiple values for argument '%s'",
                         function, keywords[i]);
            return -1;
        }
        given[i] = args[nargs + k];
    }
    for (i = 0; i < required; i++) {
        if (!given[i]) {
            PyErr_Format(PyExc_TypeError, "%s() missing required argument '%s' (pos %zd)",
                         function, keywords[i], i + 1);
            return -1;
        }
    }
    return 0;
}

/* The UTF-8 of a str argument, NULL for None (or not given) if nullable. */
static int text_arg(const char *function, const char *what, PyObject *arg, int nullable,
                    const char **text)
{
    Py_ssize_t size;
    *text = NULL;
    if (nullable && (!arg || arg == Py_None))
        return 0;
    if (!arg || !PyUnicode_Check(arg)) {
        PyErr_Format(PyExc_TypeError, "%s(): %s must be str%s, not %.50s", function, what,
                     nullable ? " or None" : "", arg ? Py_TYPE(arg)->tp_name : "nothing");
        return -1;
    }
    *text = PyUnicode_AsUTF8AndSize(arg, &size);
    if (!*text)
        return -1;
    if (strlen(*text) != (size_t)size) {
        PyErr_SetString(PyExc_ValueError, "embedded null character");
        return -1;
    }
    return 0;
}

/* An int argument, 0 for None or not given. */
static int int_arg(const char *function, const char *what, PyObject *arg, int *value)
{
    long number;
    *value = 0;
    if (!arg || arg == Py_None)
        return 0;
    number = PyLong_AsLong(arg);
    if (number == -1 && PyErr_Occurred())
        return -1;
    if (number < INT_MIN || number > INT_MAX) {
        PyErr_Format(PyExc_OverflowError, "%s(): %s out of range", function, what);
        return -1;
    }
    *value = (int)number;
    return 0;
}

/* A new Span named name: the child of parent (NULL for none), or else of the
 * span token names, or a new trace's root. */
static PyObject *begin_span(module_state *state, const char *function, PyObject *parent,
                            PyObject *token, int kind, PyObject *service, PyObject *name,
                            PyObject *host, PyObject *port)
{
    const char *token_text, *service_text, *name_text, *host_text;
    const tomograph_span_t *parent_span = NULL;
    tomograph_span_t *span;
    int port_number, status;
    if (text_arg(function, "token", token, 1, &token_text) < 0
        || text_arg(function, "service", service, 1, &service_text) < 0
        || text_arg(function, "name", name, 0, &name_text) < 0
        || text_arg(function, "host", host, 1, &host_text) < 0
        || int_arg(function, "port", port, &port_number) < 0)
        return NULL;
    if (parent) {
        if (!PyObject_TypeCheck(parent, state->span_type)) {
            PyErr_SetString(PyExc_TypeError, "parent: a Span or None");
            return NULL;
        }
        parent_span = open_span((SpanObject *)parent, "start");
        if (!parent_span)
            return NULL;
    }
    status = tomograph_span_begin(&span, parent_span, token_text, (tomograph_kind_t)kind,
                                  service_text, name_text, host_text, port_number);
    return status ? trace_error(state, status, "start") : wrap(state, span, name);
}

/* --- the spans open in this context --- */

/* The tuple of them, a new reference. */
static PyObject *open_spans(module_state *state)
{
    PyObject *spans;
    if (PyContextVar_Get(state->open, NULL, &spans) < 0)
        return NULL;
    if (!PyTuple_Check(spans)) {
        PyErr_Format(state->trace_error, "the context's spans are a %.50s, not a tuple",
                     Py_TYPE(spans)->tp_name);
        Py_DECREF(spans);
        return NULL;
    }
    return spans;
}

/* The innermost of spans (not empty), borrowed. */
static SpanObject *innermost(module_state *state, PyObject *spans)
{
    PyObject *last = PyTuple_GET_ITEM(spans, PyTuple_GET_SIZE(spans) - 1);
    if (!PyObject_TypeCheck(last, state->span_type)) {
        PyErr_Format(state->trace_error, "the context's spans hold a %.50s",
                     Py_TYPE(last)->tp_name);
        return NULL;
    }
    return (SpanObject *)last;
}

/* Makes spans (stolen; NULL after a failure) this context's. */
static int set_spans(module_state *state, PyObject *spans)
{
    PyObject *token = spans ? PyContextVar_Set(state->open, spans) : NULL;
    Py_XDECREF(spans);
    if (!token)
        return -1;
    Py_DECREF(token);
    return 0;
}

/* Adds span on top of spans, this context's. */
static int push_span(module_state *state, PyObject *spans, PyObject *span)
{
    Py_ssize_t i, depth = PyTuple_GET_SIZE(spans);
    PyObject *more = PyTuple_New(depth + 1);
    if (!more)
        return -1;
    for (i = 0; i < depth; i++)
        PyTuple_SET_ITEM(more, i, Py_NewRef(PyTuple_GET_ITEM(spans, i)));
    PyTuple_SET_ITEM(more, depth, Py_NewRef(span));
    return set_spans(state, more);
}

/* Starts a span, the current one from now on: the child of the current one,
 * or with a token the child of the span it names, or a new trace's root. */
static PyObject *start_span(module_state *state, const char *function, PyObject *service,
                            PyObject *name, PyObject *host, PyObject *port, PyObject *token)
{
    PyObject *spans = open_spans(state), *parent = NULL, *span = NULL;
    if (!spans)
        return NULL;
    if ((!token || token == Py_None) && PyTuple_GET_SIZE(spans)
        && !(parent = (PyObject *)innermost(state, spans)))
        goto done;
    span = begin_span(state, function, parent, token, TOMOGRAPH_KIND_INTERNAL, service, name,
                      host, port);
    if (span && push_span(state, spans, span) < 0)
        Py_CLEAR(span);
done:
    Py_DECREF(spans);
    return span;
}

/* Ends a block's span (span.__exit__, a traced call), failed with the
 * exception's type when exc_type is one, taken out of the context's spans
 * wherever it is in them (the block may have left spans open above it). */
static int end_block(module_state *state, SpanObject *span, PyObject *exc_type)
{
    PyObject *spans, *rest = NULL;
    Py_ssize_t i, depth;
    if (exc_type && exc_type != Py_None) {
        PyObject *type_name = PyObject_GetAttrString(exc_type, "__name__");
        const char *reason = type_name ? PyUnicode_AsUTF8(type_name) : NULL;
        tomograph_span_t *failed = reason ? open_span(span, "fail") : NULL;
        int status = failed ? tomograph_span_fail(failed, reason) : 0;
        Py_XDECREF(type_name);
        if (!failed)
            return -1;
        if (status)
            return trace_error(state, status, "fail"), -1;
    }
    spans = open_spans(state);
    if (!spans)
        return -1;
    depth = PyTuple_GET_SIZE(spans);
    if (depth && PyTuple_GET_ITEM(spans, depth - 1) == (PyObject *)span) {
        rest = PyTuple_GetSlice(spans, 0, depth - 1);
    } else { /* the block left a span it started open */
        Py_ssize_t kept = 0;
        for (i = 0; i < depth; i++)
            kept += PyTuple_GET_ITEM(spans, i) != (PyObject *)span;
        rest = kept < depth ? PyTuple_New(kept) : Py_NewRef(spans);
        for (i = 0, kept = 0; rest != spans && rest && i < depth; i++)
            if (PyTuple_GET_ITEM(spans, i) != (PyObject *)span)
                PyTuple_SET_ITEM(rest, kept++, Py_NewRef(PyTuple_GET_ITEM(spans, i)));
    }
    Py_DECREF(spans);
    if (set_spans(state, rest) < 0)
        return -1;
    return end_span(span);
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
    return status ? trace_error(state_of_object((PyObject *)self), status, doing)
                  : Py_NewRef(Py_None);
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
    return status ? trace_error(state_of_object((PyObject *)self), status, "token")
                  : PyUnicode_FromString(token);
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
    return end_span(self) < 0 ? NULL : Py_NewRef(Py_None);
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

/* --- span: the context manager --- */

static PyObject *block_vectorcall(PyObject *type, PyObject *const *args, size_t nargsf,
                                  PyObject *kwnames)
{
    static const char *const keywords[] = {"service", "name", "host", "port", NULL};
    PyObject *given[4];
    BlockObject *self;
    if (parse_args("span", keywords, 2, args, PyVectorcall_NARGS(nargsf), kwnames, given) < 0)
        return NULL;
    self = PyObject_GC_New(BlockObject, (PyTypeObject *)type);
    if (!self)
        return NULL;
    self->service = Py_NewRef(given[0]);
    self->name = Py_NewRef(given[1]);
    self->host = Py_NewRef(given[2] ? given[2] : Py_None);
    self->port = given[3] ? Py_NewRef(given[3]) : PyLong_FromLong(0);
    self->span = NULL;
    PyObject_GC_Track(self);
    if (!self->port)
        Py_CLEAR(self);
    return (PyObject *)self;
}

/* span.__new__, for a call that does not go through vectorcall. */
static PyObject *block_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    return PyVectorcall_Call((PyObject *)type, args, kwargs);
}

static int block_traverse(BlockObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->service);
    Py_VISIT(self->name);
    Py_VISIT(self->host);
    Py_VISIT(self->port);
    Py_VISIT(self->span);
    return 0;
}

static int block_clear(BlockObject *self)
{
    Py_CLEAR(self->service);
    Py_CLEAR(self->name);
    Py_CLEAR(self->host);
    Py_CLEAR(self->port);
    Py_CLEAR(self->span);
    return 0;
}

static void block_dealloc(BlockObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    block_clear(self);
    PyObject_GC_Del(self);
    Py_DECREF(type);
}

/* start()'s work, for the block. */
static PyObject *block_enter(BlockObject *self, PyObject *unused)
{
    PyObject *span = start_span(state_of_object((PyObject *)self), "span", self->service,
                                self->name, self->host, self->port, NULL);
    if (!span)
        return NULL;
    Py_XSETREF(self->span, span);
    return Py_NewRef(self);
}

static PyObject *block_exit(BlockObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    module_state *state = state_of_object((PyObject *)self);
    PyObject *span = self->span;
    int status;
    if (nargs != 3) {
        PyErr_Format(PyExc_TypeError, "__exit__() takes 3 arguments (%zd given)", nargs);
        return NULL;
    }
    if (!span) {
        PyErr_SetString(state->trace_error, "span: the block has not begun");
        return NULL;
    }
    self->span = NULL;
    status = end_block(state, (SpanObject *)span, args[0]);
    Py_DECREF(span);
    return status < 0 ? NULL : Py_NewRef(Py_False);
}

static PyMethodDef block_methods[] = {
    {"__enter__", (PyCFunction)block_enter, METH_NOARGS, "Starts the block's span."},
    {"__exit__", (PyCFunction)(void (*)(void))block_exit, METH_FASTCALL,
     "Ends the block's span, failed if an exception ends the block (which goes on)."},
    {NULL}
};

static PyMemberDef block_members[] = {
    {"service", T_OBJECT, offsetof(BlockObject, service), READONLY, NULL},
    {"name", T_OBJECT, offsetof(BlockObject, name), READONLY, NULL},
    {"host", T_OBJECT, offsetof(BlockObject, host), READONLY, NULL},
    {"port", T_OBJECT, offsetof(BlockObject, port), READONLY, NULL},
    {NULL}
};

static PyType_Slot block_slots[] = {
    {Py_tp_new, block_new},
    {Py_tp_dealloc, block_dealloc},
    {Py_tp_traverse, block_traverse},
    {Py_tp_clear, block_clear},
    {Py_tp_methods, block_methods},
    {Py_tp_members, block_members},
    {Py_tp_doc, "span(service, name, host=None, port=0)\n--\n\n"
                "with tomograph.span(service, name): ... -- a span for the block; an "
                "exception marks\nit failed with the exception's type, and goes on unchanged."},
    {0, NULL}
};

static PyType_Spec block_spec = {
    .name = "tomograph.span",
    .basicsize = sizeof(BlockObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .slots = block_slots,
};

/* --- traced_function: what @tomograph.traced makes --- */

/* The exception raised ending a traced call's span, raised with the one the
 * function raised (type, value, traceback: stolen) as its context, as an
 * exception raised by __exit__ is. */
static void chain_exception(PyObject *type, PyObject *value, PyObject *traceback)
{
    PyObject *new_type, *new_value, *new_traceback;
    if (!type)
        return;
    PyErr_Fetch(&new_type, &new_value, &new_traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    if (traceback)
        PyException_SetTraceback(value, traceback);
    PyErr_NormalizeException(&new_type, &new_value, &new_traceback);
    PyException_SetContext(new_value, value);
    PyErr_Restore(new_type, new_value, new_traceback);
    Py_DECREF(type);
    Py_XDECREF(traceback);
}

static PyObject *traced_vectorcall(PyObject *callable, PyObject *const *args, size_t nargsf,
                                   PyObject *kwnames)
{
    TracedObject *self = (TracedObject *)callable;
    module_state *state = state_of_object(callable);
    PyObject *span = start_span(state, "traced", self->service, self->name, NULL, NULL, NULL);
    PyObject *result, *type, *value, *traceback;
    if (!span)
        return NULL;
    result = PyObject_Vectorcall(self->function, args, nargsf, kwnames);
    if (result) {
        if (end_block(state, (SpanObject *)span, NULL) < 0)
            Py_CLEAR(result);
    } else {
        PyErr_Fetch(&type, &value, &traceback);
        if (end_block(state, (SpanObject *)span, type) < 0)
            chain_exception(type, value, traceback);
        else
            PyErr_Restore(type, value, traceback);
    }
    Py_DECREF(span);
    return result;
}

static PyObject *traced_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *function, *service, *name;
    TracedObject *self;
    if (kwargs && PyDict_GET_SIZE(kwargs)) {
        PyErr_SetString(PyExc_TypeError, "traced_function() takes no keyword arguments");
        return NULL;
    }
    if (!PyArg_UnpackTuple(args, "traced_function", 3, 3, &function, &service, &name))
        return NULL;
    self = PyObject_GC_New(TracedObject, type);
    if (!self)
        return NULL;
    self->function = Py_NewRef(function);
    self->service = Py_NewRef(service);
    self->name = Py_NewRef(name);
    self->dict = NULL;
    self->weakrefs = NULL;
    self->vectorcall = traced_vectorcall;
    PyObject_GC_Track(self);
    return (PyObject *)self;
}

static int traced_traverse(TracedObject *self, visitproc visit, void *arg)
{
    Py_VISIT(Py_TYPE(self));
    Py_VISIT(self->function);
    Py_VISIT(self->service);
    Py_VISIT(self->name);
    Py_VISIT(self->dict);
    return 0;
}

static int traced_clear(TracedObject *self)
{
    Py_CLEAR(self->function);
    Py_CLEAR(self->service);
    Py_CLEAR(self->name);
    Py_CLEAR(self->dict);
    return 0;
}

static void traced_dealloc(TracedObject *self)
{
    PyTypeObject *type = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    if (self->weakrefs)
        PyObject_ClearWeakRefs((PyObject *)self);
    traced_clear(self);
    PyObject_GC_Del(self);
    Py_DECREF(type);
}

/* A method of a class, as the function it wraps would be. */
static PyObject *traced_get(PyObject *self, PyObject *instance, PyObject *owner)
{
    return !instance || instance == Py_None ? Py_NewRef(self) : PyMethod_New(self, instance);
}

static PyObject *traced_repr(TracedObject *self)
{
    return PyUnicode_FromFormat("<traced %R>", self->function);
}

/* Pickled as the function it replaces is: by its name in its module. */
static PyObject *traced_reduce(PyObject *self, PyObject *unused)
{
    return PyObject_GetAttrString(self, "__qualname__");
}

static PyMethodDef traced_methods[] = {
    {"__reduce__", traced_reduce, METH_NOARGS, NULL},
    {NULL}
};

static PyMemberDef traced_members[] = {
    {"__dictoffset__", T_PYSSIZET, offsetof(TracedObject, dict), READONLY, NULL},
    {"__weaklistoffset__", T_PYSSIZET, offsetof(TracedObject, weakrefs), READONLY, NULL},
    {"__vectorcalloffset__", T_PYSSIZET, offsetof(TracedObject, vectorcall), READONLY, NULL},
    {NULL}
};

static PyGetSetDef traced_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL}
};

static PyType_Slot traced_slots[] = {
    {Py_tp_new, traced_new},
    {Py_tp_call, PyVectorcall_Call},
    {Py_tp_descr_get, traced_get},
    {Py_tp_repr, traced_repr},
    {Py_tp_dealloc, traced_dealloc},
    {Py_tp_traverse, traced_traverse},
    {Py_tp_clear, traced_clear},
    {Py_tp_methods, traced_methods},
    {Py_tp_members, traced_members},
    {Py_tp_getset, traced_getset},
    {Py_tp_doc, "traced_function(function, service, name)\n--\n\n"
                "The function, each call in a span (what @tomograph.traced makes)."},
    {0, NULL}
};

static PyType_Spec traced_spec = {
    .name = "tomograph._tomograph.traced_function",
    .basicsize = sizeof(TracedObject),
    .flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .slots = traced_slots,
};

/* --- module functions --- */

static PyObject *start(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
                       PyObject *kwnames)
{
    static const char *const keywords[] = {"service", "name", "host", "port", "token", NULL};
    PyObject *given[5];
    if (parse_args("start", keywords, 4, args, nargs, kwnames, given) < 0)
        return NULL;
    return start_span(state_of(module), "start", given[0], given[1], given[2], given[3],
                      given[4]);
}

static PyObject *stop(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
                      PyObject *kwnames)
{
    static const char *const keywords[] = {"name", NULL};
    module_state *state = state_of(module);
    PyObject *name, *spans;
    SpanObject *current;
    Py_ssize_t depth;
    int same, status;
    if (parse_args("stop", keywords, 1, args, nargs, kwnames, &name) < 0
        || !(spans = open_spans(state)))
        return NULL;
    depth = PyTuple_GET_SIZE(spans);
    if (!depth) {
        PyErr_Format(state->trace_error, "stop(%R): no span started in this thread or task",
                     name);
        goto failed;
    }
    current = innermost(state, spans);
    same = current ? PyObject_RichCompareBool(current->name, name, Py_EQ) : -1;
    if (!same)
        PyErr_Format(state->trace_error, "stop(%R): the current span is %R", name,
                     current->name);
    if (same <= 0)
        goto failed;
    Py_INCREF(current);
    status = set_spans(state, PyTuple_GetSlice(spans, 0, depth - 1));
    Py_DECREF(spans);
    if (!status)
        status = end_span(current);
    Py_DECREF(current);
    return status < 0 ? NULL : Py_NewRef(Py_None);
failed:
    Py_DECREF(spans);
    return NULL;
}

static PyObject *push(PyObject *module, PyObject *span)
{
    module_state *state = state_of(module);
    PyObject *spans;
    int status;
    if (!PyObject_TypeCheck(span, state->span_type)) {
        PyErr_SetString(PyExc_TypeError, "push(): a Span");
        return NULL;
    }
    spans = open_spans(state);
    if (!spans)
        return NULL;
    status = push_span(state, spans, span);
    Py_DECREF(spans);
    return status < 0 ? NULL : Py_NewRef(span);
}

static PyObject *begin(PyObject *module, PyObject *const *args, Py_ssize_t nargs,
                       PyObject *kwnames)
{
    static const char *const keywords[] = {"parent", "token", "kind", "service", "name", "host",
                                           "port", NULL};
    PyObject *given[7];
    int kind;
    if (parse_args("begin", keywords, 7, args, nargs, kwnames, given) < 0
        || int_arg("begin", "kind", given[2], &kind) < 0)
        return NULL;
    return begin_span(state_of(module), "begin", given[0] == Py_None ? NULL : given[0],
                      given[1], kind, given[3], given[4], given[5], given[6]);
}

static PyObject *begin_server(PyObject *module, PyObject *args)
{
    const char *service, *name;
    PyObject *name_object;
    header_source_t source = {0};
    module_state *state = state_of(module);
    tomograph_span_t *span;
    int status;
    if (!PyArg_ParseTuple(args, "zUOp", &service, &name_object, &source.headers,
                          &source.is_environ)
        || text_arg("begin_server", "name", name_object, 0, &name) < 0)
        return NULL;
    status = tomograph_span_begin_server(&span, service, name, get_header, &source);
    Py_XDECREF(source.last);
    if (source.failed) {
        if (!status)
            tomograph_span_end(span);
        return NULL;
    }
    return status ? trace_error(state, status, "start_http") : wrap(state, span, name_object);
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
    return status ? trace_error(state, status, "an osprofiler span (its ids must be UUIDs)")
                  : wrap(state, span, args[2]);
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
    {"start", (PyCFunction)(void (*)(void))start, METH_FASTCALL | METH_KEYWORDS,
     "start(service, name, host, port, token=None)\n--\n\n"
     "Starts a span: the child of the current one, or with a token (get_trace_info() of\n"
     "another thread or process) the child of the span that gave it, or else a new trace."},
    {"stop", (PyCFunction)(void (*)(void))stop, METH_FASTCALL | METH_KEYWORDS,
     "stop(name)\n--\n\n"
     "Finishes the current span, which must be the one started as name."},
    {"push", push, METH_O,
     "push(span)\n--\n\nMakes a Span the current one in this context; returns it."},
    {"begin", (PyCFunction)(void (*)(void))begin, METH_FASTCALL | METH_KEYWORDS,
     "begin(parent, token, kind, service, name, host, port)\n--\n\n"
     "A Span, outside the context's spans."},
    {"begin_server", begin_server, METH_VARARGS,
     "begin_server(service, name, headers, is_environ) -> Span"},
    {"begin_osprofiler", (PyCFunction)(void (*)(void))begin_osprofiler, METH_FASTCALL,
     "begin_osprofiler(kind, service, name, host, base_id, trace_id, parent_id) -> Span"},
    {"flush", flush, METH_O, "flush(timeout_ms) -> whether all was delivered"},
    {NULL}
};

/* A type of the module's, added to it under name. */
static PyTypeObject *add_type(PyObject *module, PyType_Spec *spec, const char *name)
{
    PyTypeObject *type = (PyTypeObject *)PyType_FromModuleAndSpec(module, spec, NULL);
    if (type && PyModule_AddObjectRef(module, name, (PyObject *)type) < 0)
        Py_CLEAR(type);
    return type;
}

static int module_exec(PyObject *module)
{
    module_state *state = state_of(module);
    PyObject *empty;
    state->trace_error = PyErr_NewExceptionWithDoc(
        "tomograph.TraceError", "A misuse of the tracing API (no span, the wrong span, a bad token).",
        PyExc_RuntimeError, NULL);
    if (!state->trace_error || PyModule_AddObjectRef(module, "TraceError", state->trace_error) < 0)
        return -1;
    if (!(state->span_type = add_type(module, &span_spec, "Span"))
        || !(state->block_type = add_type(module, &block_spec, "span"))
        || !(state->traced_type = add_type(module, &traced_spec, "traced_function")))
        return -1;
    /* span(...) is called for every block: by vectorcall, as a function is. */
    state->block_type->tp_vectorcall = block_vectorcall;
    empty = PyTuple_New(0);
    state->open = empty ? PyContextVar_New("tomograph_open_spans", empty) : NULL;
    Py_XDECREF(empty);
    if (!state->open || PyModule_AddObjectRef(module, "_open", state->open) < 0)
        return -1;
    if (PyModule_AddIntConstant(module, "INTERNAL", TOMOGRAPH_KIND_INTERNAL) < 0
        || PyModule_AddIntConstant(module, "SERVER", TOMOGRAPH_KIND_SERVER) < 0
        || PyModule_AddIntConstant(module, "CLIENT", TOMOGRAPH_KIND_CLIENT) < 0)
        return -1;
    return 0;
}

static int module_traverse(PyObject *module, visitproc visit, void *arg)
{
    module_state *state = state_of(module);
    Py_VISIT(state->trace_error);
    Py_VISIT(state->span_type);
    Py_VISIT(state->block_type);
    Py_VISIT(state->traced_type);
    Py_VISIT(state->open);
    return 0;
}

static int module_clear(PyObject *module)
{
    module_state *state = state_of(module);
    Py_CLEAR(state->trace_error);
    Py_CLEAR(state->span_type);
    Py_CLEAR(state->block_type);
    Py_CLEAR(state->traced_type);
    Py_CLEAR(state->open);
    return 0;
}

static PyModuleDef_Slot module_slots[] = {
    {Py_mod_exec, module_exec},
    {0, NULL}
};

static struct PyModuleDef tomograph_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "tomograph._tomograph",
    .m_doc = "libtomograph's spans, and the spans open in a context (see the tomograph package).",
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
