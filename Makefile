# lua-envoke: build, install and test.
#
#   make                     build envoke.core for Lua 5.4
#   make LUA=5.1|5.2|5.3|5.4|luajit
#   make install PREFIX=/usr/local [LUA=...]
#   make deps                install missing Debian packages (apt-get)
#   make check               deps + every spec under every Lua, ASan+UBSan, valgrind, luacheck
#   make demo                deps + the quickstart against the sandbox
#   make sandbox             run the sandbox server in the foreground
#   make bench               benchmarks (not part of check), results in build/bench
#   make doc                 the reference from the LDoc comments, into build/doc
#   make env [LUA=...]       prints the exports that put this checkout on Lua's paths
#   make clean               removes build/ and what `luarocks make` leaves behind
#   make help                this list
#
# ./run script.lua runs any Lua script from the checkout (./run --help).

LUA      ?= 5.4
PREFIX   ?= /usr/local
CC       ?= cc
CFLAGS   ?= -O2 -g
SANITIZE ?=

ifeq ($(LUA),luajit)
  LUA_INC  ?= -I/usr/include/luajit-2.1
  LUA_ABI  := 5.1
else
  LUA_INC  ?= -I/usr/include/lua$(LUA)
  LUA_ABI  := $(LUA)
endif
LUA_CMOD ?= $(PREFIX)/lib/lua/$(LUA_ABI)
LUA_LMOD ?= $(PREFIX)/share/lua/$(LUA_ABI)

CURL_CFLAGS := $(shell pkg-config --cflags libcurl 2>/dev/null)
CURL_LIBS   := $(shell pkg-config --libs libcurl 2>/dev/null || echo -lcurl)

WARN   := -std=c99 -pedantic -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
DEFS   := -D_POSIX_C_SOURCE=200809L
ifneq ($(SANITIZE),)
  SANFLAGS := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined -O1 -g
  BUILD    := build/$(LUA)-asan
else
  BUILD    := build/$(LUA)
endif

SRCS := $(wildcard src/*.c)
HDRS := $(wildcard src/*.h)
OBJS := $(SRCS:src/%.c=$(BUILD)/obj/%.o)
CORE := $(BUILD)/envoke/core.so

.PHONY: all install uninstall clean deps check demo sandbox bench lint doc help env

all: $(CORE)

$(BUILD)/obj/%.o: src/%.c $(HDRS) Makefile
	@mkdir -p $(@D)
	$(CC) $(WARN) $(DEFS) -fPIC -fvisibility=hidden $(LUA_INC) $(CURL_CFLAGS) $(CFLAGS) $(SANFLAGS) -c $< -o $@

# The module never links liblua: the interpreter that loads it provides the API.
$(CORE): $(OBJS)
	@mkdir -p $(@D)
	$(CC) -shared $(CFLAGS) $(SANFLAGS) $(LDFLAGS) -o $@ $(OBJS) $(CURL_LIBS) -pthread

install: $(CORE)
	install -d $(DESTDIR)$(LUA_CMOD)/envoke $(DESTDIR)$(LUA_LMOD)/envoke
	install -m 0755 $(CORE) $(DESTDIR)$(LUA_CMOD)/envoke/core.so
	cd lua && find envoke -name '*.lua' -exec install -D -m 0644 {} $(DESTDIR)$(LUA_LMOD)/{} \;

uninstall:
	rm -rf $(DESTDIR)$(LUA_CMOD)/envoke $(DESTDIR)$(LUA_LMOD)/envoke

# `luarocks make` builds in place: src/*.o and envoke/core.so, which Lua's
# default ./?.so would otherwise load instead of build/<lua>/ (maybe for another Lua).
clean:
	rm -rf build envoke src/*.o

# The Makefile's header comment, without the leading "# ".
help:
	@sed -n '3,/^$$/s/^# \{0,1\}//p' Makefile

env:
	@./run --env $(LUA)

# Debian 12 packages the build, the specs, the sandbox and the demo need.
DEBS := gcc make pkg-config openssl libcurl4-openssl-dev \
        lua5.1 liblua5.1-0-dev lua5.2 liblua5.2-dev lua5.3 liblua5.3-dev \
        lua5.4 liblua5.4-dev luajit2 libluajit2-5.1-dev \
        lua-cjson lua-busted lua-check lua-socket luarocks \
        nginx libnginx-mod-http-lua valgrind \
        love neovim haproxy

# Installs only what is missing, so a machine that has everything is not slowed down.
deps:
	@missing=$$(for p in $(DEBS); do \
	  dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "make deps: installing" $$missing; \
	  sudo=; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

check: deps
	@bash spec/check

demo: deps
	@bash examples/demo

sandbox: deps
	@./sandbox/run $(if $(PORT),--port $(PORT))

bench: deps
	@bash bench/run

lint:
	luacheck lua spec sandbox examples bench

# The reference, from the LDoc comments. Debian's ldoc runs under lua5.2 by
# default, where no markdown module is packaged: lua-markdown is 5.1 only.
DOC_DEBS := lua-ldoc lua-markdown lua5.1
doc:
	@$(MAKE) -s deps DEBS="$(DOC_DEBS)"
	@rm -rf build/doc
	@lua5.1 "$$(command -v ldoc)" -c config.ld .
