#!/usr/bin/python3
"""Train the demo K-Means model (k=10) on conf/data/digits.csv.

Writes conf/models/demo-kmeans.json in infergate's model.json format:
    {"algorithm": "kmeans", "feature_dim": 64, "centroids": [[...64...], ...]}

Reproducible: k-means++ seeding from numpy's PCG64 generator with a fixed
seed, then Lloyd iterations until no assignment changes. Needs only
/usr/bin/python3 and Debian's python3-numpy.

Usage (from the repository root):
    /usr/bin/python3 conf/models/train_demo_kmeans.py
It also prints the cluster and distance of the first 5 rows; these are the
expected values in tests/unit/test_model.c.
"""

import json
import os
import sys

import numpy as np

SEED = 20261125
K = 10
MAX_ITER = 1000

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "conf", "data", "digits.csv")
OUT = os.path.join(ROOT, "conf", "models", "demo-kmeans.json")


def sq_dists(x, c):
    """Squared Euclidean distances, shape (len(x), len(c))."""
    d = x[:, None, :] - c[None, :, :]
    return (d * d).sum(axis=2)


def kmeans_pp(x, k, rng):
    """k-means++ seeding (Arthur & Vassilvitskii 2007)."""
    n = x.shape[0]
    centers = [x[rng.integers(n)]]
    closest = sq_dists(x, np.array(centers))[:, 0]
    for _ in range(1, k):
        cum = np.cumsum(closest)
        r = rng.random() * cum[-1]
        i = int(np.searchsorted(cum, r, side="right"))
        i = min(i, n - 1)
        centers.append(x[i])
        closest = np.minimum(closest, sq_dists(x, x[i : i + 1])[:, 0])
    return np.array(centers, dtype=np.float64)


def lloyd(x, c):
    assign = None
    for it in range(MAX_ITER):
        new = np.argmin(sq_dists(x, c), axis=1)  # ties: lowest index
        if assign is not None and np.array_equal(new, assign):
            return c, assign, it
        assign = new
        for j in range(c.shape[0]):
            members = x[assign == j]
            if len(members):  # an empty cluster keeps its centroid
                c[j] = members.mean(axis=0)
    sys.exit("no convergence after %d iterations" % MAX_ITER)


def main():
    x = np.loadtxt(DATA, delimiter=",", dtype=np.float64)
    if x.shape != (1797, 64):
        sys.exit("unexpected data shape %r" % (x.shape,))
    rng = np.random.default_rng(SEED)
    c, assign, iters = lloyd(x, kmeans_pp(x, K, rng))

    rows = ",\n  ".join(json.dumps([float(v) for v in row]) for row in c)
    with open(OUT, "w") as f:
        f.write('{"algorithm": "kmeans", "feature_dim": %d, "centroids": [\n  %s\n]}\n'
                % (x.shape[1], rows))

    # Re-read what was written, so the printed values match the file exactly.
    with open(OUT) as f:
        c = np.array(json.load(f)["centroids"], dtype=np.float64)
    d = np.sqrt(sq_dists(x, c))
    a = np.argmin(d, axis=1)
    print("converged after %d Lloyd iterations; inertia %.6f"
          % (iters, float((d[np.arange(len(x)), a] ** 2).sum())))
    print("cluster sizes:", np.bincount(a, minlength=K).tolist())
    for i in range(5):
        print("row %d: closest_cluster %d distance_to_cluster %r" % (i, a[i], float(d[i, a[i]])))


if __name__ == "__main__":
    main()
