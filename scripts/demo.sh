#!/usr/bin/env bash
# Install what is missing, build mpistore, run the demo under mpiexec -n 4.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
. scripts/env.sh
demo=${MPISTORE_DEMO:-elastic_demo}
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$JOBS" --target "$demo" >/dev/null
exec mpiexec -n 4 "build/mpi_examples/$demo"
