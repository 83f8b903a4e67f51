/*
 * pool.c: the connection pool, envoke.core.pool.
 *
 * One curl multi handle per pool keeps connections alive across calls; easy
 * handles are recycled with their buffers. Every call is a submission to the
 * multi handle: the blocking request() is "submit, then drive until this one
 * is done", so blocking and non-blocking calls share one path and one cache.
 *
 * No Lua code ever runs inside a libcurl callback: responses land in C
 * buffers and become Lua values only after curl returns, so a Lua error can
 * never unwind through libcurl.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <curl/curl.h>

#include "auth.h"
#include "buffer.h"
#include "compat.h"
#include "core.h"
#include "json.h"
#include "redact.h"
#include "tls.h"
#include "version.h"

#define POOL_MT EK_MODULE ".pool"
#define DEFAULT_MAX_BODY (16 * 1024 * 1024)
#define DEFAULT_CONNECT_TIMEOUT_MS 5000
#define DEFAULT_TIMEOUT_MS 10000
#define DEFAULT_MAX_CONNECTING 2
/* The final response's header block; past either limit the transfer fails. */
#define MAX_HEADER_BYTES (64 * 1024)
#define MAX_HEADER_LINES 1000

/* Sets one option unless an earlier one failed, so a run of them is checked once. */
#define SETOPT(rc, e, opt, val) \
    do { \
        if ((rc) == CURLE_OK) \
            (rc) = curl_easy_setopt((e), (opt), (val)); \
    } while (0)

/* DELIVERING: its result is becoming Lua values. Making a Lua value may run a
 * finalizer, and a finalizer may call this pool (close, cancel, finished,
 * request), so a delivering request sits on a list of its own that no other
 * call touches; close() leaves it for the delivering call (or __gc) to free. */
/* QUEUED: submitted to an https pool while max_connecting requests were still
 * opening connections; it enters the multi handle when one of them is through. */
typedef enum { REQ_FREE, REQ_QUEUED, REQ_RUNNING, REQ_DONE, REQ_DELIVERING } req_state;

/* Why the pool itself stopped a transfer (its callbacks return 0, and libcurl
 * reports CURLE_WRITE_ERROR). */
typedef enum {
    STOP_NONE,
    STOP_BODY_TOO_LARGE,
    STOP_HEADERS_TOO_LARGE,
    STOP_TOO_MANY_HEADERS,
    STOP_OUT_OF_MEMORY
} stop_reason;

typedef struct ek_request {
    struct ek_request *prev, *next; /* in one of the pool's lists, after its state */
    struct ek_pool *pool;
    CURL *easy;
    lua_Integer id;
    req_state state;
    int blocking; /* owned by a request() call, never reported by finished() */
    int envelope; /* a write's answer: a qualifying one is delivered as its result_data alone */
    CURLcode result;
    stop_reason stopped;
    int header_lines; /* of the final response so far */
    int reached; /* libcurl had a connection and began to send the request */
    double queued_at; /* monotonic ms, while QUEUED: its timeout runs from here */
    int short_timeout; /* CURLOPT_TIMEOUT_MS was cut by the time it spent queued */
    struct curl_slist *own_headers; /* per-request header list, when extra headers were given */
    int shape; /* the method and header list last set on easy (shape_of), -1 when none yet */
    ek_buffer body;
    ek_buffer response;
    ek_buffer headers; /* raw header lines of the final response */
    char errbuf[CURL_ERROR_SIZE];
} ek_request;

typedef struct req_list {
    ek_request *head, *tail;
    int count;
} req_list;

typedef struct ek_pool {
    int closed;
    CURLM *multi;
    req_list queued, running, done, spare, delivering;
    lua_Integer next_id;
    ek_buffer scratch; /* JSON encoding and URL building */

    /* options, fixed for the pool's life (pool_options reads and frees them) */
    char *base_url;
    char *username, *password, *bearer;
    char *ca_file, *proxy, *user_agent;
    ek_secrets secrets; /* proxy userinfo (option and environment), redacted from messages */
    ek_ca_store *ca_store; /* loaded once for every TLS connection; NULL: libcurl loads its own */
    CURLSH *share; /* TLS sessions, shared by the pool's easy handles so a new connection resumes one */
    unsigned long tls_started; /* TLS connections begun, counted by on_ssl_ctx */
    char *user_agent_line; /* "User-Agent: ...": sent in the header list, cheaper than CURLOPT_USERAGENT */
    char *auth_line; /* "Authorization: ..." or NULL: see auth.h */
    char *no_proxy; /* the environment's no_proxy, read when the pool is made ("" for none) */
    long connect_timeout_ms, timeout_ms, max_connections;
    long max_connecting; /* requests opening a connection at once (https); 0: no cap */
    curl_off_t max_body;
    int verify, http2;
    struct curl_slist *default_lists[3]; /* the default header lines, by body_kind */
} ek_pool;

/* How an option is checked, and the type of its field in ek_pool. */
typedef enum { OPT_STRING, OPT_TIMEOUT, OPT_LONG, OPT_BYTES, OPT_BOOLEAN } option_kind;

typedef struct pool_option {
    const char *name;
    option_kind kind;
    size_t offset; /* of the field: char * (strdup'ed), long, long, curl_off_t or int, after kind */
    long min, max; /* numbers; a string may be empty when min is 0 */
    long initial; /* numbers: the value when the option is not given */
} pool_option;

#define OPTION(name, kind, field, min, max, initial) { name, kind, offsetof(ek_pool, field), min, max, initial }
#define ONE_DAY_MS 86400000L

/* core.pool's options: reading them, their defaults and freeing them all go by this table. */
static const pool_option pool_options[] = {
    OPTION("base_url", OPT_STRING, base_url, 1, 0, 0),
    OPTION("username", OPT_STRING, username, 1, 0, 0),
    OPTION("password", OPT_STRING, password, 0, 0, 0),
    OPTION("bearer", OPT_STRING, bearer, 1, 0, 0),
    OPTION("ca_file", OPT_STRING, ca_file, 1, 0, 0),
    OPTION("proxy", OPT_STRING, proxy, 0, 0, 0),
    OPTION("user_agent", OPT_STRING, user_agent, 1, 0, 0),
    OPTION("connect_timeout_ms", OPT_TIMEOUT, connect_timeout_ms, 1, ONE_DAY_MS, DEFAULT_CONNECT_TIMEOUT_MS),
    OPTION("timeout_ms", OPT_TIMEOUT, timeout_ms, 1, ONE_DAY_MS, DEFAULT_TIMEOUT_MS),
    OPTION("max_connections", OPT_LONG, max_connections, 0, 65536, 0),
    OPTION("max_connecting", OPT_LONG, max_connecting, 0, 65536, DEFAULT_MAX_CONNECTING),
    OPTION("max_body", OPT_BYTES, max_body, 1, 2147483647L, DEFAULT_MAX_BODY),
    OPTION("verify", OPT_BOOLEAN, verify, 0, 1, 1),
    OPTION("http2", OPT_BOOLEAN, http2, 0, 1, 1),
    { NULL, OPT_STRING, 0, 0, 0, 0 },
};

static void *option_field(ek_pool *p, const pool_option *o)
{
    return (char *)p + o->offset;
}

/* ---- lists ---------------------------------------------------------------- */

static void list_push(req_list *l, ek_request *r)
{
    r->prev = l->tail;
    r->next = NULL;
    if (l->tail)
        l->tail->next = r;
    else
        l->head = r;
    l->tail = r;
    l->count++;
}

static void list_remove(req_list *l, ek_request *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else
        l->head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    else
        l->tail = r->prev;
    r->prev = r->next = NULL;
    l->count--;
}

/* ---- libcurl callbacks: C only ------------------------------------------- */

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    ek_request *r = (ek_request *)userdata;
    size_t n = size * nmemb;

    if ((curl_off_t)(r->response.len + n) > r->pool->max_body) {
        r->stopped = STOP_BODY_TOO_LARGE;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    if (ek_buffer_append(&r->response, data, n) != 0) {
        r->stopped = STOP_OUT_OF_MEMORY;
        return 0;
    }
    return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
    ek_request *r = (ek_request *)userdata;
    size_t n = size * nmemb;

    /* Each status line starts a new response (100 Continue, proxy CONNECT); keep the last. */
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        ek_buffer_reset(&r->headers);
        r->header_lines = 0;
        return n;
    }
    if (++r->header_lines > MAX_HEADER_LINES)
        r->stopped = STOP_TOO_MANY_HEADERS;
    else if (r->headers.len + n > MAX_HEADER_BYTES)
        r->stopped = STOP_HEADERS_TOO_LARGE;
    else if (ek_buffer_append(&r->headers, data, n) != 0)
        r->stopped = STOP_OUT_OF_MEMORY;
    return r->stopped == STOP_NONE ? n : 0;
}

