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
#   make fuzz                libFuzzer harnesses (fuzz/, clang), FUZZ_SECONDS=60 each
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
# src/tls.c gives libcurl's OpenSSL connections a CA store parsed once per pool.
SSL_LIBS    := $(shell pkg-config --libs openssl 2>/dev/null || echo -lssl -lcrypto)

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

.PHONY: all install uninstall clean deps check demo sandbox bench lint doc help env fuzz fuzz-build

all: $(CORE)

$(BUILD)/obj/%.o: src/%.c $(HDRS) Makefile
	@mkdir -p $(@D)
	$(CC) $(WARN) $(DEFS) -fPIC -fvisibility=hidden $(LUA_INC) $(CURL_CFLAGS) $(CFLAGS) $(SANFLAGS) -c $< -o $@

# The module never links liblua: the interpreter that loads it provides the API.
$(CORE): $(OBJS)
	@mkdir -p $(@D)
	$(CC) -shared $(CFLAGS) $(SANFLAGS) $(LDFLAGS) -o $@ $(OBJS) $(CURL_LIBS) $(SSL_LIBS) -pthread

install: $(CORE)
	install -d $(DESTDIR)$(LUA_CMOD)/envoke $(DESTDIR)$(LUA_LMOD)/envoke
	install -m 0755 $(CORE) $(DESTDIR)$(LUA_CMOD)/envoke/core.so
	cd lua && find envoke -name '*.lua' -exec install -D -m 0644 {} $(DESTDIR)$(LUA_LMOD)/{} \;
	@# the envoke command, run by the interpreter it was installed for
	install -d $(DESTDIR)$(PREFIX)/bin
	sed '1s|.*|#!/usr/bin/env $(if $(filter luajit,$(LUA)),luajit,lua$(LUA))|' bin/envoke > $(DESTDIR)$(PREFIX)/bin/envoke
	chmod 0755 $(DESTDIR)$(PREFIX)/bin/envoke

uninstall:
	rm -rf $(DESTDIR)$(LUA_CMOD)/envoke $(DESTDIR)$(LUA_LMOD)/envoke
	rm -f $(DESTDIR)$(PREFIX)/bin/envoke

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
DEBS := gcc make pkg-config openssl libssl-dev libcurl4-openssl-dev \
        lua5.1 liblua5.1-0-dev lua5.2 liblua5.2-dev lua5.3 liblua5.3-dev \
        lua5.4 liblua5.4-dev luajit2 libluajit2-5.1-dev \
        lua-cjson lua-busted lua-check lua-socket lua-argparse luarocks \
        nginx libnginx-mod-http-lua valgrind \
        love neovim haproxy clang libclang-rt-14-dev \
        chromium

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
	luacheck lua spec sandbox examples bench fuzz

# libFuzzer harnesses for the JSON encoder and the envelope scanner (fuzz/):
# src/ compiled again with clang, ASan and UBSan into each fuzzer, with
# liblua5.4 (the fuzzers only: the module itself never links liblua). Each
# runs FUZZ_SECONDS, keeping what it finds in build/fuzz/corpus/<name>; a long
# run by hand: make fuzz FUZZ_SECONDS=3600 (crashes land in build/fuzz/).
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 60
FUZZ_BUILD   := build/fuzz
FUZZ_FLAGS   := -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
FUZZ_INC     := -I/usr/include/lua5.4 -Isrc $(CURL_CFLAGS)
FUZZERS      := $(FUZZ_BUILD)/json_encode $(FUZZ_BUILD)/json_members
FUZZ_OBJS    := $(SRCS:src/%.c=$(FUZZ_BUILD)/obj/%.o)

$(FUZZ_BUILD)/obj/%.o: src/%.c $(HDRS) Makefile
	@mkdir -p $(@D)
	$(FUZZ_CC) $(WARN) $(DEFS) $(FUZZ_INC) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZERS): $(FUZZ_BUILD)/%: fuzz/%.c fuzz/harness.c fuzz/harness.h $(FUZZ_OBJS)
	$(FUZZ_CC) $(WARN) $(DEFS) $(FUZZ_INC) $(FUZZ_FLAGS) -fsanitize=fuzzer -DFUZZ_DIR='"$(CURDIR)/fuzz"' \
	  -o $@ $< fuzz/harness.c $(FUZZ_OBJS) -llua5.4 $(CURL_LIBS) $(SSL_LIBS) -lm -pthread

fuzz-build: $(FUZZERS)

fuzz: fuzz-build
	@for f in $(notdir $(FUZZERS)); do \
	  mkdir -p $(FUZZ_BUILD)/corpus/$$f && \
	  echo "make fuzz: $$f for $(FUZZ_SECONDS)s" && \
	  $(FUZZ_BUILD)/$$f -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_BUILD)/$$f- \
	    $$( [ $$f = json_members ] && echo -dict=fuzz/json.dict ) \
	    $(FUZZ_BUILD)/corpus/$$f fuzz/corpus/$$f || exit 1; \
	done

# The reference, from the LDoc comments. Debian's ldoc runs under lua5.2 by
# default, where no markdown module is packaged: lua-markdown is 5.1 only.
DOC_DEBS := lua-ldoc lua-markdown lua5.1
doc:
	@$(MAKE) -s deps DEBS="$(DOC_DEBS)"
	@rm -rf build/doc
	@lua5.1 "$$(command -v ldoc)" -c config.ld .
