"""Writes the HDF5 test files of tests/test_data_hdf5.sh with h5py into DIR.

data.h5 holds, for each dtype (u8 i8 u16 i16 u32 i32 u64 i64 f16 f32 f64), the same
N samples of shape (A, F) in several layouts:
  /<dt>/contiguous     contiguous storage
  /<dt>/chunked        chunks of 7 whole samples (N is not a multiple of 7)
  /<dt>/cut            chunks of (5, 2, 1) that cut samples
  /<dt>/gzip           chunks of 6 samples, gzip + shuffle filters
  /<dt>/bigendian      contiguous, big-endian (libhdf5 converts)
and /labels (N,) int64, /targets (N, 2) float32. For each dtype, <dt>.f32 holds the
values as specnet must convert them (numpy: through float64 to float32), raw
little-endian. Values are large and negative where the dtype allows, so that a
wrong type, byte order or offset shows.
"""
import sys

import h5py
import numpy as np

N, A, F = 61, 4, 3
DTYPES = ["u1", "i1", "u2", "i2", "u4", "i4", "u8", "i8", "f2", "f4", "f8"]


def values(dt, rng):
    t = np.dtype(dt)
    if t.kind in "ui":
        info = np.iinfo(t)
        lo, hi = max(int(info.min), -(2**40)), min(int(info.max), 2**40)
        v = rng.integers(lo, hi, (N, A, F), dtype=np.int64, endpoint=True)
        v.flat[:4] = [lo, hi, 0, 1]
        return v.astype(t)
    v = rng.normal(0, 1000 if t.itemsize > 2 else 100, (N, A, F))
    return v.astype(t)


def main(d):
    rng = np.random.default_rng(11)
    with h5py.File(d + "/data.h5", "w") as f:
        for dt in DTYPES:
            x = values(dt, rng)
            g = f.create_group(dt)
            g.create_dataset("contiguous", data=x)
            g.create_dataset("chunked", data=x, chunks=(7, A, F))
            g.create_dataset("cut", data=x, chunks=(5, 2, 1))
            g.create_dataset("gzip", data=x, chunks=(6, A, F), compression="gzip", shuffle=True)
            g.create_dataset("bigendian", data=x.astype(x.dtype.newbyteorder(">")))
            x.astype(np.float64).astype("<f4").tofile(d + "/%s.f32" % dt)
        f.create_dataset("labels", data=(np.arange(N) % 3).astype(np.int64))
        f.create_dataset("targets", data=rng.normal(0, 1, (N, 2)).astype(np.float32))


if __name__ == "__main__":
    main(sys.argv[1])
