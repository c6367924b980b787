#!/bin/sh
# run_fuzz.sh FUZZER SCRATCH_DIR CORPUS_DIR [libFuzzer options...]
# Runs FUZZER on CORPUS_DIR with SCRATCH_DIR (created) as the first, writable
# corpus directory, so new inputs never land in the checked-in corpus.
set -e
fuzzer=$1 scratch=$2 corpus=$3
shift 3
mkdir -p "$scratch"
exec "$fuzzer" "$scratch" "$corpus" "$@"
