/* specnet under mpirun: the sn_comm callbacks of sn_train over MPI_COMM_WORLD.
 *
 * MPI is initialized only when a launcher started the process (its environment says
 * so: OMPI_COMM_WORLD_SIZE, PMI_SIZE, PMIX_RANK, ...), never as a singleton: plain
 * `specnet train` then runs exactly as a build without MPI, and does not pay for an
 * MPI start-up (a singleton MPI_Init forks an orted, takes ~0.5 s and may print
 * warnings about the network). SPECNET_MPI=1 forces MPI_Init (a singleton when not
 * launched), SPECNET_MPI=0 forbids it.
 *
 * The MPI calls are all here; libspecnet_rt never sees MPI (AOT binaries link it with
 * a plain cc command line). Only the main thread calls MPI (MPI_THREAD_FUNNELED is
 * enough); errors are MPI_ERRORS_ARE_FATAL, so a broken connection aborts the job
 * rather than leaving ranks out of step. Counts above INT_MAX go in pieces. */
#include "dist.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef SPECNET_HAVE_MPI
#include <mpi.h>
#include <unistd.h>
#endif

#include "cli.h"

/* The world size a launcher announced in the environment: 0 when none did; -1 when one
 * did without the size (PMIx, PMI ranks). */
static int launched_size(void) {
  static const char *const sizes[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE"};
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    const char *v = getenv(sizes[i]);
    if (v && *v) return atoi(v) > 0 ? atoi(v) : -1;
  }
  if (getenv("PMIX_RANK") || getenv("PMI_RANK")) return -1;
  return 0;
}

int dist_launched_rank(void) {
  static const char *const ranks[] = {"OMPI_COMM_WORLD_RANK", "PMI_RANK", "PMIX_RANK", "MV2_COMM_WORLD_RANK"};
  for (size_t i = 0; i < sizeof ranks / sizeof *ranks; i++) {
    const char *v = getenv(ranks[i]);
    if (v && *v) return atoi(v);
  }
  return 0;
}

bool dist_wanted(void) {
  const char *force = getenv("SPECNET_MPI");
  if (force && *force) return strcmp(force, "0") != 0;
  return launched_size() != 0;
}

#ifndef SPECNET_HAVE_MPI

const sn_comm *dist_start(int threads, int *rc) {
  (void)threads;
  *rc = 0;
  int n = launched_size();
  if (dist_wanted() && n != 1) {
    fprintf(stderr,
            "specnet: error: started by an MPI launcher%s, but this specnet was built without "
            "MPI, so every rank would train a model of its own; rebuild with MPI (Debian: "
            "libopenmpi-dev; cmake -DSPECNET_MPI=ON), or run specnet without mpirun\n",
            n > 1 ? " with several ranks" : "");
    *rc = EXIT_USAGE;
  }
  return NULL;
}

void dist_finish(void) {}

void dist_forget(void) {}

#else

static bool started;
static sn_comm world;

/* MPI counts are int: larger buffers go in pieces of at most 2^30 elements. */
enum { PIECE = 1 << 30 };

static int reduce(void *buf, int64_t n, MPI_Datatype type, size_t size, MPI_Op op) {
  for (int64_t at = 0; at < n; at += PIECE) {
    int k = (int)(n - at < PIECE ? n - at : PIECE);
    if (MPI_Allreduce(MPI_IN_PLACE, (char *)buf + (size_t)at * size, k, type, op,
                      MPI_COMM_WORLD) != MPI_SUCCESS)
      return -1;
  }
  return 0;
}

static int sum_f32(void *ctx, float *buf, int64_t n) {
  (void)ctx;
  return reduce(buf, n, MPI_FLOAT, sizeof *buf, MPI_SUM);
}

static int sum_f64(void *ctx, double *buf, int64_t n) {
  (void)ctx;
  return reduce(buf, n, MPI_DOUBLE, sizeof *buf, MPI_SUM);
}

static int max_f64(void *ctx, double *buf, int64_t n) {
  (void)ctx;
  return reduce(buf, n, MPI_DOUBLE, sizeof *buf, MPI_MAX);
}

static int bcast(void *ctx, void *buf, int64_t bytes, int root) {
  (void)ctx;
  for (int64_t at = 0; at < bytes; at += PIECE) {
    int k = (int)(bytes - at < PIECE ? bytes - at : PIECE);
    if (MPI_Bcast((char *)buf + at, k, MPI_BYTE, root, MPI_COMM_WORLD) != MPI_SUCCESS) return -1;
  }
  return 0;
}

const sn_comm *dist_start(int threads, int *rc) {
  *rc = 0;
  if (started) return world.size > 1 ? &world : NULL;
  if (!dist_wanted()) return NULL;
  int provided = 0;
  if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
    fprintf(stderr, "specnet: error: MPI_Init failed\n");
    *rc = EXIT_SPEC;
    return NULL;
  }
  started = true;
  world = (sn_comm){.sum_f32 = sum_f32, .sum_f64 = sum_f64, .max_f64 = max_f64, .bcast = bcast};
  MPI_Comm_rank(MPI_COMM_WORLD, &world.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &world.size);
  if (world.size <= 1) return NULL;
  /* The ranks on one host share its cores: unless told, each takes its part of them
   * for its thread pool (the default, a thread per core in every rank, oversubscribes). */
  if (!threads && !getenv("SPECNET_NUM_THREADS") && !getenv("OPENBLAS_NUM_THREADS") && !getenv("OMP_NUM_THREADS")) {
    MPI_Comm host;
    int local = 1;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &host) ==
        MPI_SUCCESS) {
      MPI_Comm_size(host, &local);
      MPI_Comm_free(&host);
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    long per = cores > 0 && local > 0 ? cores / local : 1;
    sn_set_threads(per > 0 ? (int)per : 1);
  }
  return &world;
}

void dist_finish(void) {
  if (!started) return;
  started = false;
  MPI_Finalize();
}

void dist_forget(void) { started = false; }

#endif
