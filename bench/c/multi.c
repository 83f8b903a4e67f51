/*
 * c-multi-N: the bulk reference. curl_multi keeps N transfers of the same
 * PATCH in flight over N kept-alive connections; each finished transfer's
 * handle is re-added at once until COUNT have been done.
 *   multi BASE_URL COUNT CONCURRENCY
 */
#include <curl/curl.h>

#include "measure.h"

#define MAX_SECONDS 600 /* a stalled server must not hang the benchmark */

typedef struct transfer {
    CURL *easy;
    bench_buffer body;
} transfer;

/* Runs n requests with at most `width` in flight; returns how many failed. */
static long run(CURLM *multi, transfer *t, long width, long n)
{
    long started = 0, done = 0, failures = 0, i;
    time_t give_up = time(NULL) + MAX_SECONDS;

    for (i = 0; i < width && started < n; i++, started++) {
        t[i].body.len = 0;
        curl_multi_add_handle(multi, t[i].easy);
    }
    while (done < n) {
        int running, left;
        CURLMsg *msg;
        if (time(NULL) > give_up || curl_multi_perform(multi, &running) != CURLM_OK)
            return failures + (n - done);
        while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
            transfer *x = NULL;
            long status = 0;
            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&x);
            curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
            if (msg->data.result != CURLE_OK || status != 200 || x->body.len == 0)
                failures++;
            done++;
            curl_multi_remove_handle(multi, x->easy);
            if (started < n) {
                started++;
                x->body.len = 0;
                curl_multi_add_handle(multi, x->easy);
            }
        }
        if (done < n)
            curl_multi_poll(multi, NULL, 0, 1000, NULL);
    }
    return failures;
}

int main(int argc, char **argv)
{
    char url[2048];
    long count, width, warmup, failures, i;
    struct curl_slist *headers = NULL;
    transfer *t;
    CURLM *multi;
    bench_mark m;

    bench_args(argc, argv, url, sizeof url, &count, &width);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    multi = curl_multi_init();
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Accept: application/json");
    t = calloc((size_t)width, sizeof *t);
    if (multi == NULL || headers == NULL || t == NULL) {
        fprintf(stderr, "libcurl initialisation failed\n");
        return 1;
    }
    for (i = 0; i < width; i++) {
        CURL *e = t[i].easy = curl_easy_init();
        if (e == NULL) {
            fprintf(stderr, "libcurl initialisation failed\n");
            return 1;
        }
        bench_setup_patch(e, url, headers, (void *)&t[i].body);
        curl_easy_setopt(e, CURLOPT_PRIVATE, (void *)&t[i]);
    }

    warmup = bench_warmup_count(count);
    if (run(multi, t, width, warmup) > 0) {
        fprintf(stderr, "warm-up requests failed\n");
        return 1;
    }
    m = bench_start();
    failures = run(multi, t, width, count);
    failures = bench_report(m, warmup, count, failures);

    for (i = 0; i < width; i++) {
        curl_easy_cleanup(t[i].easy);
        free(t[i].body.data);
    }
    free(t);
    curl_multi_cleanup(multi);
    curl_slist_free_all(headers);
    curl_global_cleanup();
    return (int)failures;
}
