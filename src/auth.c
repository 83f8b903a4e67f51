/* auth.c: the Authorization line a pool sends with every request (see auth.h). */
#include "auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Writes the base64 of in[0..n) and a NUL at out (room for 4 * ((n + 2) / 3) + 1 bytes). */
static void base64(const unsigned char *in, size_t n, char *out)
{
    size_t i;

    for (i = 0; i + 2 < n; i += 3, out += 4) {
        unsigned long v = (unsigned long)in[i] << 16 | (unsigned long)in[i + 1] << 8 | in[i + 2];
        out[0] = alphabet[v >> 18 & 63];
        out[1] = alphabet[v >> 12 & 63];
        out[2] = alphabet[v >> 6 & 63];
        out[3] = alphabet[v & 63];
    }
    if (i < n) {
        unsigned long v = (unsigned long)in[i] << 16 | (i + 1 < n ? (unsigned long)in[i + 1] << 8 : 0);
        out[0] = alphabet[v >> 18 & 63];
        out[1] = alphabet[v >> 12 & 63];
        out[2] = i + 1 < n ? alphabet[v >> 6 & 63] : '=';
        out[3] = '=';
        out += 4;
    }
    *out = '\0';
}

/* "Authorization: Basic " and the base64 of "user:password"; NULL when out of memory. */
static char *basic_line(const char *user, const char *password)
{
    static const char prefix[] = "Authorization: Basic ";
    size_t n = strlen(user) + 1 + strlen(password);
    char *pair = malloc(n + 1), *line = NULL;

    if (pair != NULL && (line = malloc(sizeof prefix + 4 * ((n + 2) / 3))) != NULL) {
        snprintf(pair, n + 1, "%s:%s", user, password);
        memcpy(line, prefix, sizeof prefix - 1);
        base64((const unsigned char *)pair, n, line + sizeof prefix - 1);
    }
    free(pair);
    return line;
}

static char *bearer_line(const char *token)
{
    static const char prefix[] = "Authorization: Bearer ";
    size_t n = sizeof prefix + strlen(token);
    char *line = malloc(n);

    if (line != NULL)
        snprintf(line, n, "%s%s", prefix, token);
    return line;
}

int ek_auth_line(const char *user, const char *password, const char *token, char **line)
{
    *line = NULL;
    if (user != NULL)
        *line = basic_line(user, password != NULL ? password : "");
    else if (token != NULL)
        *line = bearer_line(token);
    else
        return 0;
    return *line == NULL ? -1 : 0;
}
