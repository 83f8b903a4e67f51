/*
 * tls.c: one CA store per pool.
 *
 * Debian's libcurl is built with a default CA bundle *and* directory, and
 * with a directory set it keeps no cache of the parsed store: every new
 * connection parsed the whole system bundle again (about 40 ms of CPU here),
 * inside whichever perform() opened it. Here the store is parsed once, when
 * the pool is made, and handed to each new connection's SSL_CTX from the
 * pool's CURLOPT_SSL_CTX_FUNCTION, with libcurl's own CA locations unset.
 */
#include "tls.h"

#include <stdlib.h>
#include <string.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

struct ek_ca_store {
    X509_STORE *x509;
};

/* SSL_CTX_FUNCTION receives OpenSSL's SSL_CTX only when libcurl uses OpenSSL. */
static int libcurl_uses_openssl(void)
{
    const curl_version_info_data *info = curl_version_info(CURLVERSION_NOW);
    return info->ssl_version != NULL && strncmp(info->ssl_version, "OpenSSL/", 8) == 0;
}

/* libcurl's compiled-in CA bundle and directory (either may be NULL). */
static void default_locations(char **file, char **dir)
{
    CURL *probe = curl_easy_init();
    char *f = NULL, *d = NULL;

    *file = *dir = NULL;
    if (probe == NULL)
        return;
#if LIBCURL_VERSION_NUM >= 0x075400
    curl_easy_getinfo(probe, CURLINFO_CAINFO, &f);
    curl_easy_getinfo(probe, CURLINFO_CAPATH, &d);
#endif
    *file = f ? strdup(f) : NULL;
    *dir = d ? strdup(d) : NULL;
    curl_easy_cleanup(probe);
}

/* The store libcurl would build for these locations, flags included. */
static X509_STORE *load_locations(const char *file, const char *dir)
{
    X509_STORE *x509 = X509_STORE_new();

    if (x509 == NULL)
        return NULL;
    if ((file == NULL && dir == NULL) || (file != NULL && !X509_STORE_load_file(x509, file)) ||
        (dir != NULL && !X509_STORE_load_path(x509, dir))) {
        X509_STORE_free(x509);
        return NULL;
    }
    X509_STORE_set_flags(x509, X509_V_FLAG_TRUSTED_FIRST | X509_V_FLAG_PARTIAL_CHAIN);
    return x509;
}

ek_ca_store *ek_ca_store_load(const char *ca_file)
{
    ek_ca_store *store;
    char *file = NULL, *dir = NULL;
    X509_STORE *x509;

    if (!libcurl_uses_openssl())
        return NULL;
    if (ca_file == NULL)
        default_locations(&file, &dir);
    x509 = load_locations(ca_file ? ca_file : file, ca_file ? NULL : dir);
    free(file);
    free(dir);
    if (x509 == NULL)
        return NULL;
    store = malloc(sizeof *store);
    if (store == NULL) {
        X509_STORE_free(x509);
        return NULL;
    }
    store->x509 = x509;
    return store;
}

CURLcode ek_ca_store_apply(ek_ca_store *store, void *ssl_ctx)
{
    if (!X509_STORE_up_ref(store->x509))
        return CURLE_OUT_OF_MEMORY;
    SSL_CTX_set_cert_store((SSL_CTX *)ssl_ctx, store->x509); /* frees the empty store it had */
    return CURLE_OK;
}

CURLcode ek_ca_store_use(CURL *easy)
{
    CURLcode rc = curl_easy_setopt(easy, CURLOPT_CAINFO, (char *)NULL);

    if (rc == CURLE_OK)
        rc = curl_easy_setopt(easy, CURLOPT_CAPATH, (char *)NULL);
#if LIBCURL_VERSION_NUM >= 0x075700
    if (rc == CURLE_OK) /* libcurl's own cache would only hold the pool's store */
        rc = curl_easy_setopt(easy, CURLOPT_CA_CACHE_TIMEOUT, 0L);
#endif
    return rc;
}

void ek_ca_store_free(ek_ca_store *store)
{
    if (store == NULL)
        return;
    X509_STORE_free(store->x509);
    free(store);
}
