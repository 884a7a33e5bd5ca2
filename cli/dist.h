/* Data-parallel training under mpirun (dist.c; docs/distributed.md): the sn_comm
 * that sn_train uses, implemented with MPI when specnet is built with SPECNET_MPI. */
#ifndef SPECNET_CLI_DIST_H
#define SPECNET_CLI_DIST_H

#include <stdbool.h>

#include "specnet/runtime.h"

/* Whether an MPI launcher (mpirun, mpiexec, srun) started this process, read from its
 * environment, or SPECNET_MPI=1 asks for MPI (SPECNET_MPI=0: never). */
bool dist_wanted(void);

/* This process's rank as the launcher's environment gives it (OMPI_COMM_WORLD_RANK,
 * PMI_RANK, PMIX_RANK, ...), before MPI_Init; 0 when not launched. */
int dist_launched_rank(void);

/* Joins the MPI job when dist_wanted(): MPI_Init, and unless `threads` (--threads) or
 * OPENBLAS_NUM_THREADS says otherwise, one OpenBLAS thread per core / ranks on this
 * host. Returns the comm, or NULL to train alone (not launched, or one rank). *rc is
 * an exit code when this cannot work (launched with several ranks but built without
 * MPI), after a message on stderr. */
const sn_comm *dist_start(int threads, int *rc);

/* MPI_Finalize, if dist_start initialized MPI; every rank calls it. */
void dist_finish(void);

/* In a process forked from a rank (a sweep's trial): leave the parent's MPI job
 * alone, untouched, and train as one process (with SPECNET_MPI=0). */
void dist_forget(void);

#endif
