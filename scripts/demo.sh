#!/usr/bin/env bash
# Install what is missing, build mpistore, run the demo under mpiexec -n 4.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
. scripts/env.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo -DMPISTORE_BUILD_TESTS=OFF >/dev/null
cmake --build build -j "$JOBS" >/dev/null
demo=${MPISTORE_DEMO:-elastic_demo}
[ -x "build/mpi_examples/$demo" ] || demo=counter
exec mpiexec -n 4 "build/mpi_examples/$demo"
