#!/usr/bin/env bash
# A throwaway production-grade STAC API on loopback: stac-fastapi-pgstac on PostgreSQL + PostGIS, no docker.
#
#   stac/pgstac.sh install              apt packages PostgreSQL 15 + PostGIS 3 (root; skipped when present)
#   stac/pgstac.sh start DIR [PORT]     database + migrated pgstac + the API (transactions on); prints its URL
#   stac/pgstac.sh stop DIR             stop the API and the database, remove DIR
#
# Everything (cluster, sockets, logs, pids) lives in DIR. PYTHON names the interpreter that has
# stac-fastapi-pgstac and pypgstac (default: the repository's .venv). Load items with `magseg stac ingest`.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PYTHON="${PYTHON:-$HERE/../.venv/bin/python}"
PG_BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}"

die() { echo "pgstac.sh: $*" >&2; exit 2; }
free_port() { "$PYTHON" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
# initdb and postgres refuse to run as root: run them as the postgres user then
as_db_user() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

install() {
  if [ -n "$PG_BIN" ] && ls /usr/share/postgresql/*/extension/postgis.control >/dev/null 2>&1; then
    return 0
  fi
  [ "$(id -u)" = 0 ] || die "PostgreSQL + PostGIS are missing; run 'sudo stac/pgstac.sh install'"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends postgresql postgresql-15-postgis-3 postgresql-15-postgis-3-scripts >/dev/null
}

start() {
  local dir="${1:?usage: pgstac.sh start DIR [PORT]}" api_port="${2:-$(free_port)}"
  [ -n "$PG_BIN" ] || die "no PostgreSQL found; run 'stac/pgstac.sh install' first"
  [ -x "$PYTHON" ] || die "$PYTHON not found; run 'make install' first or set PYTHON"
  mkdir -p "$dir" && dir="$(cd "$dir" && pwd)"
  [ ! -e "$dir/pg" ] || die "$dir already holds a database; stop it first (pgstac.sh stop $dir)"
  local db_port; db_port="$(free_port)"
  mkdir -p "$dir/pg" "$dir/sock"
  [ "$(id -u)" != 0 ] || chown postgres "$dir/pg" "$dir/sock" && chmod 755 "$dir"
  as_db_user "$PG_BIN/initdb" -D "$dir/pg/data" -U magseg --auth=trust -E UTF8 >"$dir/initdb.log" 2>&1 \
    || die "initdb failed; see $dir/initdb.log"
  as_db_user "$PG_BIN/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/postgres.log" -w -t 60 start \
    -o "-p $db_port -k $dir/sock -c listen_addresses=127.0.0.1" >/dev/null || die "postgres did not start; see $dir/pg/postgres.log"
  local dsn="postgresql://magseg@127.0.0.1:$db_port/postgis"
  as_db_user "$PG_BIN/createdb" -h 127.0.0.1 -p "$db_port" -U magseg postgis
  "$(dirname "$PYTHON")/pypgstac" migrate --dsn "$dsn" >"$dir/migrate.log" 2>&1 || die "pypgstac migrate failed; see $dir/migrate.log"
  # eo:cloud_cover sorts and compares as a number only once registered as a numeric queryable
  psql "$dsn" -q -c "SET search_path=pgstac,public; INSERT INTO queryables (name, definition, property_wrapper, property_index_type) VALUES ('eo:cloud_cover','{\"type\":\"number\"}','to_float','BTREE') ON CONFLICT DO NOTHING;" >/dev/null 2>&1 || true
  echo "$dsn" >"$dir/dsn"
  PGUSER=magseg PGPASSWORD=unused PGHOST=127.0.0.1 PGPORT="$db_port" PGDATABASE=postgis \
    ENABLE_TRANSACTIONS_EXTENSIONS=TRUE \
    nohup "$PYTHON" -m uvicorn stac_fastapi.pgstac.app:create_app --factory --host 127.0.0.1 --port "$api_port" \
    >"$dir/api.log" 2>&1 &
  echo $! >"$dir/api.pid"
  local url="http://127.0.0.1:$api_port"
  for _ in $(seq 1 120); do
    if "$PYTHON" -c "import urllib.request,sys; urllib.request.urlopen(sys.argv[1], timeout=2)" "$url/_mgmt/ping" 2>/dev/null; then
      echo "$url" >"$dir/url"; echo "$url"; return 0
    fi
    kill -0 "$(cat "$dir/api.pid")" 2>/dev/null || { stop "$dir" >/dev/null 2>&1 || true; die "the API exited; see the log it wrote"; }
    sleep 0.25
  done
  die "the API did not answer at $url within 30 s; see $dir/api.log"
}

stop() {
  local dir="${1:?usage: pgstac.sh stop DIR}"
  [ -d "$dir" ] || return 0
  if [ -f "$dir/api.pid" ]; then kill "$(cat "$dir/api.pid")" 2>/dev/null || true; fi
  if [ -d "$dir/pg/data" ]; then as_db_user "$PG_BIN/pg_ctl" -D "$dir/pg/data" -m fast -w stop >/dev/null 2>&1 || true; fi
  rm -rf "$dir"
}

case "${1:-}" in
  install) install ;;
  start) shift; start "$@" ;;
  stop) shift; stop "$@" ;;
  *) die "usage: pgstac.sh install | start DIR [PORT] | stop DIR" ;;
esac
