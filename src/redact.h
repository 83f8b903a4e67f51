/*
 * redact.h: keeping secrets out of error messages. A message is redacted
 * into the caller's buffer, in place; nothing here allocates but the list.
 */
#ifndef ENVOKE_REDACT_H
#define ENVOKE_REDACT_H

#include <stddef.h>

/* The proxy option and the six proxy variables libcurl reads (lower and upper case). */
#define EK_MAX_SECRETS 8

typedef struct ek_secrets {
    char *item[EK_MAX_SECRETS];
    int count;
} ek_secrets;

/* Adds the userinfo ("user:pass") of url when it has one; -1 when out of memory. */
int ek_secrets_add_userinfo(ek_secrets *s, const char *url);

/* Adds the userinfo of http_proxy, https_proxy and all_proxy, in any case; -1 when out of memory. */
int ek_secrets_from_env(ek_secrets *s);

void ek_secrets_free(ek_secrets *s);

/* Replaces every occurrence of secret (when not NULL or empty) in msg with "***". */
void ek_redact(char *msg, size_t cap, const char *secret);

/* Replaces every secret of s, then the userinfo of any "scheme://user:pass@host" in msg. */
void ek_redact_all(char *msg, size_t cap, const ek_secrets *s);

#endif
