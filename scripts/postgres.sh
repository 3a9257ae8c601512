#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests (and CI): installs the server with apt-get when
# it is missing, creates a cluster in a directory of its own, starts it on a free loopback
# port and prints its SQLAlchemy URL on stdout (everything else goes to stderr).
#
#   url=$(scripts/postgres.sh start /tmp/sodtrack-pg)    # start; prints postgresql+psycopg://...
#   scripts/postgres.sh stop /tmp/sodtrack-pg            # stop and delete the directory
#   scripts/postgres.sh url /tmp/sodtrack-pg             # print the URL of a running one
#
# PostgreSQL refuses to run as root: as root the cluster belongs to the `postgres` user (the
# package creates it) and every server command runs through runuser. Data is not durable
# (fsync off): this is for tests only.
set -euo pipefail
umask 077

log() { echo "postgres.sh: $*" >&2; }

find_bindir() {
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then echo "$d"; return 0; fi
    done
    if command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
        dirname "$(command -v pg_ctl)"; return 0
    fi
    return 1
}

install_server() {
    if [ "$(id -u)" -ne 0 ]; then
        log "no PostgreSQL server found and not root: install it (apt-get install postgresql)"
        exit 1
    fi
    log "installing PostgreSQL with apt-get (a minute on a fresh machine)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq --no-install-recommends postgresql >&2
}

as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start() {
    local dir=${1:?usage: postgres.sh start DIR}
    local bindir port password
    bindir=$(find_bindir) || { install_server; bindir=$(find_bindir); }
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --home-dir "$dir" postgres
        chown postgres: "$dir"
    fi
    chmod 700 "$dir"
    password=$(python3 -c 'import secrets; print(secrets.token_hex(12))')
    port=$(free_port)
    printf '%s\n' "$password" > "$dir/.pw"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir/.pw"
    as_owner "$bindir/initdb" -D "$dir/data" -U sodtrack --pwfile="$dir/.pw" \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    rm -f "$dir/.pw"
    as_owner "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        start >&2 || { cat "$dir/server.log" >&2; exit 1; }
    as_owner "$bindir/createdb" -h "$dir" -p "$port" -U sodtrack sodtrack_test
    local url="postgresql+psycopg://sodtrack:${password}@127.0.0.1:${port}/sodtrack_test"
    printf '%s\n' "$url" > "$dir/url"
    printf '%s\n' "$bindir" > "$dir/bindir"
    log "PostgreSQL running on 127.0.0.1:$port (data in $dir)"
    echo "$url"
}

stop() {
    local dir=${1:?usage: postgres.sh stop DIR}
    [ -d "$dir/data" ] || { log "nothing in $dir"; return 0; }
    local bindir
    bindir=$(cat "$dir/bindir" 2>/dev/null || find_bindir)
    as_owner "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >&2 || true
    rm -rf "$dir"
}

case "${1:-}" in
    start) start "${2:-}" ;;
    stop) stop "${2:-}" ;;
    url) cat "${2:?usage: postgres.sh url DIR}/url" ;;
    *) echo "usage: $0 start|stop|url DIR" >&2; exit 2 ;;
esac
