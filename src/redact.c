/*
 * redact.c: secrets out of error messages. libcurl's messages quote URLs as
 * it was given them, proxies from the environment included ("Unsupported
 * proxy scheme for 'socks9://user:pass@host'"), so a message is cleaned of
 * every known secret and then of any URL userinfo at all.
 */
#include "redact.h"

#include <stdlib.h>
#include <string.h>

extern char **environ;

static const char *const proxy_variables[] = { "http_proxy", "https_proxy", "all_proxy", NULL };

int ek_secrets_add_userinfo(ek_secrets *s, const char *url)
{
    const char *scheme_end = strstr(url, "://");
    const char *start = scheme_end ? scheme_end + 3 : url;
    const char *at = strrchr(start, '@'); /* the last one: a password may hold an unencoded '@' */
    char *copy;

    /* A userinfo of a few bytes would blank every such run of letters in a
     * message; inside a URL the generic pass of ek_redact_all still finds it. */
    if (at == NULL || at - start < 4 || s->count >= EK_MAX_SECRETS)
        return 0;
    copy = malloc((size_t)(at - start) + 1);
    if (copy == NULL)
        return -1;
    memcpy(copy, start, (size_t)(at - start));
    copy[at - start] = '\0';
    s->item[s->count++] = copy;
    return 0;
}

/* The value of the "NAME=value" entry when NAME is one of the proxy variables (in any case), or NULL. */
static const char *proxy_value(const char *entry)
{
    int i;
    for (i = 0; proxy_variables[i] != NULL; i++) {
        size_t n = strlen(proxy_variables[i]), k;
        for (k = 0; k < n; k++) {
            char c = entry[k];
            if (c >= 'A' && c <= 'Z')
                c = (char)(c - 'A' + 'a');
            if (c != proxy_variables[i][k])
                break;
        }
        if (k == n && entry[n] == '=')
            return entry + n + 1;
    }
    return NULL;
}

int ek_secrets_from_env(ek_secrets *s)
{
    char **e;
    for (e = environ; e != NULL && *e != NULL; e++) {
        const char *value = proxy_value(*e);
        if (value != NULL && ek_secrets_add_userinfo(s, value) != 0)
            return -1;
    }
    return 0;
}

void ek_secrets_free(ek_secrets *s)
{
    int i;
    for (i = 0; i < s->count; i++)
        free(s->item[i]);
    s->count = 0;
}

/* Replaces msg[at .. at+n) with "***", keeping msg NUL-terminated within cap (at < cap). */
static size_t replace_span(char *msg, size_t cap, size_t at, size_t n)
{
    size_t len = strlen(msg), tail = len - at - n, stars = 3;

    if (at + stars >= cap)
        stars = cap - at - 1;
    if (at + stars + tail >= cap)
        tail = cap - at - stars - 1;
    if (tail > 0)
        memmove(msg + at + stars, msg + at + n, tail);
    memset(msg + at, '*', stars);
    msg[at + stars + tail] = '\0';
    return stars;
}

void ek_redact(char *msg, size_t cap, const char *secret)
{
    size_t slen, at = 0;
    char *hit;

    if (secret == NULL || (slen = strlen(secret)) == 0)
        return;
    while ((hit = strstr(msg + at, secret)) != NULL) {
        at = (size_t)(hit - msg);
        at += replace_span(msg, cap, at, slen);
        if (at >= strlen(msg))
            break;
    }
}

/* The userinfo of every "scheme://user:pass@host" in msg. */
static void redact_userinfo(char *msg, size_t cap)
{
    char *mark = msg;

    while ((mark = strstr(mark, "://")) != NULL) {
        char *start = mark + 3;
        size_t authority = strcspn(start, "/?#'\"<> \t\r\n");
        char *at = NULL, *c;
        for (c = start; c < start + authority; c++)
            if (*c == '@')
                at = c;
        if (at != NULL && at > start)
            replace_span(msg, cap, (size_t)(start - msg), (size_t)(at - start));
        mark = start;
    }
}

void ek_redact_all(char *msg, size_t cap, const ek_secrets *s)
{
    int i;
    for (i = 0; i < s->count; i++)
        ek_redact(msg, cap, s->item[i]);
    redact_userinfo(msg, cap);
}
