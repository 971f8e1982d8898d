#!/usr/bin/env bash
# Runs every fuzz target (or the ones named) under libFuzzer for SECONDS each,
# one after the other, starting from the committed corpus (fuzz/corpus/TARGET).
# New inputs go to fuzz/target/corpus/TARGET, so the committed corpus stays
# small; `fuzz/run.sh --merge` folds them into it, minimised.
#
#   fuzz/run.sh [SECONDS] [TARGET...]     (default 60 seconds, every target)
#   fuzz/run.sh --merge [TARGET...]
#
# Needs a nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`);
# crashes land in fuzz/artifacts/TARGET/ and make this exit non-zero.
set -euo pipefail
cd "$(dirname "$0")"
TARGETS_ALL=(unit_file import_systemd import_pm2 frame state_file time_span sd_notify http_status env_file cron)
merge=false
secs=60
if [ "${1:-}" = "--merge" ]; then merge=true; shift; fi
if [[ "${1:-}" =~ ^[0-9]+$ ]]; then secs=$1; shift; fi
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${TARGETS_ALL[@]}")
fuzz=(cargo +nightly fuzz)
"${fuzz[@]}" build -O
for t in "${targets[@]}"; do
    mkdir -p "corpus/$t" "target/corpus/$t"
    if $merge; then
        "${fuzz[@]}" run -O "$t" "corpus/$t" "target/corpus/$t" -- -set_cover_merge=1 2>&1 | tail -n 2
        continue
    fi
    echo "== $t: $secs s (log: fuzz/target/$t.log)"
    status=0
    "${fuzz[@]}" run -O "$t" "target/corpus/$t" "corpus/$t" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -max_len=8192 -print_final_stats=1 \
        >"target/$t.log" 2>&1 || status=$?
    grep -E '^#[0-9]+' "target/$t.log" | tail -n 1 || true
    grep -E '^stat::(number_of_executed_units|average_exec_per_sec)' "target/$t.log" || true
    if [ "$status" -ne 0 ]; then
        tail -n 40 "target/$t.log"
        echo "fuzz target $t failed; the input is in fuzz/artifacts/$t/" >&2
        exit 1
    fi
done
