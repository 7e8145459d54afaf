#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests (issue 17): no Docker, nothing left behind.
#
#   source scripts/postgres.sh   # then: postgres_start; ...; postgres_stop
#
# postgres_start installs Debian's `postgresql` package when initdb/pg_ctl are missing (CI runs
# as root on a fresh Debian machine), runs initdb in a temporary directory as a non-root user
# (the `postgres` user the package creates, or `kpid-ci` made with useradd), listens on
# 127.0.0.1 only, on a free port, without a Unix socket, and exports
# KPID_TEST_POSTGRES=postgres://kpid@127.0.0.1:PORT/kpid for the tests, and
# KPID_TEST_POSTGRES_CTL, a script that stops (`stop`) and starts again (`start`) that same
# server, for tests/replicas.rs. postgres_stop stops it (by its pg_ctl, i.e. its own
# postmaster) and removes the directory; set a trap for it.

postgres_bin_dir() {
  local dir
  for dir in /usr/lib/postgresql/*/bin; do
    [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ] && { echo "$dir"; return 0; }
  done
  command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1 &&
    { dirname "$(readlink -f "$(command -v initdb)")"; return 0; }
  return 1
}

# Runs a command as the server's (non-root) user; as that user already when not root.
postgres_as() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u "$PG_USER" -- "$@"
  else
    "$@"
  fi
}

postgres_start() {
  local bin
  if ! bin=$(postgres_bin_dir); then
    echo "PostgreSQL not found: installing Debian's postgresql package"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    bin=$(postgres_bin_dir) || { echo "postgresql installed but initdb/pg_ctl not found" >&2; return 1; }
  fi
  PG_BIN=$bin
  PG_USER=$(id -un)
  if [ "$(id -u)" = 0 ]; then
    if id postgres >/dev/null 2>&1; then
      PG_USER=postgres
    else
      id kpid-ci >/dev/null 2>&1 || useradd --system --no-create-home kpid-ci
      PG_USER=kpid-ci
    fi
  fi
  PG_DIR=$(mktemp -d /tmp/kpid-postgres.XXXXXX)
  chown "$PG_USER" "$PG_DIR"
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  postgres_as "$PG_BIN/initdb" -D "$PG_DIR/data" -U kpid --auth=trust --encoding=UTF8 \
    --locale=C.UTF-8 >"$PG_DIR/initdb.log" 2>&1 ||
    { cat "$PG_DIR/initdb.log" >&2; return 1; }
  local options="-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories='' -c fsync=on"
  postgres_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
    -o "$options" start >/dev/null ||
    { cat "$PG_DIR/server.log" >&2; return 1; }
  local as_user=""
  [ "$(id -u)" = 0 ] && as_user="runuser -u $PG_USER --"
  cat >"$PG_DIR/ctl" <<EOF
#!/usr/bin/env bash
# stop | start: the throwaway PostgreSQL server of scripts/postgres.sh (tests/replicas.rs).
set -euo pipefail
case "\${1:-}" in
  stop) $as_user "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null ;;
  start) $as_user "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 -o "$options" start >/dev/null ;;
  *) echo "usage: \$0 stop|start" >&2; exit 2 ;;
esac
EOF
  chmod 755 "$PG_DIR/ctl"
  export KPID_TEST_POSTGRES_CTL="$PG_DIR/ctl"
  postgres_as "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U kpid kpid
  export KPID_TEST_POSTGRES="postgres://kpid@127.0.0.1:$port/kpid"
  echo "$("$PG_BIN/pg_ctl" --version) up: KPID_TEST_POSTGRES=$KPID_TEST_POSTGRES (data in $PG_DIR)"
}

postgres_stop() {
  [ -n "${PG_DIR:-}" ] || return 0
  postgres_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
  rm -rf "$PG_DIR"
  unset KPID_TEST_POSTGRES_CTL
  echo "PostgreSQL stopped (was $KPID_TEST_POSTGRES)"
  PG_DIR=
}
