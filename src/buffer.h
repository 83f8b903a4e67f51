/*
 * buffer.h: a growable byte buffer. Owned by a userdata or a request, never by
 * the C stack, so a Lua error between grow and free cannot leak it.
 */
#ifndef ENVOKE_BUFFER_H
#define ENVOKE_BUFFER_H

#include <stddef.h>

typedef struct ek_buffer {
    char *data;
    size_t len;
    size_t cap;
} ek_buffer;

void ek_buffer_init(ek_buffer *b);
void ek_buffer_free(ek_buffer *b);
/* Makes room for n more bytes; 0 on success, -1 when out of memory. */
int ek_buffer_reserve(ek_buffer *b, size_t n);
int ek_buffer_append(ek_buffer *b, const char *s, size_t n);
static inline void ek_buffer_reset(ek_buffer *b) { b->len = 0; }

/* Appends one byte; the caller has reserved room for it. */
static inline void ek_buffer_put(ek_buffer *b, char c) { b->data[b->len++] = c; }

/* Large buffers are released after use so one big body does not pin memory. */
void ek_buffer_shrink(ek_buffer *b, size_t keep);

#endif
