#!/usr/bin/env bash
# Heap allocations per request for every (variant, case), counted by valgrind's DHAT
# from two runs of `reqloop` with different iteration counts:
# (blocks(N2) - blocks(N1)) / (N2 - N1), so set-up allocations cancel out.
# shellcheck source=valgrind-common.sh
source "$(dirname "$0")/valgrind-common.sh"
TSV="$RESULTS/allocs.tsv"
printf 'variant\tcase\tallocs\tover_bare\n' > "$TSV"

blocks() {
  valgrind --tool=dhat --dhat-out-file=/dev/null "$BIN" "$1" "$2" "$3" 2>&1 >/dev/null |
    sed -n 's/.*Total: *[0-9,]* bytes in \([0-9,]*\) blocks.*/\1/p' | tr -d ,
}

printf '%-24s %-11s %10s %10s\n' variant case allocs/req "over bare"
for case in $CASES; do
  base=""
  for variant in $VARIANTS; do
    b1=$(blocks "$variant" "$case" "$N1")
    b2=$(blocks "$variant" "$case" "$N2")
    per=$(awk -v a="$b1" -v b="$b2" -v n=$((N2 - N1)) 'BEGIN { printf "%.1f", (b - a) / n }')
    [ -z "$base" ] && base=$per && first=$variant
    over=$(awk -v p="$per" -v b="$base" 'BEGIN { printf "%+.1f", p - b }')
    [ "$variant" = "$first" ] && over="-"
    printf '%-24s %-11s %10s %10s\n' "$variant" "$case" "$per" "$over"
    printf '%s\t%s\t%s\t%s\n' "$variant" "$case" "$per" "$over" >> "$TSV"
  done
done
