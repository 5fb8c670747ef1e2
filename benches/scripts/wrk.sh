#!/usr/bin/env bash
# Requests/s and p99 latency over loopback HTTP for every (variant, case), driven by
# wrk with the session cookie set. Installs wrk from Debian if it is missing.
#
# With ROUNDS=n every (variant, case) runs n times, the variants taking turns within
# each round so that a noisy minute hurts them alike, and the median round is printed
# (with the share of the first variant's requests/s, normally bare axum's).
set -euo pipefail
cd "$(dirname "$0")/../.."
DURATION="${DURATION:-3s}"
ROUNDS="${ROUNDS:-1}"
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

RESULTS="${RESULTS:-target/bench-results}"
mkdir -p "$RESULTS"
TSV="$RESULTS/wrk.tsv"

# One wrk run of (variant, case): prints "requests/s p99".
run() {
  local variant=$1 case=$2
  "$BIN" "$variant" "$case" 127.0.0.1:0 > "$scratch/out" &
  local pid=$!
  for _ in $(seq 50); do grep -q LISTENING "$scratch/out" && break; sleep 0.1; done
  local addr cookie path script
  addr=$(sed -n 's/^LISTENING=//p' "$scratch/out")
  cookie=$(sed -n 's/^COOKIE=//p' "$scratch/out")
  case "$case" in
    untouched) path=/untouched; script="" ;;
    read) path=/read; script="" ;;
    *) path=/write; script="-s $scratch/post.lua" ;;
  esac
  local header=()
  [ -n "$cookie" ] && header=(-H "Cookie: $cookie")
  # shellcheck disable=SC2086
  wrk -t1 -c"$CONNECTIONS" -d"$DURATION" --latency $script "${header[@]}" "http://$addr$path" > "$scratch/wrk" 2>&1
  echo "$(awk '/Requests\/sec/ {print $2}' "$scratch/wrk") $(awk '$1 == "99%" {print $2}' "$scratch/wrk")"
  kill "$pid"; wait "$pid" 2>/dev/null || true
}

for round in $(seq "$ROUNDS"); do
  for case in $CASES; do
    for variant in $VARIANTS; do
      echo "$variant $case $(run "$variant" "$case")" >> "$scratch/rounds"
    done
  done
  echo "round $round of $ROUNDS done" >&2
done

printf '%-22s %-11s %12s %10s %10s\n' variant case "requests/s" "p99" "of first"
printf 'variant\tcase\trps\tp99\tshare_of_first\n' > "$TSV"
for case in $CASES; do
  base=""
  for variant in $VARIANTS; do
    # The median round by requests/s.
    line=$(awk -v v="$variant" -v c="$case" '$1 == v && $2 == c {print $3, $4}' "$scratch/rounds" | sort -n | awk '{a[NR]=$0} END {print a[int((NR + 1) / 2)]}')
    rps=${line% *}; p99=${line#* }
    [ -z "$base" ] && base=$rps
    share=$(awk -v r="$rps" -v b="$base" 'BEGIN { printf "%.0f%%", 100 * r / b }')
    printf '%-22s %-11s %12s %10s %10s\n' "$variant" "$case" "$rps" "$p99" "$share"
    printf '%s\t%s\t%s\t%s\t%s\n' "$variant" "$case" "$rps" "$p99" "$share" >> "$TSV"
  done
done
