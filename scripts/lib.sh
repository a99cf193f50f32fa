#!/usr/bin/env bash
# Shared helpers for BrokeForge's scripts: progress lines, installing Debian
# packages when missing, and a throwaway PostgreSQL cluster for test runs.

step() { printf '\n==> %s\n' "$*"; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else echo "error: '$*' needs root; run as root or install sudo" >&2; return 1
    fi
}

# Installs the named Debian packages that are not installed yet.
ensure_debian_packages() {
    local missing=()
    local package
    for package in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed'; then
            missing+=("$package")
        fi
    done
    if [ "${#missing[@]}" -gt 0 ]; then
        step "installing Debian packages: ${missing[*]}"
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
}

# The newest PostgreSQL server binaries Debian installed.
postgres_bin_dir() {
    local dir
    dir=$(find /usr/lib/postgresql -mindepth 2 -maxdepth 2 -name bin -type d 2>/dev/null | sort -V | tail -n 1) || true
    if [ -z "$dir" ]; then
        echo "error: PostgreSQL is not installed (apt-get install postgresql)" >&2
        return 1
    fi
    echo "$dir"
}

# Starts a PostgreSQL cluster on a free loopback port and exports
# BROKEFORGE_TEST_DATABASE_URL; every test creates its own database in it.
start_test_postgres() {
    if [ -n "${BROKEFORGE_TEST_DATABASE_URL:-}" ]; then
        step "using the PostgreSQL at BROKEFORGE_TEST_DATABASE_URL"
        return
    fi
    local bin port
    bin=$(postgres_bin_dir)
    TEST_PG_DIR=$(mktemp -d /tmp/brokeforge-test-pg.XXXXXX)
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    local run=()
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$TEST_PG_DIR"
        run=(runuser -u postgres --)
    fi
    step "starting a throwaway PostgreSQL on 127.0.0.1:$port"
    "${run[@]}" "$bin/initdb" -D "$TEST_PG_DIR/data" -U postgres -A trust -E UTF8 --no-sync >/dev/null
    "${run[@]}" "$bin/pg_ctl" -D "$TEST_PG_DIR/data" -l "$TEST_PG_DIR/postgres.log" -w -t 60 \
        -o "-p $port -k $TEST_PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=500 -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
        start >/dev/null
    export BROKEFORGE_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/postgres"
    TEST_PG_RUN=("${run[@]}")
    TEST_PG_BIN=$bin
}

stop_test_postgres() {
    if [ -n "${TEST_PG_DIR:-}" ]; then
        "${TEST_PG_RUN[@]}" "$TEST_PG_BIN/pg_ctl" -D "$TEST_PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
        rm -rf "$TEST_PG_DIR"
        TEST_PG_DIR=''
    fi
}
