/*
 * slow_dns.c: an LD_PRELOAD shim that makes some host names slow to resolve,
 * to test what a pool does while libcurl's resolver thread waits.
 *
 * A name that ends in "slow.envoke.test" (e.g. "cancel.slow.envoke.test")
 * sleeps ENVOKE_SLOW_DNS_MS milliseconds (default 4000), then resolves as
 * 127.0.0.1; once the lookup is over it creates the empty file
 * ENVOKE_SLOW_DNS_DIR/<name>, so a test can tell whether a call returned
 * before or after the lookup ended. Every other name goes to the real
 * getaddrinfo. Nothing leaves the machine.
 *
 *   cc -shared -fPIC -o slow_dns.so slow_dns.c -ldl
 *   LD_PRELOAD=./slow_dns.so ENVOKE_SLOW_DNS_DIR=/tmp/x lua5.4 script.lua
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

typedef int (*getaddrinfo_fn)(const char *, const char *, const struct addrinfo *, struct addrinfo **);

static const char SLOW_SUFFIX[] = "slow.envoke.test";

static int is_slow(const char *node)
{
    size_t n = node ? strlen(node) : 0, s = sizeof SLOW_SUFFIX - 1;
    return n >= s && strcasecmp(node + n - s, SLOW_SUFFIX) == 0;
}

static void sleep_ms(long ms)
{
    struct timespec t = { ms / 1000, (ms % 1000) * 1000000L };
    while (nanosleep(&t, &t) != 0 && errno == EINTR)
        ;
}

static void mark_done(const char *node)
{
    const char *dir = getenv("ENVOKE_SLOW_DNS_DIR");
    char path[4096];
    int fd;

    if (dir == NULL || snprintf(path, sizeof path, "%s/%s", dir, node) >= (int)sizeof path)
        return;
    fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
    if (fd >= 0)
        close(fd);
}

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res)
{
    getaddrinfo_fn real;
    const char *ms;
    int rc;

    *(void **)&real = dlsym(RTLD_NEXT, "getaddrinfo");
    if (real == NULL)
        return EAI_FAIL;
    if (!is_slow(node))
        return real(node, service, hints, res);
    ms = getenv("ENVOKE_SLOW_DNS_MS");
    sleep_ms(ms ? atol(ms) : 4000);
    rc = real("127.0.0.1", service, hints, res);
    mark_done(node);
    return rc;
}
