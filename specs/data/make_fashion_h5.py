"""Writes fashion.h5 beside this file (specs/fashion_hdf5.yaml reads it): Debian's
Fashion-MNIST (dataset-fashion-mnist, or $SPECNET_DATA) as HDF5 datasets

    /train/images  (60000, 28, 28) uint8, chunks of 1000 whole images, uncompressed
    /train/labels  (60000,) uint8
    /test/images   (10000, 28, 28) uint8, chunks of 100 images, gzip
    /test/labels   (10000,) uint8

(55 MB). Needs numpy and h5py (python3-h5py):

    python3 specs/data/make_fashion_h5.py
"""
import gzip
import os
import sys

import h5py
import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
dirs = [os.path.join(os.environ.get("SPECNET_DATA", ""), d) for d in ("fashion_mnist", "fashion-mnist", "")]
dirs.append("/usr/share/datasets/fashion-mnist")


def idx(base, offset):
    for d in dirs:
        for p in (os.path.join(d, base), os.path.join(d, base + ".gz")):
            if os.path.isfile(p):
                with (gzip.open if p.endswith(".gz") else open)(p, "rb") as f:
                    return np.frombuffer(f.read(), np.uint8, offset=offset)
    sys.exit("make_fashion_h5.py: Fashion-MNIST %s not found (set SPECNET_DATA)" % base)


out = os.path.join(here, "fashion.h5")
tmp = out + ".tmp%d" % os.getpid()  # written aside, then moved: parallel runs see whole files
with h5py.File(tmp, "w") as f:
    for split, prefix, chunk, gz in (("train", "train", 1000, None), ("test", "t10k", 100, "gzip")):
        images = idx(prefix + "-images-idx3-ubyte", 16).reshape(-1, 28, 28)
        f.create_dataset(split + "/images", data=images, chunks=(chunk, 28, 28), compression=gz)
        f.create_dataset(split + "/labels", data=idx(prefix + "-labels-idx1-ubyte", 8))
os.replace(tmp, out)
