/*
 * tls_burst: the reference for bench/tls_frames.lua. Plain libcurl, its
 * default CA settings: each round makes a multi handle with N HTTPS/1.1
 * transfers at once (N new connections) and drives it the way a frame loop
 * drives a pool, curl_multi_perform then 1 ms of sleep, timing the CPU of
 * each perform call.
 *   tls_burst URL CAFILE|- ROUNDS N
 * prints one line per round: "<max ms of one perform> <total ms> <ok>".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>

static double cpu_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1000.0 + (double)t.tv_nsec / 1e6;
}

static size_t discard(char *data, size_t size, size_t n, void *user)
{
    (void)data;
    (void)user;
    return size * n;
}

static void round_once(const char *url, const char *ca, int n)
{
    CURLM *multi = curl_multi_init();
    CURL **easy = calloc((size_t)n, sizeof *easy);
    struct timespec tick = { 0, 1000000L };
    double max = 0, total = 0;
    int i, running = n, ok = 0;

    for (i = 0; i < n; i++) {
        easy[i] = curl_easy_init();
        curl_easy_setopt(easy[i], CURLOPT_URL, url);
        curl_easy_setopt(easy[i], CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
        curl_easy_setopt(easy[i], CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(easy[i], CURLOPT_TIMEOUT_MS, 10000L);
        if (ca != NULL)
            curl_easy_setopt(easy[i], CURLOPT_CAINFO, ca);
        curl_multi_add_handle(multi, easy[i]);
    }
    while (running > 0) {
        CURLMsg *m;
        int left;
        double t0 = cpu_ms(), dt;
        curl_multi_perform(multi, &running);
        dt = cpu_ms() - t0;
        total += dt;
        if (dt > max)
            max = dt;
        while ((m = curl_multi_info_read(multi, &left)) != NULL)
            if (m->msg == CURLMSG_DONE && m->data.result == CURLE_OK)
                ok++;
        nanosleep(&tick, NULL);
    }
    for (i = 0; i < n; i++) {
        curl_multi_remove_handle(multi, easy[i]);
        curl_easy_cleanup(easy[i]);
    }
    free(easy);
    curl_multi_cleanup(multi);
    printf("%.3f %.3f %d\n", max, total, ok);
}

int main(int argc, char **argv)
{
    int rounds, n, r;

    if (argc != 5)
        return 2;
    rounds = atoi(argv[3]);
    n = atoi(argv[4]);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    for (r = 0; r < rounds; r++)
        round_once(argv[1], strcmp(argv[2], "-") == 0 ? NULL : argv[2], n);
    curl_global_cleanup();
    return 0;
}