/* Runs once a connection is ready, right before libcurl sends the request:
 * from here on some of it may reach the server. */
static int on_prereq(void *userdata, char *primary_ip, char *local_ip, int primary_port, int local_port)
{
    (void)primary_ip;
    (void)local_ip;
    (void)primary_port;
    (void)local_port;
    ((ek_request *)userdata)->reached = 1;
    return CURL_PREREQFUNC_OK;
}

/* ---- errors ---------------------------------------------------------------- */

typedef struct failure {
    const char *kind;
    int sent;
    int retryable;
} failure;

static const failure NETWORK = { "network", 1, 1 };

/* A transfer the pool stopped itself: the answer broke a limit. */
static failure classify_stop(stop_reason why)
{
    failure f = { "too_large", 1, 0 };
    if (why == STOP_TOO_MANY_HEADERS)
        f.kind = "protocol";
    else if (why == STOP_OUT_OF_MEMORY)
        f.kind = "memory";
    return f;
}

/* The answer itself is broken: the same server would send it again. */
static int malformed_answer(const ek_request *r)
{
    /* libcurl reports a bad chunk as CURLE_RECV_ERROR, like a reset connection. */
    return r->result == CURLE_RECV_ERROR && strstr(r->errbuf, "chunked-encoding") != NULL;
}

static failure classify_tls(void)
{
    failure f = { "tls", 0, 0 }; /* the handshake comes before the request */
    return f;
}

static failure classify_curl(const ek_request *r)
{
    failure f = NETWORK, broken = { "protocol", 1, 0 };
    long sent_bytes = 0;

    switch (r->result) {
    case CURLE_OPERATION_TIMEDOUT:
        f.kind = "timeout";
        /* A timeout before any byte of the request went out cannot have reached the server. */
        if (!r->reached || (curl_easy_getinfo(r->easy, CURLINFO_REQUEST_SIZE, &sent_bytes) == CURLE_OK && sent_bytes == 0))
            f.sent = 0;
        return f;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
        f.sent = 0;
        return f;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_USE_SSL_FAILED:
        return classify_tls();
    case CURLE_BAD_CONTENT_ENCODING:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_HTTP2:
        return broken;
    default:
        return malformed_answer(r) ? broken : f; /* resets, empty replies, truncated bodies: network */
    }
}

/* libcurl holds one header line in at most CURL_MAX_HTTP_HEADER bytes and
 * fails a longer one with CURLE_OUT_OF_MEMORY and no message; once the
 * request went out, that is what an "out of memory" means. */
static int header_line_too_large(const ek_request *r)
{
    return r->result == CURLE_OUT_OF_MEMORY && r->reached;
}

static failure classify(const ek_request *r)
{
    failure f = { "too_large", 1, 0 };

    if (r->stopped != STOP_NONE)
        return classify_stop(r->stopped);
    if (r->result == CURLE_FILESIZE_EXCEEDED || header_line_too_large(r))
        return f;
    if (r->result == CURLE_OUT_OF_MEMORY) {
        f.kind = "memory";
        return f;
    }
    return classify_curl(r);
}

/* The message of a failed transfer, secrets replaced by "***". */
static void failure_message(ek_pool *p, const ek_request *r, char *msg, size_t cap)
{
    if (r->stopped == STOP_BODY_TOO_LARGE)
        snprintf(msg, cap, "response body is larger than max_body (%lld bytes)", (long long)p->max_body);
    else if (r->stopped == STOP_HEADERS_TOO_LARGE)
        snprintf(msg, cap, "response headers are larger than %d bytes", MAX_HEADER_BYTES);
    else if (r->stopped == STOP_TOO_MANY_HEADERS)
        snprintf(msg, cap, "response has more than %d header lines", MAX_HEADER_LINES);
    else if (r->stopped == STOP_OUT_OF_MEMORY)
        snprintf(msg, cap, "out of memory while receiving the response");
    else if (header_line_too_large(r))
        snprintf(msg, cap, "a response header line is larger than libcurl accepts (%d bytes)", CURL_MAX_HTTP_HEADER);
    else
        snprintf(msg, cap, "%s", r->errbuf[0] ? r->errbuf : curl_easy_strerror(r->result));
    ek_redact(msg, cap, p->password);
    ek_redact(msg, cap, p->bearer);
    ek_redact_all(msg, cap, &p->secrets);
}

/* Pushes the error table of a failed transfer. Everything it reads from p
 * and r is read before the first Lua value is made. */
static void push_failure(lua_State *L, ek_pool *p, ek_request *r)
{
    failure f = classify(r);
    char msg[CURL_ERROR_SIZE + 64];
    CURLcode code = r->result;

    failure_message(p, r, msg, sizeof msg);
    lua_createtable(L, 0, 5);
    lua_pushstring(L, f.kind);
    lua_setfield(L, -2, "kind");
    lua_pushstring(L, msg);
    lua_setfield(L, -2, "message");
    lua_pushinteger(L, (lua_Integer)code);
    lua_setfield(L, -2, "curl_code");
    lua_pushboolean(L, f.sent);
    lua_setfield(L, -2, "sent");
    lua_pushboolean(L, f.retryable);
    lua_setfield(L, -2, "retryable");
}

/* ---- results --------------------------------------------------------------- */

/* Pushes the response headers as a table: lowercased name -> value, repeats joined by ", ". */
static void push_headers(lua_State *L, ek_request *r)
{
    char *line = r->headers.data, *end = r->headers.data + r->headers.len;

    lua_createtable(L, 0, 8);
    while (line != NULL && line < end) {
        char *eol = memchr(line, '\n', (size_t)(end - line));
        char *colon, *vstart, *vend, *c;
        if (eol == NULL)
            eol = end;
        colon = memchr(line, ':', (size_t)(eol - line));
        if (colon != NULL && colon > line) {
            for (c = line; c < colon; c++)
                if (*c >= 'A' && *c <= 'Z')
                    *c = (char)(*c - 'A' + 'a');
            vstart = colon + 1;
            vend = eol;
            while (vstart < vend && (*vstart == ' ' || *vstart == '\t'))
                vstart++;
            while (vend > vstart && (vend[-1] == '\r' || vend[-1] == ' ' || vend[-1] == '\t'))
                vend--;
            lua_pushlstring(L, line, (size_t)(colon - line));
            lua_pushvalue(L, -1);
            lua_rawget(L, -3);
            if (lua_isnil(L, -1)) {
                lua_pop(L, 1);
                lua_pushlstring(L, vstart, (size_t)(vend - vstart));
            } else {
                lua_pushliteral(L, ", ");
                lua_pushlstring(L, vstart, (size_t)(vend - vstart));
                lua_concat(L, 3);
            }
            lua_rawset(L, -3);
        }
        line = eol + 1;
    }
}

/*
 * Where result_data lies in r's answer when it is a successful write's
 * envelope (ek_json_envelope, the rule Client:outcome applies too).
 * 1 and its offset and length, or 0.
 */
static int envelope_data(const ek_request *r, size_t *start, size_t *len)
{
    ek_json_member parts[EK_ENVELOPE_PARTS];
    const char *text = r->response.data;
    char err[160];

    if (text == NULL || ek_json_envelope(text, r->response.len, parts, err, sizeof err) != EK_ENVELOPE_OK)
        return 0;
    *start = parts[EK_ENVELOPE_DATA].start;
    *len = parts[EK_ENVELOPE_DATA].end - parts[EK_ENVELOPE_DATA].start;
    return 1;
}

/* Pushes status, body, headers, or nil, err; for a request made with envelope
 * whose answer qualifies, status, result_data, nil, true (no headers table, no
 * body string). Returns the number of values. r is on the delivering list, so
 * its buffers outlive any finalizer the pushes run. */
