/* Reading a data set's values in the C tests: samples may be stored in their file
 * (ds->x NULL), so tests read them as a batch would, through sn_dataset_get.
 * dsv(ds, i) is element i of the flat (n, sample_elems) f32 values. */
#ifndef SPECNET_TESTS_DATA_VALUE_H
#define SPECNET_TESTS_DATA_VALUE_H

#include <math.h>
#include <stdlib.h>

#include "specnet/runtime.h"

static float dsv(const sn_dataset *ds, int64_t i) {
  enum { MAX_E = 1 << 14 };
  static float row[MAX_E];
  const int64_t E = ds->sample_elems;
  if (E > MAX_E || i < 0 || i >= ds->n * E) return NAN; /* fails any comparison */
  sn_dataset_get(ds, i / E, 1, SN_RT_F32, row);
  return row[i % E];
}

#endif
