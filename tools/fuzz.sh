#!/usr/bin/env bash
# tools/fuzz.sh TARGET SECONDS [LIBFUZZER ARGS...]: coverage-guided fuzzing of one target for
# SECONDS (niced: the machine is shared). TARGET is parser, chunked, channel, ini, listen,
# differential, proxy, or all (each target for SECONDS in turn).
#
# Engine: libFuzzer through libfuzzer-sys (which builds libFuzzer from its bundled source with
# the C++ compiler), on the one stable toolchain: the SanitizerCoverage instrumentation that
# cargo-fuzz asks for is plain -C codegen flags (no -Z, no nightly, no cargo-fuzz binary).
# Targets live in fuzz/fuzz_targets; they share the sans-IO channel and the hyper reference
# with the proptest properties (tests/it/props) that CI runs.
#
# Seeds: the hostile request corpus (tests/it/hostile/corpus, written out by the ignored test
# props::seeds::write_fuzz_seeds) and the config corpus (tests/config_corpus). The corpus grows
# under target/fuzz/corpus/TARGET; crashes land in target/fuzz/artifacts/TARGET. The last line
# printed is "TARGET: N execs in S s, corpus C inputs" (libFuzzer's final stats).
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
all=(parser chunked channel ini listen differential proxy)
target="${1:?usage: tools/fuzz.sh TARGET SECONDS [LIBFUZZER ARGS...] (targets: ${all[*]} all)}"
secs="${2:?usage: tools/fuzz.sh TARGET SECONDS}"
shift 2
if [ "$target" = all ]; then
    for t in "${all[@]}"; do "$0" "$t" "$secs" "$@"; done
    exit 0
fi
case " ${all[*]} " in *" $target "*) ;; *) echo "unknown target $target (${all[*]})" >&2; exit 2 ;; esac

# libfuzzer-sys compiles libFuzzer's C++ source.
if ! command -v c++ >/dev/null 2>&1; then
    apt-get install -y g++ >/dev/null || { apt-get update >/dev/null && apt-get install -y g++ >/dev/null; }
fi
export PYO3_PYTHON="${PYO3_PYTHON:-$(python3 -c 'import sys; print(sys._base_executable)')}"
# libpython for the waitressd library the targets link (they never start Python).
libdir="$("$PYO3_PYTHON" -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))')"
export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

triple="$(rustc -vV | sed -n 's/^host: //p')"
out="$repo/target/fuzz"
# What cargo-fuzz passes for `--sanitizer none`; the explicit --target keeps these flags off
# build scripts and proc macros.
sancov="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
RUSTFLAGS="$sancov" nice -n 10 cargo build --release --quiet --manifest-path "$repo/fuzz/Cargo.toml" \
    --target "$triple" --target-dir "$out/build" --bin "$target"
bin="$out/build/$triple/release/$target"

# Seeds, written once per checkout.
seeds="$out/seeds"
if [ ! -f "$seeds/.done" ]; then
    mkdir -p "$seeds"
    (cd "$repo" && unset RUSTFLAGS && WAITRESSD_FUZZ_SEEDS="$seeds" nice -n 10 cargo test --quiet --test it \
        props::seeds::write_fuzz_seeds -- --ignored >/dev/null)
    touch "$seeds/.done"
fi
corpus="$out/corpus/$target"
artifacts="$out/artifacts/$target"
mkdir -p "$corpus" "$artifacts"

log="$out/$target.log"
set +e
nice -n 10 "$bin" "$corpus" "$seeds/$target" -max_total_time="$secs" -rss_limit_mb=2048 \
    -max_len=16384 -timeout=10 -print_final_stats=1 -artifact_prefix="$artifacts/" "$@" \
    2>&1 | tee "$log" | grep -E '^(#[0-9]+ +(INITED|DONE|NEW)|==|SUMMARY|stat::|Done)' | tail -n 12
rc=${PIPESTATUS[0]}
set -e
execs="$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)"
echo "$target: ${execs:-?} execs in ${secs} s, corpus $(ls "$corpus" | wc -l) inputs, exit $rc"
exit "$rc"