static int push_result(lua_State *L, ek_pool *p, ek_request *r)
{
    long status = 0;
    size_t start, len;

    if (r->result != CURLE_OK || r->stopped != STOP_NONE) {
        lua_pushnil(L);
        push_failure(L, p, r);
        return 2;
    }
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    if (r->envelope && status >= 200 && status < 300 && envelope_data(r, &start, &len)) {
        const char *data = r->response.data + start;
        lua_pushinteger(L, (lua_Integer)status);
        lua_pushlstring(L, data, len);
        lua_pushnil(L);
        lua_pushboolean(L, 1);
        return 4;
    }
    lua_pushinteger(L, (lua_Integer)status);
    lua_pushlstring(L, r->response.data ? r->response.data : "", r->response.len);
    push_headers(L, r);
    return 3;
}

/* ---- request lifecycle ----------------------------------------------------- */

static void request_destroy(ek_request *r)
{
    if (r->easy)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->own_headers);
    ek_buffer_free(&r->body);
    ek_buffer_free(&r->response);
    ek_buffer_free(&r->headers);
    free(r);
}

/* Returns a finished or cancelled request to the spare list, ready for reuse. */
static void request_recycle(ek_pool *p, ek_request *r)
{
    if (r->state == REQ_RUNNING) {
        curl_multi_remove_handle(p->multi, r->easy);
        list_remove(&p->running, r);
    } else if (r->state == REQ_DONE) {
        curl_multi_remove_handle(p->multi, r->easy);
        list_remove(&p->done, r);
    } else if (r->state == REQ_DELIVERING) {
        list_remove(&p->delivering, r); /* already out of the multi handle */
    } else if (r->state == REQ_QUEUED) {
        list_remove(&p->queued, r); /* never in the multi handle */
    }
    curl_slist_free_all(r->own_headers);
    r->own_headers = NULL;
    ek_buffer_shrink(&r->body, EK_KEEP_BUFFER);
    ek_buffer_shrink(&r->response, EK_KEEP_BUFFER);
    ek_buffer_shrink(&r->headers, EK_KEEP_BUFFER);
    r->state = REQ_FREE;
    r->blocking = 0;
    list_push(&p->spare, r);
}

/*
 * Pushes the result of a finished request r and lets go of r. Making those Lua
 * values may run a finalizer that calls this pool (close, cancel, finished,
 * request): r is first moved to the delivering list, which no such call
 * touches, and is freed here when the pool was closed meanwhile. A memory
 * error raised while pushing leaves r on that list, for __gc to free.
 */
static int deliver(lua_State *L, ek_pool *p, ek_request *r)
{
    int n;

    list_remove(&p->done, r);
    r->state = REQ_DELIVERING;
    list_push(&p->delivering, r);
    n = push_result(L, p, r);
    if (p->closed) {
        list_remove(&p->delivering, r);
        request_destroy(r);
    } else {
        request_recycle(p, r);
    }
    return n;
}

static int has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* Runs for each new TLS connection of the pool, before its handshake. */
static CURLcode on_ssl_ctx(CURL *easy, void *ssl_ctx, void *userdata)
{
    ek_pool *p = (ek_pool *)userdata;

    (void)easy;
    p->tls_started++;
    return p->ca_store ? ek_ca_store_apply(p->ca_store, ssl_ctx) : CURLE_OK;
}

/* A TLS backend without the callback only loses the pool's store and pacing. */
static CURLcode set_ssl_ctx_function(ek_pool *p, CURL *e)
{
    CURLcode rc = curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, on_ssl_ctx);

    if (rc == CURLE_OK)
        return curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, (void *)p);
    return p->ca_store ? rc : CURLE_OK;
}

/* Verification, the CA store, shared sessions and HTTP/2 waiting. */
static CURLcode set_tls_options(ek_pool *p, CURL *e)
{
    CURLcode rc = curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, p->verify ? 1L : 0L);

    if (rc == CURLE_OK)
        rc = curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, p->verify ? 2L : 0L);
    if (!has_prefix(p->base_url, "https://"))
        return rc;
    /* Waiting to multiplex only pays where HTTP/2 can be negotiated; on plain
     * HTTP/1.1 it would hold every new transfer until the first one answers. */
    if (rc == CURLE_OK && p->http2)
        rc = curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    if (rc == CURLE_OK && p->share)
        rc = curl_easy_setopt(e, CURLOPT_SHARE, p->share);
    if (rc == CURLE_OK && p->ca_store)
        rc = ek_ca_store_use(e);
    else if (rc == CURLE_OK && p->ca_file)
        rc = curl_easy_setopt(e, CURLOPT_CAINFO, p->ca_file);
    return rc == CURLE_OK ? set_ssl_ctx_function(p, e) : rc;
}

