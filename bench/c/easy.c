/*
 * c-easy: the sequential reference. One libcurl easy handle, one kept-alive
 * connection, the same PATCH over and over; the response is kept in a
 * buffer and its status checked, nothing more.
 *   easy BASE_URL COUNT
 */
#include <curl/curl.h>

#include "measure.h"

/* Runs n requests; returns how many failed. */
static long run(CURL *easy, bench_buffer *body, long n)
{
    long i, failures = 0;
    for (i = 0; i < n; i++) {
        long status = 0;
        body->len = 0;
        if (curl_easy_perform(easy) != CURLE_OK ||
            curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK ||
            status != 200 || body->len == 0)
            failures++;
    }
    return failures;
}

int main(int argc, char **argv)
{
    char url[2048];
    long count, warmup, failures;
    bench_buffer body = { NULL, 0, 0 };
    struct curl_slist *headers = NULL;
    CURL *easy;
    bench_mark m;

    bench_args(argc, argv, url, sizeof url, &count, NULL);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    easy = curl_easy_init();
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Accept: application/json");
    if (easy == NULL || headers == NULL) {
        fprintf(stderr, "libcurl initialisation failed\n");
        return 1;
    }
    bench_setup_patch(easy, url, headers, (void *)&body);

    warmup = bench_warmup_count(count);
    if (run(easy, &body, warmup) > 0) {
        fprintf(stderr, "warm-up requests failed\n");
        return 1;
    }
    m = bench_start();
    failures = run(easy, &body, count);
    failures = bench_report(m, warmup, count, failures);

    curl_easy_cleanup(easy);
    curl_slist_free_all(headers);
    free(body.data);
    curl_global_cleanup();
    return (int)failures;
}
