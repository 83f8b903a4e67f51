/*
 * core.c: luaopen_envoke_core, the module's entry point.
 *
 * The only process-wide state is libcurl's own, initialised once and thread-safely;
 * everything else lives in userdata owned by the Lua state that created it.
 */
#define _GNU_SOURCE /* dladdr */
#include <dlfcn.h>
#include <pthread.h>
#include <curl/curl.h>

#include "buffer.h"
#include "compat.h"
#include "core.h"
#include "version.h"

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result = CURLE_FAILED_INIT;

/*
 * Keeps this module, and so libcurl, mapped until the process ends. lua_close
 * unloads C modules, but libcurl may still run threads then: a resolver that
 * a cancelled transfer left behind (CURLOPT_QUICK_EXIT) returns into libcurl's
 * code when its lookup ends. libcurl is never cleaned up either (no
 * curl_global_cleanup), so it could not be loaded again cleanly anyway.
 */
static void pin_module(void)
{
    Dl_info self;
    if (dladdr((const void *)&curl_once, &self) != 0 && self.dli_fname != NULL) /* any address in this module */
        (void)dlopen(self.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

static void init_curl(void)
{
    pin_module();
    curl_init_result = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static int scratch_gc(lua_State *L)
{
    ek_buffer_free((ek_buffer *)lua_touserdata(L, 1));
    return 0;
}

ek_buffer *ek_new_scratch(lua_State *L)
{
    ek_buffer *b = (ek_buffer *)lua_newuserdata(L, sizeof *b);
    ek_buffer_init(b);
    if (luaL_newmetatable(L, EK_MODULE ".scratch")) {
        lua_pushcfunction(L, scratch_gc);
        lua_setfield(L, -2, "__gc");
    }
    lua_setmetatable(L, -2);
    return b;
}

/* Exported without hidden visibility: the one symbol Lua looks up. */
__attribute__((visibility("default"))) int luaopen_envoke_core(lua_State *L);

int luaopen_envoke_core(lua_State *L)
{
    const curl_version_info_data *info;

    pthread_once(&curl_once, init_curl);
    if (curl_init_result != CURLE_OK)
        return luaL_error(L, EK_MODULE ": curl_global_init failed: %s", curl_easy_strerror(curl_init_result));
    info = curl_version_info(CURLVERSION_NOW);

    lua_newtable(L);
    lua_pushliteral(L, ENVOKE_VERSION);
    lua_setfield(L, -2, "_VERSION");
    lua_pushstring(L, info->version);
    lua_setfield(L, -2, "curl_version");
    lua_pushliteral(L, ENVOKE_USER_AGENT);
    lua_setfield(L, -2, "user_agent");

    ek_open_json_encode(L);
    ek_open_json_scan(L);
    ek_open_pool(L);
    ek_open_clock(L);
    ek_open_random(L);
    ek_open_path(L);
    return 1;
}
