/*
 * buffer.h: a growable byte buffer. Owned by a userdata or a request, never by
 * the C stack, so a Lua error between grow and free cannot leak it.
 */
#ifndef ENVOKE_BUFFER_H
#define ENVOKE_BUFFER_H

#include <stddef.h>
#include <string.h>

typedef struct ek_buffer {
    char *data;
    size_t len;
    size_t cap;
} ek_buffer;

void ek_buffer_init(ek_buffer *b);
void ek_buffer_free(ek_buffer *b);
/* Makes room for n more bytes; 0 on success, -1 when out of memory. */
int ek_buffer_reserve(ek_buffer *b, size_t n);
/* ek_buffer_append when the bytes do not fit: grows the buffer, then appends. */
int ek_buffer_append_grow(ek_buffer *b, const char *s, size_t n);

/* Appends n bytes; 0 on success, -1 when out of memory. Inline: most appends
 * (a JSON comma, a header line) fit, and a call would cost more than the copy. */
static inline int ek_buffer_append(ek_buffer *b, const char *s, size_t n)
{
    if (n == 0 || n > b->cap - b->len) /* n == 0: data may still be NULL */
        return ek_buffer_append_grow(b, s, n);
    memcpy(b->data + b->len, s, n);
    b->len += n;
    return 0;
}
static inline void ek_buffer_reset(ek_buffer *b) { b->len = 0; }

/* Appends one byte; the caller has reserved room for it. */
static inline void ek_buffer_put(ek_buffer *b, char c) { b->data[b->len++] = c; }

/* Large buffers are released after use so one big body does not pin memory. */
void ek_buffer_shrink(ek_buffer *b, size_t keep);

#endif
