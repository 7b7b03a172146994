/* OTLP/HTTP JSON: the body of POST /v1/traces, an ExportTraceServiceRequest
 * in the proto3 JSON mapping with OTLP's deviations (opentelemetry-proto
 * docs/specification.md, "JSON Protobuf Encoding"): ids in hex, enums as
 * integers, 64-bit times as decimal strings. */
#ifndef TG_OTLP_H
#define TG_OTLP_H

#include "tg_buf.h"
#include "tg_span.h"

/* The instrumentation scope every span is reported under. */
#define TG_OTLP_SCOPE "mod_tomograph"

/* The service.name of spans whose service is unknown, as the OpenTelemetry
 * resource conventions name it. */
#define TG_OTLP_UNKNOWN_SERVICE "unknown_service"

/* Appends a request carrying n spans: one resourceSpans per service (in the
 * order each service first appears, its spans in their order), each with
 * one scopeSpans.  Sets out->failed when memory runs out. */
void tg_otlp_append_request(tg_buf_t *out, const tg_span_t *const *spans, int n);

#endif
