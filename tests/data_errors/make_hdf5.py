"""The broken HDF5 files of tests/specs/errors/data_hdf5_*.yaml, written with h5py
into DIR (tests/data_errors/make.sh calls this): bad.h5 holds a good x and y and,
beside them, datasets that are not read: a y with another count, compound records,
strings, bools (an enum), a rank-1 and a scalar x, a group."""
import sys

import h5py
import numpy as np

d = sys.argv[1]
with h5py.File(d + "/bad.h5", "w") as f:
    f.create_dataset("x", data=np.arange(12, dtype=np.float32).reshape(3, 2, 2))
    f.create_dataset("y", data=np.array([0, 1, 2], dtype=np.uint8))
    f.create_dataset("y2", data=np.array([0, 1], dtype=np.uint8))  # 2 labels for 3 samples
    f.create_dataset("records", data=np.zeros(3, dtype=[("a", "<f4"), ("b", "<i4")]))
    f.create_dataset("names", data=np.array([b"cat", b"dog", b"eel"]))
    f.create_dataset("flags", data=np.zeros((3, 2), dtype=bool))
    f.create_dataset("flat", data=np.arange(3, dtype=np.float32))  # rank 1
    f.create_dataset("scalar", data=np.float32(1))  # rank 0
    f.create_dataset("nan", data=np.array([[0, 1], [np.nan, 2], [3, 4]], dtype=np.float32))
    f.create_group("group").create_dataset("inside", data=np.zeros((3, 2), np.uint8))
