# gnuplot -e "datadir='DIR'; outfile='latest.png'" bench/plot.gp
# DIR holds barrier.dat and sync64.dat from bench/report.py:
#   ranks mpistore mpi tcpstore torch113   (median microseconds)
if (strstrt(GPVAL_TERMINALS, "pngcairo") > 0) {
    set terminal pngcairo size 1200,520 font "sans,10"
} else {
    set terminal png size 1200,520
}
set output outfile
set logscale xy 2
set logscale y 10
set xlabel "processes (mpiexec -n)"
set ylabel "median latency (us, log scale)"
set grid
set key top left
set format y "%g"
set xrange [0.8:*]
set multiplot layout 1,2
set title "elastic barrier (fresh prefix) vs MPI\\_Barrier"
plot datadir."/barrier.dat" u 1:2 w lp lw 2 pt 7 t "mpistore barrier", \
     "" u 1:3 w lp lw 2 pt 5 t "MPI\\_Barrier", \
     "" u 1:4 w lp lw 2 pt 9 t "TCPStore (same algorithm)", \
     "" u 1:5 w lp lw 1 dt 2 pt 11 t "TCPStore, torch 1.13 helper"
set title "synchronize 64 B per rank vs MPI\\_Allgather"
plot datadir."/sync64.dat" u 1:2 w lp lw 2 pt 7 t "mpistore synchronize", \
     "" u 1:3 w lp lw 2 pt 5 t "MPI\\_Allgather", \
     "" u 1:4 w lp lw 2 pt 9 t "TCPStore (same algorithm)", \
     "" u 1:5 w lp lw 1 dt 2 pt 11 t "TCPStore, torch 1.13 helper"
unset multiplot
