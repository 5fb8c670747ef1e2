#!/usr/bin/env bash
# Requests/s and p99 latency over loopback HTTP for every (variant, case), driven by
# wrk with the session cookie set. Installs wrk from Debian if it is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION="${DURATION:-3s}"
CONNECTIONS="${CONNECTIONS:-16}"
if ! command -v wrk >/dev/null; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
cargo build --release -q -p sessionkit-benches --bin serve
BIN=target/release/serve
VARIANTS="${VARIANTS:-bare sessionkit-memory sessionkit-cookie tower-sessions-memory}"
CASES="${CASES:-untouched read read-write first}"
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"; kill $(jobs -p) 2>/dev/null || true' EXIT
printf 'wrk.method = "POST"\n' > "$scratch/post.lua"

printf '%-22s %-11s %12s %10s\n' variant case "requests/s" "p99"
for case in $CASES; do
  for variant in $VARIANTS; do
    "$BIN" "$variant" "$case" 127.0.0.1:0 > "$scratch/out" &
    pid=$!
    for _ in $(seq 50); do grep -q LISTENING "$scratch/out" && break; sleep 0.1; done
    addr=$(sed -n 's/^LISTENING=//p' "$scratch/out")
    cookie=$(sed -n 's/^COOKIE=//p' "$scratch/out")
    case "$case" in
      untouched) path=/untouched; script="" ;;
      read) path=/read; script="" ;;
      *) path=/write; script="-s $scratch/post.lua" ;;
    esac
    header=()
    [ -n "$cookie" ] && header=(-H "Cookie: $cookie")
    # shellcheck disable=SC2086
    wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency $script "${header[@]}" "http://$addr$path" > "$scratch/wrk" 2>&1
    rps=$(awk '/Requests\/sec/ {print $2}' "$scratch/wrk")
    p99=$(awk '$1 == "99%" {print $2}' "$scratch/wrk")
    printf '%-22s %-11s %12s %10s\n' "$variant" "$case" "$rps" "$p99"
    kill "$pid"; wait "$pid" 2>/dev/null || true
  done
done
