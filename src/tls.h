/*
 * tls.h: the CA store of a pool, loaded once when the pool is made and shared
 * by every TLS connection it opens (OpenSSL builds of libcurl only).
 */
#ifndef ENVOKE_TLS_H
#define ENVOKE_TLS_H

#include <curl/curl.h>

typedef struct ek_ca_store ek_ca_store;

/*
 * Loads ca_file, or when it is NULL libcurl's default CA bundle and
 * directory, into a new store. NULL when libcurl does not use OpenSSL or the
 * files cannot be loaded: the pool then leaves loading to libcurl, which
 * reports any problem on the first connection, as a TLS failure.
 */
ek_ca_store *ek_ca_store_load(const char *ca_file);

/* Unsets libcurl's own CA locations on an easy handle whose connections get the store. */
CURLcode ek_ca_store_use(CURL *easy);

/* From a CURLOPT_SSL_CTX_FUNCTION (OpenSSL's SSL_CTX): verify against the store. */
CURLcode ek_ca_store_apply(ek_ca_store *store, void *ssl_ctx);

void ek_ca_store_free(ek_ca_store *store);

#endif
