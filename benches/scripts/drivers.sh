#!/usr/bin/env bash
# Store round trips per request and requests/s through axum for the Redis driver (one
# server, and a Redis Cluster of three primaries with a replica each) and the PostgreSQL
# driver, on throwaway servers on spare loopback ports (or on REDIS_URL /
# REDIS_CLUSTER_NODES / DATABASE_URL when set).
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -q -p sessionkit-benches --bin drivers
scratch=$(mktemp -d)
chmod 755 "$scratch"
cleanup() {
  [ -n "${redis_pid:-}" ] && kill "$redis_pid" 2>/dev/null || true
  for pid in ${cluster_pids:-}; do kill "$pid" 2>/dev/null || true; done
  [ -n "${pg_ctl:-}" ] && $as_pg "$pg_ctl" -D "$scratch/pg" -m fast stop >/dev/null 2>&1 || true
  rm -rf "$scratch"
}
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
args=()
if [ -n "${REDIS_URL:-}" ]; then
  args+=(--redis "$REDIS_URL")
else
  command -v redis-server >/dev/null || { apt-get update -qq && apt-get install -y -qq redis-server >/dev/null; }
  rport=$(port)
  redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --daemonize no >/dev/null &
  redis_pid=$!
  for _ in $(seq 200); do redis-cli -p "$rport" ping >/dev/null 2>&1 && break; sleep 0.1; done
  args+=(--redis "redis://127.0.0.1:$rport")
fi
if [ -n "${REDIS_CLUSTER_NODES:-}" ]; then
  args+=(--redis-cluster "$REDIS_CLUSTER_NODES")
else
  nodes=()
  cluster_pids=""
  for n in 1 2 3 4 5 6; do
    # A cluster node also listens on its port + 10000 (the cluster bus).
    cport=$(port)
    while [ "$cport" -gt 55535 ]; do cport=$(port); done
    mkdir -p "$scratch/cluster-$n"
    redis-server --port "$cport" --bind 127.0.0.1 --save '' --appendonly no --daemonize no \
      --dir "$scratch/cluster-$n" --cluster-enabled yes --cluster-config-file nodes.conf \
      --cluster-node-timeout 1000 >/dev/null &
    cluster_pids="$cluster_pids $!"
    for _ in $(seq 200); do redis-cli -p "$cport" ping >/dev/null 2>&1 && break; sleep 0.1; done
    nodes+=("127.0.0.1:$cport")
  done
  redis-cli --cluster create "${nodes[@]}" --cluster-replicas 1 --cluster-yes >/dev/null
  for node in "${nodes[@]}"; do
    for _ in $(seq 100); do
      redis-cli -p "${node#*:}" cluster info | grep -q 'cluster_state:ok' && break
      sleep 0.1
    done
  done
  args+=(--redis-cluster "$(printf 'redis://%s,' "${nodes[@]}")")
fi
if [ -n "${DATABASE_URL:-}" ]; then
  args+=(--postgres "$DATABASE_URL")
else
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  pg_ctl="$bin/pg_ctl"
  as_pg=""
  if [ "$(id -u)" = 0 ]; then chown postgres "$scratch"; as_pg="runuser -u postgres --"; fi
  $as_pg "$bin/initdb" -D "$scratch/pg" -U postgres --auth=trust >/dev/null
  pport=$(port)
  $as_pg "$pg_ctl" -D "$scratch/pg" -o "-p $pport -k $scratch -c listen_addresses=127.0.0.1 -c fsync=off -c shared_preload_libraries=pg_stat_statements" -l "$scratch/pg.log" -w start >/dev/null
  args+=(--postgres "postgres://postgres@127.0.0.1:$pport/postgres")
fi
target/release/drivers "${args[@]}" "$@"
