# shellcheck shell=bash
# The sanitizer build (ASan+UBSan, clang-16) and the libFuzzer targets of
# fuzz/, shared by scripts/fuzz and scripts/test. Source after common.sh.
#
# Globals:
#   FUZZ_BUILD_DIR  CMake build directory ($REPO_ROOT/build-fuzz)
#   FUZZ_DIR        fuzz binaries, seeds, corpora and crash inputs ($FUZZ_BUILD_DIR/fuzz)

FUZZ_BUILD_DIR="${FUZZ_BUILD_DIR:-$REPO_ROOT/build-fuzz}"
FUZZ_DIR="$FUZZ_BUILD_DIR/fuzz"

# Every target with its -max_len. The JSON-carrying inputs reach 64 KiB, deep
# enough to nest far past the parsers' depth bound (128 levels) on purpose.
FUZZ_TARGETS=(
  edge_http:20480
  token_estimate:65536
  client_request:65536
  provider_response:65536
  embeddings:65536
  provider_stream:65536
  sse_parser:16384
  eventstream:16384
  admin_jwt:4096
  admin_json:65536
  plugin_settings:65536
)

export ASAN_OPTIONS="${ASAN_OPTIONS:-abort_on_error=1:detect_stack_use_after_return=0:strict_string_checks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"

# Configure (once) and build TARGETS... of the sanitizer tree with 2 jobs.
build_fuzz_tree() {
  if [[ ! -f $FUZZ_BUILD_DIR/CMakeCache.txt ]] ||
     [[ ! -f $FUZZ_BUILD_DIR/Makefile && ! -f $FUZZ_BUILD_DIR/build.ninja ]]; then
    command -v clang++-16 >/dev/null || die "clang++-16 not found (Debian packages clang-16, libfuzzer-16-dev)"
    log "configuring the ASan+UBSan tree in $FUZZ_BUILD_DIR"
    CC=clang-16 CXX=clang++-16 cmake -S "$REPO_ROOT" -B "$FUZZ_BUILD_DIR" \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTG_FUZZ=ON >/dev/null ||
      die "CMake configure of $FUZZ_BUILD_DIR failed"
  fi
  log "building $* in $FUZZ_BUILD_DIR"
  cmake --build "$FUZZ_BUILD_DIR" -j2 --target "$@" || die "sanitizer build failed"
}

# Known sanitizer findings, excluded until fixed (each is a real bug, not
# noise): none at present. A '|'-separated list of gtest names.
SANITIZER_KNOWN_FAILURES=''

# The unit tests of tests/unit under ASan+UBSan (built by the unit_tests target).
run_sanitized_unit_tests() {
  local exclude=()
  [[ -z $SANITIZER_KNOWN_FAILURES ]] || exclude=(-E "$SANITIZER_KNOWN_FAILURES")
  log "running the unit tests under ASan+UBSan${SANITIZER_KNOWN_FAILURES:+ (excluding: $SANITIZER_KNOWN_FAILURES)}"
  # --repeat until-pass:2: a test that fails is run once more, and fails the
  # stage only if it fails again. Why: gRPC 1.51 sometimes double-frees a
  # completion queue (grpc_cq_internal_unref on one of its own threads) while
  # a test process that used a gRPC server exits, after every assertion
  # passed (ReportBatcherTest, ~1 in 20 runs under load; not in our code).
  # Both failures are printed; a failure that repeats still fails.
  ctest --test-dir "$FUZZ_BUILD_DIR/tests/unit" --output-on-failure -j2 --timeout 300 \
    --repeat until-pass:2 "${exclude[@]}"
}

# Writes the seed corpora from the golden files into $FUZZ_DIR/seeds.
write_fuzz_seeds() {
  rm -rf "$FUZZ_DIR/seeds"
  "$FUZZ_DIR/tg-fuzz-seeds" "$REPO_ROOT/tests/unit/golden/adapter" "$FUZZ_DIR/seeds" >&2 ||
    die "tg-fuzz-seeds failed"
}

# run_fuzz_targets SECONDS [NAME...]: each target (all by default) for SECONDS,
# one after the other, on its corpus ($FUZZ_DIR/corpus/NAME, kept between runs)
# and its seeds. Prints one line per target; a crash input is kept as
# $FUZZ_DIR/crashes/NAME-crash-<sha1>. Returns 1 if any target failed.
run_fuzz_targets() {
  local seconds=$1 failed=0 entry name max_len log_file execs rate status crash
  shift
  mkdir -p "$FUZZ_DIR/crashes" "$FUZZ_DIR/logs"
  for entry in "${FUZZ_TARGETS[@]}"; do
    name=${entry%%:*} max_len=${entry##*:}
    if (($# > 0)) && [[ " $* " != *" $name "* ]]; then continue; fi
    mkdir -p "$FUZZ_DIR/corpus/$name"
    log_file="$FUZZ_DIR/logs/$name.log"
    status=clean
    # -timeout: one input taking 25 s is a hang; -rss_limit_mb bounds memory.
    if ! "$FUZZ_DIR/${name}_fuzz" -max_total_time="$seconds" -max_len="$max_len" \
        -timeout=25 -rss_limit_mb=2560 -print_final_stats=1 \
        -artifact_prefix="$FUZZ_DIR/crashes/$name-" \
        "$FUZZ_DIR/corpus/$name" "$FUZZ_DIR/seeds/$name" >"$log_file" 2>&1; then
      status=FAILED
      failed=1
    fi
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log_file" | tail -n 1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log_file" | tail -n 1)
    printf '%-18s %12s execs %8s/s in %ss  %s\n' "$name" "${execs:-?}" "${rate:-?}" "$seconds" "$status"
    if [[ $status != clean ]]; then
      crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log_file" | tail -n 1)
      log "$name failed; input kept as ${crash:-?}; log: $log_file"
      grep -m 1 -A 12 -E '^==[0-9]+==ERROR|runtime error|deadly signal' "$log_file" >&2 || tail -n 30 "$log_file" >&2
    fi
  done
  return "$failed"
}