/* Options that stay the same for every request of the pool are set once per easy handle. */
static int set_fixed_options(ek_pool *p, ek_request *r)
{
    CURL *e = r->easy;
    CURLcode rc = CURLE_OK;

    SETOPT(rc, e, CURLOPT_PRIVATE, (void *)r);
    SETOPT(rc, e, CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(rc, e, CURLOPT_WRITEDATA, (void *)r);
    SETOPT(rc, e, CURLOPT_HEADERFUNCTION, on_header);
    SETOPT(rc, e, CURLOPT_HEADERDATA, (void *)r);
    SETOPT(rc, e, CURLOPT_ERRORBUFFER, r->errbuf);
    SETOPT(rc, e, CURLOPT_PREREQFUNCTION, on_prereq);
    SETOPT(rc, e, CURLOPT_PREREQDATA, (void *)r);
    SETOPT(rc, e, CURLOPT_NOSIGNAL, 1L);
#if LIBCURL_VERSION_NUM >= 0x075700
    /* A transfer ended while its name is still resolving (timeout, cancel,
     * close, exit) leaves the resolver thread behind instead of joining it,
     * which would block the caller until getaddrinfo returns. */
    SETOPT(rc, e, CURLOPT_QUICK_EXIT, 1L);
#endif
#if LIBCURL_VERSION_NUM >= 0x075500
    SETOPT(rc, e, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    SETOPT(rc, e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    SETOPT(rc, e, CURLOPT_CONNECTTIMEOUT_MS, p->connect_timeout_ms);
    SETOPT(rc, e, CURLOPT_TIMEOUT_MS, p->timeout_ms);
    SETOPT(rc, e, CURLOPT_MAXFILESIZE_LARGE, p->max_body);
    SETOPT(rc, e, CURLOPT_TCP_KEEPALIVE, 1L);
    SETOPT(rc, e, CURLOPT_HTTP_VERSION, p->http2 ? (long)CURL_HTTP_VERSION_2TLS : (long)CURL_HTTP_VERSION_1_1);
    if (rc == CURLE_OK)
        rc = set_tls_options(p, e);
    SETOPT(rc, e, CURLOPT_PROXY, p->proxy);
    SETOPT(rc, e, CURLOPT_NOPROXY, p->no_proxy);
    /* The header list (Authorization included) goes to the server, never in a proxy's CONNECT. */
    SETOPT(rc, e, CURLOPT_HEADEROPT, (long)CURLHEADER_SEPARATE);
    return rc == CURLE_OK ? 0 : -1;
}

/* A spare request, or a new one; NULL when out of memory. */
static ek_request *request_acquire(ek_pool *p)
{
    ek_request *r = p->spare.head;

    if (r != NULL) {
        list_remove(&p->spare, r);
        return r;
    }
    r = (ek_request *)calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    r->pool = p;
    ek_buffer_init(&r->body);
    ek_buffer_init(&r->response);
    ek_buffer_init(&r->headers);
    r->shape = -1;
    r->easy = curl_easy_init();
    if (r->easy == NULL || set_fixed_options(p, r) != 0) {
        request_destroy(r);
        return NULL;
    }
    return r;
}

/* ---- argument checks: all raise before anything is allocated or sent ------ */

typedef enum { M_GET, M_POST, M_PUT, M_PATCH, M_DELETE, M_HEAD } http_method;

static const char *const methods[] = {
    [M_GET] = "GET", [M_POST] = "POST", [M_PUT] = "PUT", [M_PATCH] = "PATCH",
    [M_DELETE] = "DELETE", [M_HEAD] = "HEAD", NULL,
};

/* Not luaL_checkoption: the contract's message names the method ("invalid
 * option" would not), and a NUL inside the string must not pass as "GET". */
static http_method check_method(lua_State *L, int arg)
{
    size_t len;
    const char *m = luaL_checklstring(L, arg, &len);
    int i;

    for (i = 0; methods[i] != NULL; i++)
        if (strlen(methods[i]) == len && memcmp(m, methods[i], len) == 0)
            return (http_method)i;
    luaL_argerror(L, arg, lua_pushfstring(L, "unsupported HTTP method '%s'", m));
    return M_GET; /* not reached */
}

static const char *check_path(lua_State *L, int arg, size_t *len)
{
    const char *path = luaL_checklstring(L, arg, len);
    size_t i;

    if (*len == 0 || path[0] != '/')
        luaL_argerror(L, arg, "path must start with '/'");
    for (i = 0; i < *len; i++) {
        unsigned char c = (unsigned char)path[i];
        if (c <= 0x20 || c >= 0x7f || c == '#')
            luaL_argerror(L, arg, lua_pushfstring(L,
                "path has a byte that must be percent-encoded (byte %d, code %d)", (int)i + 1, (int)c));
    }
    return path;
}

static int is_token_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
        (c != 0 && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

static int ascii_casecmp(const char *a, const char *b)
{
    for (;; a++, b++) {
        int ca = (*a >= 'A' && *a <= 'Z') ? *a + 32 : *a;
        int cb = (*b >= 'A' && *b <= 'Z') ? *b + 32 : *b;
        if (ca != cb || ca == 0)
            return ca - cb;
    }
}

/* Headers libcurl frames the message with: a caller's value would desync it.
 * Connection: close alone is allowed (bulk inserts send it); libcurl then
 * closes the connection after the answer. The rule of transport/contract.lua. */
static int framing_header(const char *name, const char *value)
{
    if (ascii_casecmp(name, "connection") == 0)
        return ascii_casecmp(value, "close") != 0;
    return ascii_casecmp(name, "content-length") == 0 || ascii_casecmp(name, "transfer-encoding") == 0;
}

/* Checks the name and value on top of the stack, in transport/contract.lua's order. */
static void check_header(lua_State *L, int arg)
{
    size_t nlen, vlen, i;
    const char *name, *value;

    if (lua_type(L, -2) != LUA_TSTRING)
        luaL_argerror(L, arg, "header names must be strings");
    if (lua_type(L, -1) != LUA_TSTRING && lua_type(L, -1) != LUA_TNUMBER)
        luaL_argerror(L, arg, "header values must be strings");
    name = lua_tolstring(L, -2, &nlen);
    value = lua_tolstring(L, -1, &vlen); /* the value, not the key: lua_next is safe */
    if (nlen == 0 || nlen > 256)
        luaL_argerror(L, arg, "header name must be 1 to 256 characters");
    for (i = 0; i < nlen; i++)
        if (!is_token_char((unsigned char)name[i]))
            luaL_argerror(L, arg, lua_pushfstring(L, "header name '%s' has a character not allowed in a name", name));
    for (i = 0; i < vlen; i++)
        if (value[i] == '\r' || value[i] == '\n' || value[i] == '\0')
            luaL_argerror(L, arg, lua_pushfstring(L, "header '%s' has CR, LF or NUL in its value", name));
    /* Token characters and no NUL in the value: both are C strings. */
    if (framing_header(name, value))
        luaL_argerror(L, arg, lua_pushfstring(L, "header '%s' is set by the transport itself", name));
}

/* Checks the headers table; returns how many headers it holds. */
static int check_headers(lua_State *L, int arg)
{
    int count = 0;

    if (lua_isnoneornil(L, arg))
        return 0;
    luaL_checktype(L, arg, LUA_TTABLE);
    lua_pushnil(L);
    while (lua_next(L, arg) != 0) {
        check_header(L, arg);
        lua_pop(L, 1);
        count++;
    }
    return count;
}

/* libcurl 7.68 and older add Expect: 100-continue to a body above 1024 bytes
 * (7.69 raised that to 1 MiB); an empty "Expect:" line stops it, but costs
 * libcurl work on every request, so only bodies that could trigger it carry one. */
#define EXPECT_THRESHOLD 1024

/* What a request carries decides its default header lines: their count is 3 + kind. */
typedef enum { BODY_NONE, BODY_SMALL, BODY_LARGE } body_kind;

static body_kind kind_of_body(int has_body, size_t len)
{
    return !has_body ? BODY_NONE : len > EXPECT_THRESHOLD ? BODY_LARGE : BODY_SMALL;
}

/* The headers a request carries unless the caller gives its own, in this order:
 * Authorization only with credentials, Content-Type only with a body, Expect
 * only with a large one. */
static const char *const default_names[] = { "Accept", "User-Agent", "Authorization", "Content-Type", "Expect" };

static int default_count(body_kind kind)
{
    return 3 + (int)kind;
}

/* The i-th default line; NULL for Authorization when the pool has no credentials. */
static const char *default_line(const ek_pool *p, int i)
{
    switch (i) {
    case 0: return "Accept: application/json";
    case 1: return p->user_agent_line;
    case 2: return p->auth_line;
    case 3: return "Content-Type: application/json";
    default: return "Expect:"; /* no 100-continue round trip before a body */
    }
}

/* True when the caller's headers table names this header (any case). */
static int header_given(lua_State *L, int arg, const char *name)
{
    int found = 0;
    if (lua_isnoneornil(L, arg))
        return 0;
    lua_pushnil(L);
    while (!found && lua_next(L, arg) != 0) {
        found = ascii_casecmp(lua_tostring(L, -2), name) == 0;
        lua_pop(L, 1);
    }
    if (found)
        lua_pop(L, 1);
    return found;
}

/* ---- submitting and driving -------------------------------------------- */

/* Milliseconds on a monotonic clock. */
static double now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec * 1000.0 + (double)now.tv_nsec / 1e6;
}

/* The pool a method is called on. Its metatable is compared with the one the
 * methods hold as their upvalue: luaL_checkudata looks the name up in the
 * registry at every call, and LuaJIT interns the name again each time. Anything
 * else goes to luaL_checkudata for its usual error. */
static ek_pool *check_pool(lua_State *L)
{
    ek_pool *p = (ek_pool *)lua_touserdata(L, 1);
    int same = 0;

    if (p != NULL && lua_getmetatable(L, 1)) {
        same = lua_rawequal(L, -1, lua_upvalueindex(1));
        lua_pop(L, 1);
    }
    if (!same)
        p = (ek_pool *)luaL_checkudata(L, 1, POOL_MT);
    if (p->closed)
        luaL_error(L, EK_MODULE ": attempt to use a closed pool");
    return p;
}

static void fail_request(ek_pool *p, ek_request *r, CURLcode code, const char *why)
{
    r->result = code;
    snprintf(r->errbuf, sizeof r->errbuf, "%s", why);
    if (r->state == REQ_RUNNING) {
        curl_multi_remove_handle(p->multi, r->easy);
        list_remove(&p->running, r);
    } else if (r->state == REQ_QUEUED) {
        list_remove(&p->queued, r);
    }
    r->state = REQ_DONE;
    list_push(&p->done, r);
}

/* Moves every transfer curl reports finished from the running list to the done list. */
static void harvest(ek_pool *p)
{
    CURLMsg *m;
    int left;

    while ((m = curl_multi_info_read(p->multi, &left)) != NULL) {
        ek_request *r = NULL;
        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        r->result = m->data.result;
        curl_multi_remove_handle(p->multi, r->easy);
        list_remove(&p->running, r);
        r->state = REQ_DONE;
        list_push(&p->done, r);
    }
}

/* Requests of the running list still opening their connection (resolving,
 * connecting, in the TLS handshake, or waiting to share one). */
static int opening(const ek_pool *p)
{
    const ek_request *r;
    int n = 0;
    for (r = p->running.head; r != NULL; r = r->next)
        n += !r->reached;
    return n;
}

/* Fails the queued requests whose whole timeout went by in the queue. */
static void expire_queued(ek_pool *p, double now)
{
    char why[96];

    /* First in, first out: the head has the earliest deadline. */
    while (p->queued.head != NULL && now - p->queued.head->queued_at >= (double)p->timeout_ms) {
        snprintf(why, sizeof why, "timed out after %ld ms waiting for a connection", p->timeout_ms);
        fail_request(p, p->queued.head, CURLE_OPERATION_TIMEDOUT, why);
    }
}

/* Moves a queued request into the multi handle, with what is left of its timeout. */
static int enter(ek_pool *p, ek_request *r, double now)
{
    long left = p->timeout_ms - (long)(now - r->queued_at);

    list_remove(&p->queued, r);
    r->state = REQ_RUNNING;
    list_push(&p->running, r);
    if (left < p->timeout_ms) {
        curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, left > 0 ? left : 1L);
        r->short_timeout = 1;
    }
    if (curl_multi_add_handle(p->multi, r->easy) == CURLM_OK)
        return 1;
    fail_request(p, r, CURLE_OUT_OF_MEMORY, "curl_multi_add_handle failed");
    return 0;
}

/*
 * Lets queued requests into the multi handle while fewer than max_connecting
 * are opening a connection; returns how many it let in. A TLS handshake costs
 * about a millisecond of CPU in whichever perform runs it, so a burst of new
 * connections is spread over several calls instead of stalling one.
 */
static int admit(ek_pool *p)
{
    int n = 0, busy;
    double now;

    if (p->queued.head == NULL)
        return 0;
    now = now_ms();
    expire_queued(p, now);
    busy = opening(p);
    while (p->queued.head != NULL && busy < p->max_connecting) {
        if (enter(p, p->queued.head, now)) {
            busy++;
            n++;
        }
    }
    return n;
}

/* How long drive() may wait: no longer than until the first queued deadline. */
static int wait_limit(const ek_pool *p, int wait_ms)
{
    double left;

    if (p->queued.head == NULL || wait_ms <= 0)
        return wait_ms;
    left = p->queued.head->queued_at + (double)p->timeout_ms - now_ms();
    return left < 1 ? 0 : left < wait_ms ? (int)left : wait_ms;
}

/* One round of progress: waits up to wait_ms for socket activity, then drives and harvests. */
static void drive(ek_pool *p, int wait_ms)
{
    int running;
    CURLMcode mc = CURLM_OK;
    unsigned long tls_before = p->tls_started;

    admit(p);
    wait_ms = wait_limit(p, wait_ms);
    if (wait_ms > 0)
        mc = curl_multi_poll(p->multi, NULL, 0, wait_ms, NULL);
    if (mc == CURLM_OK)
        mc = curl_multi_perform(p->multi, &running);
    /* Those let in may have found a free connection at once: let more in,
     * unless this round already began its share of TLS handshakes. */
    while (mc == CURLM_OK && p->tls_started - tls_before < (unsigned long)p->max_connecting && admit(p) > 0)
        mc = curl_multi_perform(p->multi, &running);
    if (mc != CURLM_OK) {
        /* The multi handle itself failed: fail what it carries rather than spin. */
        while (p->running.head != NULL)
            fail_request(p, p->running.head, CURLE_SEND_ERROR, curl_multi_strerror(mc));
        return;
    }
    harvest(p);
}

/* What submit() checked, before it touches the pool's memory. */
typedef struct submission {
    http_method method;
    const char *path, *body; /* Lua strings held on the stack; body NULL unless a string */
    size_t plen, blen;
    int body_arg, has_body, json_body;
    int envelope; /* the 5th argument, read with lua_toboolean */
    int lines, nlines; /* stack index of the first "Name: value" line of the caller's headers, and how many */
    unsigned defaults; /* bit i: send default_line(i) */
} submission;

/* Pushes one "Name: value" string per header of the table at arg. */
static void push_header_lines(lua_State *L, int arg, submission *s)
{
    s->lines = lua_gettop(L) + 1;
    lua_pushnil(L);
    while (lua_next(L, arg) != 0) {
        lua_pushvalue(L, -2); /* numbers are turned into strings on copies, not on keys */
        lua_pushvalue(L, -2);
        lua_pushfstring(L, "%s: %s", lua_tostring(L, -2), lua_tostring(L, -1));
        lua_insert(L, -5); /* below the key, which lua_next needs on top */
        lua_pop(L, 3);
    }
}

/*
 * Checks the arguments at base .. base+4 (method, path, body, headers,
 * envelope) and makes every Lua value the submission needs. Raises on bad
 * arguments. Any of these allocations may run a finalizer that closes or calls
 * this pool, so nothing here holds a pointer into the pool's memory.
 */
static void check_submission(lua_State *L, int base, submission *s)
{
    int body_type = lua_type(L, base + 2), nheaders, i;

    s->method = check_method(L, base);
    s->envelope = lua_toboolean(L, base + 4);
    s->path = check_path(L, base + 1, &s->plen);
    nheaders = check_headers(L, base + 3);
    s->body = NULL;
    s->blen = 0;
    s->body_arg = base + 2;
    s->has_body = s->json_body = 0;
    if (body_type == LUA_TTABLE || body_type == LUA_TLIGHTUSERDATA) {
        s->has_body = s->json_body = 1;
    } else if (body_type == LUA_TSTRING) {
        s->body = lua_tolstring(L, base + 2, &s->blen);
        s->has_body = 1;
    } else if (body_type != LUA_TNIL && body_type != LUA_TNONE) {
        luaL_argerror(L, base + 2, "body must be a string, a table or nil");
    }
    if (s->has_body && (s->method == M_GET || s->method == M_HEAD))
        luaL_argerror(L, base + 2, lua_pushfstring(L, "a %s request has no body", methods[s->method]));
    s->nlines = nheaders;
    s->lines = 0;
    s->defaults = 0;
    /* A JSON body's size is known once it is encoded: every name a body may need is checked. */
    for (i = 0; i < default_count(s->has_body ? BODY_LARGE : BODY_NONE); i++)
        if (!header_given(L, base + 3, default_names[i]))
            s->defaults |= 1u << i;
    if (nheaders > 0) {
        luaL_checkstack(L, nheaders + 8, "too many headers");
        push_header_lines(L, base + 3, s);
    }
}

/* The request's own header list: the caller's lines, then the defaults it did not override. */
static CURLcode build_headers(lua_State *L, ek_pool *p, ek_request *r, const submission *s)
{
    struct curl_slist *list;
    int i;

    for (i = 0; i < s->nlines; i++) {
        list = curl_slist_append(r->own_headers, lua_tostring(L, s->lines + i));
        if (list == NULL)
            return CURLE_OUT_OF_MEMORY;
        r->own_headers = list;
    }
    for (i = 0; i < default_count(kind_of_body(s->has_body, r->body.len)); i++) {
        if (!(s->defaults & (1u << i)) || default_line(p, i) == NULL)
            continue;
        list = curl_slist_append(r->own_headers, default_line(p, i));
        if (list == NULL)
            return CURLE_OUT_OF_MEMORY;
        r->own_headers = list;
    }
    return CURLE_OK;
}

/* The body (a JSON body is already in p->scratch, handed over without copying) and the header list. */
static CURLcode set_body_and_headers(lua_State *L, ek_pool *p, ek_request *r, const submission *s)
{
    if (s->json_body) {
        ek_buffer t = r->body;
        r->body = p->scratch;
        p->scratch = t;
    } else {
        ek_buffer_reset(&r->body);
        if (s->has_body && ek_buffer_append(&r->body, s->body, s->blen) != 0)
            return CURLE_OUT_OF_MEMORY;
    }
    return s->nlines > 0 ? build_headers(L, p, r, s) : CURLE_OK;
}

/* A DELETE without a body goes out like a GET, renamed: no Content-Length: 0. */
static int sends_body(const submission *s)
{
    return s->method != M_GET && s->method != M_HEAD && (s->has_body || s->method != M_DELETE);
}

/* What decides the method and header options: the method, whether a body
 * goes out, and which header list; -1 for a request's own list (never reused). */
static int shape_of(const ek_request *r, const submission *s)
{
    if (r->own_headers != NULL)
        return -1;
    return (int)s->method * 8 + sends_body(s) * 4 + (int)kind_of_body(s->has_body, r->body.len);
}

/* The options a request's shape decides. A recycled handle keeps them from
 * its last request, so the same shape again (a sync's every save) skips them:
 * CURLOPT_CUSTOMREQUEST alone is a strdup and a free each time. */
static CURLcode set_shape_options(ek_pool *p, ek_request *r, const submission *s)
{
    CURL *e = r->easy;
    int is_get = s->method == M_GET, is_head = s->method == M_HEAD;
    CURLcode rc = CURLE_OK;

    SETOPT(rc, e, CURLOPT_NOBODY, is_head ? 1L : 0L);
    if (!sends_body(s) && !is_head)
        SETOPT(rc, e, CURLOPT_HTTPGET, 1L);
    SETOPT(rc, e, CURLOPT_CUSTOMREQUEST, (is_get || is_head || s->method == M_POST) ? NULL : methods[s->method]);
    /* Compression pays on list pages, not on a 1 KB write envelope, and
     * asking for it costs libcurl work on every request. */
    SETOPT(rc, e, CURLOPT_ACCEPT_ENCODING, is_get ? "" : NULL);
    SETOPT(rc, e, CURLOPT_HTTPHEADER,
           r->own_headers ? r->own_headers : p->default_lists[kind_of_body(s->has_body, r->body.len)]);
    return rc;
}

/* URL, method, body and headers on the easy handle. */
static CURLcode set_request_options(ek_pool *p, ek_request *r, const submission *s)
{
    CURL *e = r->easy;
    int shape = shape_of(r, s);
    CURLcode rc = CURLE_OK;

    ek_buffer_reset(&p->scratch);
    if (ek_buffer_append(&p->scratch, p->base_url, strlen(p->base_url)) != 0 ||
        ek_buffer_append(&p->scratch, s->path, s->plen) != 0 || ek_buffer_append(&p->scratch, "", 1) != 0)
        return CURLE_OUT_OF_MEMORY;

    SETOPT(rc, e, CURLOPT_URL, p->scratch.data);
    if (sends_body(s)) {
        SETOPT(rc, e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body.len);
        SETOPT(rc, e, CURLOPT_POSTFIELDS, r->body.len ? r->body.data : "");
    }
    if (rc == CURLE_OK && (shape < 0 || shape != r->shape))
        rc = set_shape_options(p, r, s);
    r->shape = rc == CURLE_OK ? shape : -1;
    return rc;
}

/* A spare or new request, reset and on the running list; NULL when out of memory. */
static ek_request *start_request(ek_pool *p, int blocking)
{
    ek_request *r = request_acquire(p);

    if (r == NULL)
        return NULL;
    r->state = REQ_RUNNING;
    r->blocking = blocking;
    r->id = ++p->next_id;
    r->result = CURLE_OK;
    r->stopped = STOP_NONE;
    r->header_lines = r->reached = 0;
    if (r->short_timeout) { /* a time in the queue cut it last time */
        curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, p->timeout_ms);
        r->short_timeout = 0;
    }
    r->errbuf[0] = '\0';
    ek_buffer_reset(&r->response);
    ek_buffer_reset(&r->headers);
    list_push(&p->running, r);
    return r;
}

/*
 * Checks the arguments at base .. base+4 (method, path, body, headers,
 * envelope) and adds the request to the multi handle. Raises on bad arguments
 * before anything is sent. Past check_submission() it makes no Lua value (so no
 * finalizer runs) and raises only before the request exists; from then on the
 * request is on a pool list, so close() can always free it.
 */
static ek_request *submit(lua_State *L, ek_pool *p, int base, int blocking)
{
    submission s;
    char err[256];
    ek_request *r;
    CURLcode rc;

    check_submission(L, base, &s);
    if (p->closed) /* by a finalizer that check_submission's allocations ran */
        luaL_error(L, EK_MODULE ": attempt to use a closed pool");
    if (s.json_body) {
        /* The encoder makes no Lua value and calls no Lua code (json.h). */
        ek_buffer_reset(&p->scratch);
        if (ek_json_encode(L, s.body_arg, &p->scratch, err, sizeof err) != 0)
            luaL_error(L, EK_MODULE ": cannot encode the request body as JSON: %s", err);
    }
    r = start_request(p, blocking);
    if (r == NULL)
        luaL_error(L, EK_MODULE ": out of memory");
    r->envelope = s.envelope;
    rc = set_body_and_headers(L, p, r, &s);
    if (rc == CURLE_OK)
        rc = set_request_options(p, r, &s);
    if (rc != CURLE_OK) {
        fail_request(p, r, rc, curl_easy_strerror(rc));
    } else if (!blocking && p->max_connecting > 0) {
        list_remove(&p->running, r); /* admit() lets it in */
        r->state = REQ_QUEUED;
        r->queued_at = now_ms();
        list_push(&p->queued, r);
    } else if (curl_multi_add_handle(p->multi, r->easy) != CURLM_OK) {
        fail_request(p, r, CURLE_OUT_OF_MEMORY, "curl_multi_add_handle failed");
    }
    return r;
}

/*
 * pool:request(method, path [, body [, headers [, envelope]]])
 *   -> status, body, headers | nil, err
 * envelope (any true value): the answer of a write. When it is a 2xx whose
 * body is valid JSON with success exactly true and result_data an object (the
 * check of Client:outcome), the results are status, result_data's text, nil,
 * true: no headers table and no body string are made. Any other answer gives
 * the results above, with no 4th value.
 */
static int l_request(lua_State *L)
{
    ek_pool *p = check_pool(L);
    ek_request *r = submit(L, p, 2, 1);

    drive(p, 0);
    while (r->state == REQ_RUNNING)
        drive(p, 1000);
    return deliver(L, p, r);
}

/* pool:submit(method, path [, body [, headers [, envelope]]]) -> id; envelope as in request() */
static int l_submit(lua_State *L)
{
    ek_pool *p = check_pool(L);
    ek_request *r = submit(L, p, 2, 0);
    lua_pushinteger(L, r->id);
    return 1;
}

static int async_running(ek_pool *p)
{
    int n = 0;
    ek_request *r;
    for (r = p->running.head; r != NULL; r = r->next)
        n += !r->blocking;
    return n + p->queued.count;
}

/* pool:perform([timeout_ms]) -> running. Returns once a transfer finishes, none
 * is left, or timeout_ms has passed; 0 drives what is ready and never waits. */
static int l_perform(lua_State *L)
{
    ek_pool *p = check_pool(L);
    lua_Integer timeout = luaL_optinteger(L, 2, 0);
    double deadline;

    luaL_argcheck(L, timeout >= 0 && timeout <= 86400000, 2, "timeout must be 0 to 86400000 milliseconds");
    drive(p, 0);
    deadline = now_ms() + (double)timeout;
    while (p->done.head == NULL && (p->running.head != NULL || p->queued.head != NULL)) {
        double left = deadline - now_ms();
        if (left < 1)
            break;
        drive(p, (int)left);
    }
    lua_pushinteger(L, async_running(p));
    return 1;
}

/* pool:finished() -> id, status, body, headers | id, nil, err | nil; for a request
 * submitted with envelope whose answer qualifies: id, status, result_data, nil, true */
static int l_finished(lua_State *L)
{
    ek_pool *p = check_pool(L);
    ek_request *r;

    /* Defensive: a request() call delivers its own request, which therefore
     * never belongs to finished(). */
    while ((r = p->done.head) != NULL && r->blocking)
        request_recycle(p, r);
    if (r == NULL) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushinteger(L, r->id);
    return deliver(L, p, r) + 1;
}

static ek_request *find_request(req_list *l, lua_Integer id)
{
    ek_request *r;
    for (r = l->head; r != NULL; r = r->next)
        if (r->id == id && !r->blocking)
            return r;
    return NULL;
}

/***
 * Drops a submitted request that has not been collected; its connection is
 * closed if the request was under way on it.
 * @function pool:cancel
 * @tparam integer id what submit() returned
 * @treturn boolean true when the request was pending (running, or finished
 *   but not yet collected by finished()); false when the id is unknown, was
 *   collected or was cancelled already
 * @treturn boolean sent, with true only: whether some of the request may have
 *   reached the server. True once libcurl had a connection for it and began
 *   to send it (its pre-request callback ran), even if no byte got out yet;
 *   false while it was still resolving, connecting, in the TLS handshake or
 *   waiting for a free connection, and for a request that failed before that.
 */
static int l_cancel(lua_State *L)
{
    ek_pool *p = check_pool(L);
    lua_Integer id = luaL_checkinteger(L, 2);
    ek_request *r = find_request(&p->running, id);
    int sent;

    if (r == NULL)
        r = find_request(&p->done, id);
    if (r == NULL)
        r = find_request(&p->queued, id);
    if (r == NULL) {
        lua_pushboolean(L, 0);
        return 1;
    }
    sent = r->reached;
    request_recycle(p, r);
    lua_pushboolean(L, 1);
    lua_pushboolean(L, sent);
    return 2;
}

/* pool:pending() -> how many submitted requests have not been collected */
static int l_pending(lua_State *L)
{
    ek_pool *p = check_pool(L);
    lua_pushinteger(L, (lua_Integer)(p->queued.count + p->running.count + p->done.count));
    return 1;
}

/* ---- lifetime -------------------------------------------------------------- */

static void destroy_list(ek_pool *p, req_list *l)
{
    while (l->head != NULL) {
        ek_request *r = l->head;
        list_remove(l, r);
        if (r->state == REQ_RUNNING && p->multi)
            curl_multi_remove_handle(p->multi, r->easy);
        request_destroy(r);
    }
}

static void free_string_options(ek_pool *p)
{
    const pool_option *o;

    for (o = pool_options; o->name != NULL; o++) {
        if (o->kind == OPT_STRING) {
            char **slot = (char **)option_field(p, o);
            free(*slot);
            *slot = NULL;
        }
    }
}

static void free_default_lists(ek_pool *p)
{
    int i;
    for (i = BODY_NONE; i <= BODY_LARGE; i++) {
        curl_slist_free_all(p->default_lists[i]);
        p->default_lists[i] = NULL;
    }
}

/* close() and __close: one idempotent function, as in liolib.c. A request
 * being delivered is left to the call delivering it (see deliver()). */
static int l_close(lua_State *L)
{
    ek_pool *p = (ek_pool *)luaL_checkudata(L, 1, POOL_MT);

    if (p->closed)
        return 0;
    p->closed = 1;
    destroy_list(p, &p->queued);
    destroy_list(p, &p->running);
    destroy_list(p, &p->done);
    destroy_list(p, &p->spare);
    if (p->multi)
        curl_multi_cleanup(p->multi);
    p->multi = NULL;
    if (p->share) {
        ek_request *r;
        /* A share in use cannot be freed: requests still being delivered let go of it. */
        for (r = p->delivering.head; r != NULL; r = r->next)
            curl_easy_setopt(r->easy, CURLOPT_SHARE, (CURLSH *)NULL);
        curl_share_cleanup(p->share);
        p->share = NULL;
    }
    ek_ca_store_free(p->ca_store); /* connections still open hold their own reference */
    p->ca_store = NULL;
    free_default_lists(p);
    free_string_options(p);
    ek_secrets_free(&p->secrets);
    free(p->user_agent_line);
    p->user_agent_line = NULL;
    free(p->auth_line);
    p->auth_line = NULL;
    free(p->no_proxy);
    p->no_proxy = NULL;
    ek_buffer_free(&p->scratch);
    return 0;
}

/* __gc: close(), and whatever a memory error left mid-delivery. No call can be
 * delivering now, since a running call holds the pool. */
static int l_gc(lua_State *L)
{
    ek_pool *p = (ek_pool *)luaL_checkudata(L, 1, POOL_MT);

    l_close(L);
    destroy_list(p, &p->delivering);
    return 0;
}

static int l_tostring(lua_State *L)
{
    ek_pool *p = (ek_pool *)luaL_checkudata(L, 1, POOL_MT);
    if (p->closed)
        lua_pushliteral(L, POOL_MT " (closed)");
    else
        lua_pushfstring(L, POOL_MT " (%p)", (void *)p);
    return 1;
}

/* ---- options ------------------------------------------------------------- */

static void store_string(lua_State *L, const char *name, char **slot, int allow_empty)
{
    size_t len, i;
    const char *s;

    if (lua_type(L, -1) != LUA_TSTRING)
        luaL_error(L, EK_MODULE ": option '%s' must be a string, got %s", name, luaL_typename(L, -1));
    s = lua_tolstring(L, -1, &len);
    if (len == 0 && !allow_empty)
        luaL_error(L, EK_MODULE ": option '%s' must not be empty", name);
    for (i = 0; i < len; i++)
        if (s[i] == '\0' || s[i] == '\r' || s[i] == '\n')
            luaL_error(L, EK_MODULE ": option '%s' must not contain CR, LF or NUL", name);
    free(*slot);
    *slot = strdup(s);
    if (*slot == NULL)
        luaL_error(L, EK_MODULE ": out of memory");
}

static long integer_option(lua_State *L, const char *name, long min, long max)
{
    lua_Number v = lua_type(L, -1) == LUA_TNUMBER ? lua_tonumber(L, -1) : -1e300;
    if (!(v >= (lua_Number)min && v <= (lua_Number)max) || v != (lua_Number)(long)v)
        luaL_error(L, EK_MODULE ": option '%s' must be an integer from %d to %d", name, (int)min, (int)max);
    return (long)v;
}

/* libcurl reads a timeout of 0 as "none at all": a call could then never end. */
static long timeout_option(lua_State *L, const pool_option *o)
{
    if (lua_type(L, -1) == LUA_TNUMBER && lua_tonumber(L, -1) == 0)
        luaL_error(L, EK_MODULE ": option '%s' must be at least 1 (libcurl reads 0 as no timeout at all)", o->name);
    return integer_option(L, o->name, o->min, o->max);
}

static int boolean_option(lua_State *L, const char *name)
{
    if (lua_type(L, -1) != LUA_TBOOLEAN)
        luaL_error(L, EK_MODULE ": option '%s' must be a boolean, got %s", name, luaL_typename(L, -1));
    return lua_toboolean(L, -1);
}

/* Matches Lua's ":?(%d*)$" from p to end; *digits: where the port's digits start. */
static int port_tail(const char *p, const char *end, const char **digits)
{
    if (p < end && *p == ':')
        p++;
    *digits = p;
    while (p < end && *p >= '0' && *p <= '9')
        p++;
    return p == end;
}

/* The port's digits of "host[:port]" or "[v6][:port]", as transport/contract.lua
 * splits an authority; NULL when it does not split. */
static const char *authority_port(const char *a, const char *end)
{
    const char *p = a, *digits;

    if (*a == '[') {
        for (p = a + 1; p < end && *p != ']'; p++)
            ;
        if (p < end && p > a + 1 && port_tail(p + 1, end, &digits))
            return digits;
    }
    for (p = a; p < end && *p != ':'; p++)
        ;
    return p > a && port_tail(p, end, &digits) ? digits : NULL;
}

/* A bad port is refused here, when the pool is made, not by libcurl at the first request. */
static void check_authority(lua_State *L, const char *a, const char *end)
{
    const char *digits = authority_port(a, end);
    long port = 0;

    if (digits == NULL)
        luaL_error(L, EK_MODULE ": option 'base_url' has a bad host or port");
    if (digits == end)
        return; /* the scheme's port */
    for (; digits < end && port <= 65535; digits++)
        port = port * 10 + (*digits - '0');
    if (port < 1 || port > 65535)
        luaL_error(L, EK_MODULE ": option 'base_url' has a bad port");
}

static void check_base_url(lua_State *L, ek_pool *p)
{
    char *u = p->base_url;
    const char *host = has_prefix(u, "http://") ? u + 7 : has_prefix(u, "https://") ? u + 8 : NULL;
    size_t n, authority;

    if (host == NULL)
        luaL_error(L, EK_MODULE ": option 'base_url' must start with http:// or https://");
    authority = strcspn(host, "/");
    if (authority == 0)
        luaL_error(L, EK_MODULE ": option 'base_url' has no host");
    if (memchr(host, '@', authority) != NULL)
        luaL_error(L, EK_MODULE ": option 'base_url' must not carry credentials (use username and password)");
    if (strpbrk(u, "?# \t") != NULL)
        luaL_error(L, EK_MODULE ": option 'base_url' must not have a query, a fragment or spaces");
    check_authority(L, host, host + authority);
    n = strlen(u);
    while (n > 0 && u[n - 1] == '/')
        u[--n] = '\0';
}

static void set_number(ek_pool *p, const pool_option *o, long v)
{
    if (o->kind == OPT_BYTES)
        *(curl_off_t *)option_field(p, o) = (curl_off_t)v;
    else if (o->kind == OPT_BOOLEAN)
        *(int *)option_field(p, o) = (int)v;
    else
        *(long *)option_field(p, o) = v;
}

/* Every number option at its default; strings start NULL (the pool is zeroed). */
static void set_defaults(ek_pool *p)
{
    const pool_option *o;

    for (o = pool_options; o->name != NULL; o++)
        if (o->kind != OPT_STRING)
            set_number(p, o, o->initial);
}

/* Reads the option whose value is on top of the stack. */
static void read_option(lua_State *L, ek_pool *p, const char *name)
{
    const pool_option *o;

    for (o = pool_options; o->name != NULL && strcmp(o->name, name) != 0; o++)
        ;
    if (o->name == NULL)
        luaL_error(L, EK_MODULE ": unknown option '%s'", name);
    else if (o->kind == OPT_STRING)
        store_string(L, o->name, (char **)option_field(p, o), o->min == 0);
    else if (o->kind == OPT_TIMEOUT)
        set_number(p, o, timeout_option(L, o));
    else if (o->kind == OPT_BOOLEAN)
        set_number(p, o, boolean_option(L, o->name));
    else
        set_number(p, o, integer_option(L, o->name, o->min, o->max));
}

static int starts_with_https(const char *s)
{
    return s != NULL && strncasecmp(s, "https://", 8) == 0;
}

/* A TLS proxy is verified with libcurl's own CA settings (the pool's store
 * would replace them too, ca_file and all), so its pools keep those. */
static int tls_proxy(const ek_pool *p)
{
    return starts_with_https(p->proxy);
}

/* A variable of the environment; NULL when unset or empty, as libcurl reads them. */
static const char *env_text(const char *name)
{
    const char *v = getenv(name);
    return v != NULL && *v != '\0' ? v : NULL;
}

/* The proxy libcurl would take from the environment for base_url:
 * <scheme>_proxy (never HTTP_PROXY, libcurl's httpoxy rule), then all_proxy,
 * then ALL_PROXY; "" for none. */
static const char *env_proxy(const char *base_url)
{
    const char *v = has_prefix(base_url, "https://") ? env_text("https_proxy") : env_text("http_proxy");

    if (v == NULL && has_prefix(base_url, "https://"))
        v = env_text("HTTPS_PROXY");
    if (v == NULL)
        v = env_text("all_proxy");
    if (v == NULL)
        v = env_text("ALL_PROXY");
    return v != NULL ? v : "";
}

/* libcurl looks up five proxy variables at every request unless it is given
 * the proxy and no_proxy (about 1.7k instructions a request);
 * the pool reads them once, when it is made. -1 when out of memory. */
static int read_proxy_env(ek_pool *p)
{
    const char *no_proxy = env_text("no_proxy");

    if (no_proxy == NULL)
        no_proxy = env_text("NO_PROXY");
    if (p->proxy == NULL && (p->proxy = strdup(env_proxy(p->base_url))) == NULL)
        return -1;
    return (p->no_proxy = strdup(no_proxy != NULL ? no_proxy : "")) == NULL ? -1 : 0;
}

/* TLS sessions shared by the pool's easy handles (one thread: no locks). */
static CURLSH *tls_session_share(void)
{
    CURLSH *share = curl_share_init();

    if (share != NULL && curl_share_setopt(share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
        curl_share_cleanup(share);
        share = NULL;
    }
    return share;
}

/* The CA store is parsed here, when the pool is made, never in a perform(). */
static void load_ca_store(ek_pool *p)
{
    if (p->verify && has_prefix(p->base_url, "https://") && !tls_proxy(p))
        p->ca_store = ek_ca_store_load(p->ca_file);
    if (has_prefix(p->base_url, "https://"))
        p->share = tls_session_share(); /* without one, each connection does a full handshake */
    else
        p->max_connecting = 0; /* a plain connection costs next to nothing to open */
}

/* The headers every request of this kind carries; NULL when out of memory (list is then freed). */
static struct curl_slist *default_headers(ek_pool *p, body_kind kind)
{
    struct curl_slist *list = NULL;
    int i;
    for (i = 0; i < default_count(kind); i++) {
        struct curl_slist *next;
        if (default_line(p, i) == NULL)
            continue;
        if ((next = curl_slist_append(list, default_line(p, i))) == NULL) {
            curl_slist_free_all(list);
            return NULL;
        }
        list = next;
    }
    return list;
}

/* The three default header lists; -1 when out of memory (close() frees those made). */
static int make_default_lists(ek_pool *p)
{
    int kind;
    for (kind = BODY_NONE; kind <= BODY_LARGE; kind++)
        if ((p->default_lists[kind] = default_headers(p, (body_kind)kind)) == NULL)
            return -1;
    return 0;
}

/* The default user agent, the header line that carries it and the
 * Authorization line; -1 when out of memory. */
static int make_header_lines(ek_pool *p)
{
    size_t n;

    if (p->user_agent == NULL && (p->user_agent = strdup(ENVOKE_USER_AGENT)) == NULL)
        return -1;
    n = strlen(p->user_agent) + sizeof "User-Agent: ";
    if ((p->user_agent_line = malloc(n)) == NULL)
        return -1;
    snprintf(p->user_agent_line, n, "User-Agent: %s", p->user_agent);
    return ek_auth_line(p->username, p->password, p->bearer, &p->auth_line);
}

/* core.pool{ base_url = ..., ... } -> pool. Raises naming any bad option. */
static int l_pool_new(lua_State *L)
{
    ek_pool *p;

    luaL_checktype(L, 1, LUA_TTABLE);
    lua_settop(L, 1);
    /* Created closed-safe: __gc frees whatever a raising option left behind. */
    p = (ek_pool *)lua_newuserdata(L, sizeof *p);
    memset(p, 0, sizeof *p);
    luaL_getmetatable(L, POOL_MT);
    lua_setmetatable(L, -2);
    set_defaults(p);
    lua_pushnil(L);
    while (lua_next(L, 1) != 0) {
        if (lua_type(L, -2) != LUA_TSTRING)
            return luaL_error(L, EK_MODULE ": option names must be strings");
        read_option(L, p, lua_tostring(L, -2));
        lua_pop(L, 1);
    }
    if (p->base_url == NULL)
        return luaL_error(L, EK_MODULE ": option 'base_url' is required");
    check_base_url(L, p);
    if ((p->username == NULL) != (p->password == NULL))
        return luaL_error(L, EK_MODULE ": options 'username' and 'password' go together");
    if (p->username && p->bearer)
        return luaL_error(L, EK_MODULE ": option 'bearer' cannot be combined with 'username' and 'password'");
    /* libcurl quotes proxy URLs, credentials included, in its messages: the
     * option's, and those of the environment, which it reads itself. */
    if ((p->proxy && ek_secrets_add_userinfo(&p->secrets, p->proxy) != 0) || ek_secrets_from_env(&p->secrets) != 0 ||
        make_header_lines(p) != 0 || read_proxy_env(p) != 0)
        return luaL_error(L, EK_MODULE ": out of memory");
    load_ca_store(p);
    p->multi = curl_multi_init();
    if (p->multi == NULL || make_default_lists(p) != 0)
        return luaL_error(L, EK_MODULE ": out of memory");
    if (p->max_connections > 0)
        curl_multi_setopt(p->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS, p->max_connections);
    return 1;
}

void ek_open_pool(lua_State *L)
{
    static const luaL_Reg meta[] = {
        { "__gc", l_gc },
        { "__close", l_close },
        { "__tostring", l_tostring },
        { NULL, NULL },
    };
    static const luaL_Reg methods_reg[] = {
        { "request", l_request },
        { "submit", l_submit },
        { "perform", l_perform },
        { "finished", l_finished },
        { "cancel", l_cancel },
        { "pending", l_pending },
        { "close", l_close },
        { NULL, NULL },
    };

    luaL_newmetatable(L, POOL_MT);
    ek_setfuncs(L, meta, 0);
    lua_newtable(L);
    lua_pushvalue(L, -2); /* the methods' upvalue: the metatable, for check_pool */
    ek_setfuncs(L, methods_reg, 1);
    lua_setfield(L, -2, "__index");
    lua_pop(L, 1);

    lua_pushcfunction(L, l_pool_new);
    lua_setfield(L, -2, "pool");
}
