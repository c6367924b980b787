#!/usr/bin/env bash
# Install what is missing, then build and run the whole test suite:
#  1. a warnings-as-errors build, every MPI test at 1, 2, 4 and 8 ranks;
#  2. the same suite under AddressSanitizer + UndefinedBehaviorSanitizer;
#  3. install the library and build a consumer with find_package and pkg-config.
# Exits non-zero if anything fails.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
. scripts/env.sh
status=0

echo "== build + test (Open MPI, default settings)"
cmake -S . -B build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMPISTORE_WERROR=ON >/dev/null
cmake --build build-test -j "$JOBS"
(cd build-test && ctest --output-on-failure -j "$JOBS") || status=1

echo "== build + test under AddressSanitizer and UndefinedBehaviorSanitizer"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug "-DMPISTORE_SANITIZE=address;undefined" \
      -DMPISTORE_WERROR=ON >/dev/null
cmake --build build-asan -j "$JOBS"
(cd build-asan && ctest --output-on-failure -j "$JOBS") || status=1

echo "== install + find_package / pkg-config consumer"
stage=$PWD/build-test/stage
rm -rf "$stage" build-test/consumer-cmake
cmake --install build-test --prefix "$stage" >/dev/null
cmake -S tests/consumer -B build-test/consumer-cmake -DCMAKE_PREFIX_PATH="$stage" >/dev/null
cmake --build build-test/consumer-cmake >/dev/null
mpiexec -n 2 build-test/consumer-cmake/consumer || status=1
PKG_CONFIG_PATH="$stage/lib/pkgconfig:$stage/lib/$(gcc -print-multiarch 2>/dev/null)/pkgconfig" \
  sh -c 'mpicc tests/consumer/consumer.c $(pkg-config --cflags --libs mpistore) \
         -Wl,-rpath,'"$stage"'/lib -o build-test/consumer-pc' || status=1
mpiexec -n 2 build-test/consumer-pc || status=1

if [ "$status" -eq 0 ]; then echo "mpistore: all test stages passed"; else echo "mpistore: FAILED"; fi
exit "$status"
