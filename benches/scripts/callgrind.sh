#!/usr/bin/env bash
# Instructions per request for every (variant, case), from two callgrind runs of
# `reqloop` with different iteration counts: (I(N2) - I(N1)) / (N2 - N1). Set-up cost
# cancels out, and instruction counts do not move with machine noise. Wall-clock ns per
# request come from native runs in the same invocation.
#
# Note: under valgrind the CPU reports no SHA extensions (AES-NI stays), so SHA-256 and
# HMAC run their portable code there; instruction counts of HMAC-heavy paths are higher
# than the hardware path would suggest. The ns column is native.
# shellcheck source=valgrind-common.sh
source "$(dirname "$0")/valgrind-common.sh"
NATIVE="${NATIVE:-20000}"
TSV="$RESULTS/callgrind.tsv"
printf 'variant\tcase\tinstr\tns\tover_bare\tns_over_bare\n' > "$TSV"

instructions() {
  valgrind --tool=callgrind --callgrind-out-file=/dev/null "$BIN" "$1" "$2" "$3" 2>&1 >/dev/null |
    sed -n 's/.*Collected : \([0-9]*\).*/\1/p'
}

printf '%-22s %-11s %12s %10s %12s %10s\n' variant case instr/req ns/req "over bare" "ns over"
for case in $CASES; do
  base_i=""; base_ns=""
  for variant in $VARIANTS; do
    i1=$(instructions "$variant" "$case" "$N1")
    i2=$(instructions "$variant" "$case" "$N2")
    per=$(( (i2 - i1) / (N2 - N1) ))
    ns=$("$BIN" "$variant" "$case" "$NATIVE" | awk '{print $4}')
    if [ -z "$base_i" ]; then base_i=$per; base_ns=$ns; first=$variant; fi
    over="-"; over_ns="-"
    if [ "$variant" != "$first" ]; then over=$((per - base_i)); over_ns=$((ns - base_ns)); fi
    printf '%-22s %-11s %12s %10s %12s %10s\n' "$variant" "$case" "$per" "$ns" "$over" "$over_ns"
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$variant" "$case" "$per" "$ns" "$over" "$over_ns" >> "$TSV"
  done
done
