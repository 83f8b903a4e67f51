/*
 * measure.h: what every C case shares: arguments, the clock, CPU time, peak
 * RSS and the one result line bench/run reads:
 *   requests=N seconds=S cpu_us=U rss_kb=K warmup=W
 * cpu_us is the process's user+sys CPU over the timed part only, per request;
 * warmup is how many untimed requests came first (BENCH_WARMUP fixes it).
 */
#ifndef BENCH_MEASURE_H
#define BENCH_MEASURE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/resource.h>

/* The fixed request of every case: the body a save of one field sends. */
#define BENCH_PATH "/v1/contacts/1234"
#define BENCH_BODY "{\"city\":\"Toronto\"}"
#define BENCH_USERPWD "id:key"

typedef struct bench_mark {
    double wall;
    double cpu;
} bench_mark;

static double bench_cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
        (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static bench_mark bench_start(void)
{
    bench_mark m;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    m.wall = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    m.cpu = bench_cpu_seconds();
    return m;
}

/* Untimed requests first: the connection, caches and allocator settle.
 * BENCH_WARMUP fixes their number: bench/run's callgrind pass counts them. */
static long bench_warmup_count(long count)
{
    const char *fixed = getenv("BENCH_WARMUP");
    long n = count / 10;

    if (fixed != NULL && *fixed != '\0') {
        char *end;
        n = strtol(fixed, &end, 10);
        if (*end != '\0' || n < 0) {
            fprintf(stderr, "BENCH_WARMUP must be a count >= 0\n");
            exit(2);
        }
        return n;
    }
    return n < 10 ? 10 : n > 2000 ? 2000 : n;
}

/* Prints the result line for `requests` done since `m` after `warmup` untimed
 * ones; failures make it fail. */
static int bench_report(bench_mark m, long warmup, long requests, long failures)
{
    bench_mark end = bench_start();
    struct rusage ru;
    double seconds = end.wall - m.wall;

    getrusage(RUSAGE_SELF, &ru); /* ru_maxrss is the peak RSS in KiB on Linux */
    if (failures > 0) {
        fprintf(stderr, "%ld of %ld requests failed\n", failures, requests);
        return 1;
    }
    printf("requests=%ld seconds=%.6f cpu_us=%.3f rss_kb=%ld warmup=%ld\n", requests, seconds,
           (end.cpu - m.cpu) * 1e6 / (double)requests, ru.ru_maxrss, warmup);
    return 0;
}

/* Parses "URL COUNT [N]" into the request URL, the count and an optional number. */
static void bench_args(int argc, char **argv, char *url, size_t url_size, long *count, long *extra)
{
    if (argc < 3 || (extra != NULL && argc < 4)) {
        fprintf(stderr, "usage: %s BASE_URL COUNT%s\n", argv[0], extra ? " CONCURRENCY" : "");
        exit(2);
    }
    snprintf(url, url_size, "%s%s", argv[1], BENCH_PATH);
    *count = atol(argv[2]);
    if (*count < 1) {
        fprintf(stderr, "COUNT must be >= 1\n");
        exit(2);
    }
    if (extra != NULL) {
        *extra = atol(argv[3]);
        if (*extra < 1 || *extra > 1024) {
            fprintf(stderr, "CONCURRENCY must be 1 to 1024\n");
            exit(2);
        }
    }
}

/* The response body, kept as a normal client would keep it: one growing buffer per transfer. */
typedef struct bench_buffer {
    char *data;
    size_t len, cap;
} bench_buffer;

static size_t bench_on_body(char *data, size_t size, size_t nmemb, void *userdata);

/* The benchmark's request on an easy handle: PATCH url with the fixed body and
 * Basic auth, the answer counted into *body. The same for every C case. */
static void bench_setup_patch(CURL *e, const char *url, struct curl_slist *headers, void *body)
{
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "PATCH");
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, BENCH_BODY);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(BENCH_BODY));
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(e, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    curl_easy_setopt(e, CURLOPT_USERPWD, BENCH_USERPWD);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, bench_on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, body);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, 10L);
}

static size_t bench_on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    bench_buffer *b = (bench_buffer *)userdata;
    size_t n = size * nmemb;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        char *p;
        while (cap < b->len + n)
            cap *= 2;
        p = realloc(b->data, cap);
        if (p == NULL)
            return 0;
        b->data = p;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, n);
    b->len += n;
    return n;
}

#endif
