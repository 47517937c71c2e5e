#!/usr/bin/python3
"""Write load/models/bench-kmeans-10.json: an embedded K-Means model with
k=10 centroids of dimension D=10 for load/bench-unary.sh and
load/callgrind-unary.sh.

The centroids are fixed pseudo-random numbers (seed 20261125) rounded to
three decimals, so the file is small, readable and byte-for-byte
reproducible: running this script again yields the same file.

Usage: /usr/bin/python3 load/models/gen_bench_model.py [OUT]
"""

import json
import os
import random
import sys

K = 10
D = 10
SEED = 20261125


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(here, "bench-kmeans-10.json")
    rng = random.Random(SEED)
    centroids = [[round(rng.uniform(-10.0, 10.0), 3) for _ in range(D)] for _ in range(K)]
    rows = ",\n".join("  " + json.dumps(c) for c in centroids)
    text = '{"algorithm": "kmeans", "feature_dim": %d, "centroids": [\n%s\n]}\n' % (D, rows)
    json.loads(text)  # must be valid JSON
    with open(out, "w") as f:
        f.write(text)


if __name__ == "__main__":
    main()
