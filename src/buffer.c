/* buffer.c: the growable byte buffer behind JSON bodies and responses. */
#include "buffer.h"

#include <stdlib.h>
#include <string.h>

void ek_buffer_init(ek_buffer *b)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
}

void ek_buffer_free(ek_buffer *b)
{
    free(b->data);
    ek_buffer_init(b);
}

int ek_buffer_reserve(ek_buffer *b, size_t n)
{
    size_t need, cap;
    char *p;

    if (n <= b->cap - b->len)
        return 0;
    if (n > (size_t)-1 / 2 - b->len)
        return -1;
    need = b->len + n;
    cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    p = realloc(b->data, cap);
    if (p == NULL)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int ek_buffer_append_grow(ek_buffer *b, const char *s, size_t n)
{
    if (ek_buffer_reserve(b, n) != 0)
        return -1;
    if (n > 0)
        memcpy(b->data + b->len, s, n);
    b->len += n;
    return 0;
}

void ek_buffer_shrink(ek_buffer *b, size_t keep)
{
    if (b->cap > keep) {
        ek_buffer_free(b);
    } else {
        b->len = 0;
    }
}
