/*
 * vm_costs: what waiting costs on this machine (Linux), without MPI.
 *
 *   build/bench/vm_costs
 *
 * A store's waiter can yield between looks or sleep.  This measures the
 * two on the machine at hand (docs/design.md, "Issue #22's targets"):
 *  - nanosleep of 1 us and 10 us, with the default timer slack and with a
 *    slack of 1 ns (prctl), on an idle CPU and on a CPU where another
 *    process is running (a sleeper woken there waits for it);
 *  - a hand-off by sched_yield between two processes pinned to one CPU
 *    (each waits for the other's turn in shared memory, yielding);
 *  - sched_yield with nothing else to run, and a plain system call;
 *  - what a waiter takes from a busy process on its CPU: the busy process's
 *    throughput beside a process looping on sched_yield, and beside one
 *    looping on a 50 us nanosleep, as a share of its throughput alone.
 * Not run by the test suite.
 */
#define _GNU_SOURCE
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static void pin(int cpu)
{
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    if (sched_setaffinity(0, sizeof s, &s) != 0)
        perror("vm_costs: sched_setaffinity");
}

/* us per nanosleep(ns), n times */
static double sleep_us(long ns, int n)
{
    struct timespec ts = {0, ns};
    double t = now();
    for (int i = 0; i < n; i++)
        nanosleep(&ts, NULL);
    return (now() - t) / n * 1e6;
}

/* Rounds of a fixed loop per second, for secs seconds on this CPU. */
static double work_rate(double secs)
{
    static volatile unsigned long sink;
    unsigned long rounds = 0;
    double t0 = now(), t;
    while ((t = now()) - t0 < secs) {
        for (unsigned long i = 0; i < 1000; i++)
            sink += i;
        rounds++;
    }
    return (double)rounds / (t - t0);
}

/* A waiter on cpu until killed: sched_yield (sleep_ns 0) or nanosleep. */
static pid_t waiter_on(int cpu, long sleep_ns)
{
    pid_t p = fork();
    if (p == 0) {
        pin(cpu);
        struct timespec ts = {0, sleep_ns};
        for (;;) {
            if (sleep_ns)
                nanosleep(&ts, NULL);
            else
                sched_yield();
        }
    }
    return p;
}

static pid_t busy_on(int cpu)
{
    pid_t p = fork();
    if (p == 0) {
        pin(cpu);
        for (;;)
            ;
    }
    return p;
}

int main(void)
{
    const int n = 2000;
    int cpu = sched_getcpu() < 0 ? 0 : sched_getcpu();
    pin(cpu);
    unsigned long slack0 = (unsigned long)prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0);

    double t = now();
    for (int i = 0; i < 200000; i++)
        syscall(SYS_getppid);
    printf("system call: %.3f us\n", (now() - t) / 200000 * 1e6);
    t = now();
    for (int i = 0; i < 200000; i++)
        sched_yield();
    printf("sched_yield, nothing else to run: %.3f us\n", (now() - t) / 200000 * 1e6);

    for (int busy = 0; busy < 2; busy++) {
        pid_t b = busy ? busy_on(cpu) : 0;
        if (busy)
            usleep(20000);
        for (int s = 0; s < 2; s++) {
            prctl(PR_SET_TIMERSLACK, s ? 1UL : slack0, 0, 0, 0);
            printf("nanosleep 1 us / 10 us, %s CPU, timer slack %lu ns: %.1f / %.1f us\n",
                   busy ? "busy" : "idle", s ? 1UL : slack0, sleep_us(1000, n / 4),
                   sleep_us(10000, n / 4));
        }
        if (busy) {
            kill(b, SIGKILL);
            waitpid(b, NULL, 0);
        }
    }
    prctl(PR_SET_TIMERSLACK, slack0, 0, 0, 0);

    _Atomic long *turn =
        mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (turn == MAP_FAILED) {
        perror("vm_costs: mmap");
        return 1;
    }
    const long m = 100000;
    atomic_store(turn, 0);
    pid_t p = fork();
    if (p == 0) {
        for (long i = 1; i <= m; i++) {
            while (atomic_load(turn) != 2 * i - 1)
                sched_yield();
            atomic_store(turn, 2 * i);
        }
        _exit(0);
    }
    t = now();
    for (long i = 1; i <= m; i++) {
        atomic_store(turn, 2 * i - 1);
        while (atomic_load(turn) != 2 * i)
            sched_yield();
    }
    printf("hand-off by sched_yield between two processes on one CPU: %.2f us per turn\n",
           (now() - t) / (double)m / 2 * 1e6);
    waitpid(p, NULL, 0);

    double alone = work_rate(0.5);
    for (int sleeping = 0; sleeping < 2; sleeping++) {
        pid_t w = waiter_on(cpu, sleeping ? 50000 : 0);
        usleep(20000);
        double with = work_rate(0.5);
        kill(w, SIGKILL);
        waitpid(w, NULL, 0);
        printf("a busy process beside a waiter on its CPU (%s): %.0f%% of its throughput "
               "alone\n",
               sleeping ? "nanosleep 50 us loop" : "sched_yield loop", 100.0 * with / alone);
    }
    return 0;
}
