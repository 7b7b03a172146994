/* Trace and span identifiers: their hex forms and their random generation.
 *
 * A trace id is 128 bits (hi is 0 for a 64-bit id received from an old B3
 * caller); a span id is 64 bits.  Zero is never a valid id in any format we
 * speak, so it doubles as "absent". */
#ifndef TG_IDS_H
#define TG_IDS_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint64_t hi;
    uint64_t lo;
} tg_trace_id_t;

#define TG_SPAN_ID_HEX_LEN 16
#define TG_TRACE_ID_HEX_LEN 32

/* Parses exactly `len` (1..16) lowercase hex digits.  Returns 1 on success. */
int tg_hex_to_u64(const char *hex, size_t len, uint64_t *out);

/* Writes 16 lowercase hex digits and a NUL. */
void tg_u64_to_hex(uint64_t value, char out[TG_SPAN_ID_HEX_LEN + 1]);

/* The same 16 digits at p without a NUL, for raw writing (tg_buf.h);
 * returns p + 16. */
char *tg_put_hex64(char *p, uint64_t value);

/* Parses a trace id of exactly 16 or 32 lowercase hex digits. */
int tg_trace_id_from_hex(const char *hex, size_t len, tg_trace_id_t *out);

/* Writes the 32-digit form and a NUL (a 64-bit id gets 16 leading zeros,
 * which is how B3 widens it). */
void tg_trace_id_to_hex(tg_trace_id_t id, char out[TG_TRACE_ID_HEX_LEN + 1]);

int tg_trace_id_is_zero(tg_trace_id_t id);
int tg_trace_id_equal(tg_trace_id_t a, tg_trace_id_t b);

/* Fresh random ids, never zero.  Cheap enough for the request path: one
 * generator a process, shared by its threads without a lock, seeded from the
 * OS and reseeded in a forked child; no two draws of a process repeat. */
uint64_t tg_random_span_id(void);

/* A new trace's id and, unless span_id is NULL, its first span's: both at
 * the cost of one. */
void tg_random_root_ids(tg_trace_id_t *trace_id, uint64_t *span_id);

#endif
