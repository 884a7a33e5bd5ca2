"""Writes regression_train.csv and regression_test.csv beside this file: three
features in [-1, 1] and a real-valued target y = sin(2 x1) + 0.5 x2^2 - x3 plus
Gaussian noise (std 0.05). Deterministic (seed 7). Standard library only:

    python3 specs/data/make_regression.py
"""
import math
import os
import random

here = os.path.dirname(os.path.abspath(__file__))
rng = random.Random(7)
for name, n in (("regression_train.csv", 1600), ("regression_test.csv", 400)):
    with open(os.path.join(here, name), "w") as f:
        f.write("x1,x2,x3,y\n")
        for _ in range(n):
            x = [rng.uniform(-1, 1) for _ in range(3)]
            y = math.sin(2 * x[0]) + 0.5 * x[1] ** 2 - x[2] + rng.gauss(0, 0.05)
            f.write(",".join("%.5f" % v for v in x + [y]) + "\n")
