# Shared by callgrind.sh and allocs.sh (sourced): builds `reqloop`, and sets the
# iteration counts, the variants and cases to run, and where the results go.
set -euo pipefail
cd "$(dirname "$0")/../.."
N1="${N1:-200}"
N2="${N2:-1200}"
command -v valgrind >/dev/null || { echo "valgrind is required (apt-get install -y valgrind)"; exit 1; }
cargo build --release -q -p sessionkit-benches --bin reqloop
BIN=target/release/reqloop
VARIANTS="${VARIANTS:-bare sessionkit-memory sessionkit-cookie tower-sessions-memory tower-sessions-signed}"
CASES="${CASES:-untouched read read-write first}"
# The first variant listed is the floor the others are compared with (bare axum by
# default; `bare-boxed` for the "around" variants). Every row also goes to a
# tab-separated file, for `chart.py`.
RESULTS="${RESULTS:-target/bench-results}"
mkdir -p "$RESULTS"
