# mpistore/_mpibuild.py is written by CMake for pip install (CMakeLists.txt);
# the source tree has none (mpistore/_mpienv.py then does nothing).
MPI_LIBRARY: str
