"""The RecordIO-protobuf vectors of tests/unit/test_recordio.c against an
independent encoder: recordio_vectors.py --check regenerates them with
Debian's python3-protobuf (proto/record.proto compiled by protoc) and
compares them byte for byte with the committed files, then reads every
committed file back with the Python runtime."""

import os
import subprocess

from iglib import ROOT, check_eq, finish

r = subprocess.run(["/usr/bin/python3", os.path.join(ROOT, "tests", "integration",
                                                      "recordio_vectors.py"), "--check"],
                   cwd=ROOT, capture_output=True, timeout=120)
check_eq(r.returncode, 0, "recordio_vectors.py --check: the committed vectors are the Python "
         "encoder's bytes; stdout %r stderr %r" % (r.stdout[-500:], r.stderr[-1000:]))
finish()
