#!/usr/bin/env bash
# Install what is missing, then build and run the whole test suite, every cell
# of the transport matrix (docs/testing.md):
#  1. Open MPI, warnings as errors: default settings, osc/pt2pt over TCP, two
#     emulated nodes, osc/ucx over TCP (progress thread); each a ctest label;
#  2. MPICH (mpicc.mpich / mpiexec.mpich), a build of its own;
#  3. the Open MPI default cell under AddressSanitizer + UndefinedBehaviorSanitizer;
#  4. the libFuzzer harness, a short run from the checked-in corpus (clang);
#  5. install the library and build a consumer with find_package and pkg-config.
# Every stage runs even if an earlier one failed; exits non-zero if any failed.
# STAGES="ompi mpich asan fuzz install" selects stages (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh mpich libmpich-dev clang libclang-rt-14-dev \
  python3-mpi4py python3-pytest python3-numpy python3-torch python3-venv iproute2
. scripts/env.sh
# The Python cells' interpreters: .venv (torch 2.13, the package installed with
# pip) and Debian's /usr/bin/python3 (python3-torch).  If the venv cannot be
# made, its cell reports itself skipped with the reason (tests/CMakeLists.txt).
venv_ok=1
scripts/venv.sh || { venv_ok=0; echo "test.sh: scripts/venv.sh FAILED: the venv Python cell is skipped"; }
PYCELLS=(-DMPISTORE_PYTHON="$PWD/.venv/bin/python" -DMPISTORE_SYSTEM_PYTHON=/usr/bin/python3)
STAGES=${STAGES:-ompi mpich asan fuzz install}
status=0
failed=()
stage() { [[ " $STAGES " == *" $1 "* ]]; }
fail() { status=1; failed+=("$1"); }
[ "$venv_ok" -eq 1 ] || fail venv
t0=$SECONDS
took() { echo "   ($(( SECONDS - t0 )) s so far)"; }

if stage ompi; then
  echo "== Open MPI: build (-Werror) + test, cells ompi/tcp/2node/ucx"
  cmake -S . -B build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMPISTORE_WERROR=ON "${PYCELLS[@]}"
  cmake --build build-test -j "$JOBS"
  (cd build-test && ctest --output-on-failure -j "$JOBS") || fail ompi
  took
fi

if stage mpich; then
  echo "== MPICH: build (-Werror) + test"
  cmake -S . -B build-mpich -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMPISTORE_WERROR=ON \
        -DMPI_C_COMPILER=/usr/bin/mpicc.mpich -DMPIEXEC_EXECUTABLE=/usr/bin/mpiexec.mpich
  cmake --build build-mpich -j "$JOBS"
  # MPICH busy-polls: one test at a time keeps oversubscription down.
  (cd build-mpich && ctest --output-on-failure -j 1) || fail mpich
  took
fi

if stage asan; then
  echo "== Open MPI default cell under AddressSanitizer + UndefinedBehaviorSanitizer"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug "-DMPISTORE_SANITIZE=address;undefined" \
        -DMPISTORE_WERROR=ON -DMPISTORE_TRANSPORTS=ompi
  cmake --build build-asan -j "$JOBS"
  (cd build-asan && ctest --output-on-failure -j "$JOBS") || fail asan
  took
fi

if stage fuzz && [ -f tests/fuzz/CMakeLists.txt ]; then
  echo "== libFuzzer harness (clang), short run from the checked-in corpus"
  CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMPISTORE_BUILD_FUZZ=ON \
        -DMPISTORE_BUILD_EXAMPLES=OFF -DMPISTORE_TRANSPORTS=ompi
  cmake --build build-fuzz -j "$JOBS"
  (cd build-fuzz && ctest --output-on-failure -L fuzz) || fail fuzz
  took
fi

if stage install; then
  echo "== install + find_package / pkg-config consumer"
  [ -d build-test ] || { cmake -S . -B build-test -DMPISTORE_WERROR=ON &&
                         cmake --build build-test -j "$JOBS"; }
  stage_dir=$PWD/build-test/stage
  rm -rf "$stage_dir" build-test/consumer-cmake
  if cmake --install build-test --prefix "$stage_dir" &&
     cmake -S tests/consumer -B build-test/consumer-cmake -DCMAKE_PREFIX_PATH="$stage_dir" &&
     cmake --build build-test/consumer-cmake &&
     mpiexec -n 2 build-test/consumer-cmake/consumer &&
     PKG_CONFIG_PATH="$stage_dir/lib/pkgconfig:$stage_dir/lib/$(gcc -print-multiarch)/pkgconfig" \
       sh -c 'mpicc tests/consumer/consumer.c $(pkg-config --cflags --libs mpistore) \
              -Wl,-rpath,'"$stage_dir"'/lib -o build-test/consumer-pc' &&
     mpiexec -n 2 build-test/consumer-pc; then :; else fail install; fi
  took
fi

if [ "$status" -eq 0 ]; then
  echo "mpistore: all test stages passed ($STAGES) in $(( SECONDS - t0 )) s"
else
  echo "mpistore: FAILED stages: ${failed[*]}"
fi
exit "$status"
