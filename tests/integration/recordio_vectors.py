#!/usr/bin/python3
"""recordio_vectors.py - the RecordIO-protobuf test vectors of
tests/unit/test_recordio.c, written by an independent encoder: Debian's
python3-protobuf on proto/record.proto compiled by Debian's protoc
(--python_out), framed as the SageMaker Python SDK (_write_recordio) and
dmlc-core's RecordIOWriter (split records) frame them.

    /usr/bin/python3 tests/integration/recordio_vectors.py --write
        write tests/data/recordio/*.rec and vectors.json
    /usr/bin/python3 tests/integration/recordio_vectors.py --check
        regenerate into a temporary folder and compare byte for byte with
        the committed files; read every committed .rec back with the Python
        runtime and compare its rows with vectors.json (exit 1 on a
        difference)

vectors.json lists each file's records, in order:
  features: {"tensor": "f32"|"f64"|"i32", "values": [...], "keys": [...]
             (sparse only), "shape": [...] (when written), "dense": [dim
             doubles the record decodes to], "encode": true when
             ig_recordio_encode_row writes the same record from "values"
             (the doubles before float32 narrowing) and "keys"}
  labels:   {"labels": [{"name": ..., "values": [doubles]}...]}: what
             ig_recordio_encode_labels gets; the file holds the record with
             label[name] = Float32Tensor, map entries in deterministic
             (sorted) order.
Needs: protobuf-compiler, python3-protobuf (make deps installs both).
"""
import filecmp
import json
import os
import random
import struct
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATA = os.path.join(ROOT, "tests", "data", "recordio")
MAGIC = 0xCED7230A
MAGIC_BYTES = struct.pack("<I", MAGIC)


def load_pb2(tmp):
    """proto/record.proto compiled by protoc --python_out, imported."""
    subprocess.run(["protoc", "--proto_path=" + ROOT, "--python_out=" + tmp,
                    os.path.join(ROOT, "proto", "record.proto")], check=True)
    sys.path.insert(0, os.path.join(tmp, "proto"))
    import record_pb2  # noqa: E402
    return record_pb2


def f32(x):
    return struct.unpack("<f", struct.pack("<f", x))[0]


def frame_whole(payload):
    """The SageMaker SDK's _write_recordio: magic, length, data, zero padding."""
    pad = (4 - len(payload) % 4) % 4
    return MAGIC_BYTES + struct.pack("<I", len(payload)) + payload + b"\0" * pad


def frame_dmlc(payload):
    """dmlc-core RecordIOWriter::WriteRecord: split where the data holds the
    magic at a 4-aligned offset (cflag 1, 2..., 3), else one frame (0)."""
    out = b""
    n = len(payload)
    dptr = 0
    for i in range(0, n - n % 4, 4):
        if payload[i:i + 4] == MAGIC_BYTES:
            flag = 1 if dptr == 0 else 2
            out += MAGIC_BYTES + struct.pack("<I", flag << 29 | (i - dptr)) + payload[dptr:i]
            dptr = i + 4
    flag = 3 if dptr != 0 else 0
    out += MAGIC_BYTES + struct.pack("<I", flag << 29 | (n - dptr)) + payload[dptr:]
    out += b"\0" * ((4 - n % 4) % 4)
    return out


def feature_record(pb2, rec):
    r = pb2.Record()
    v = r.features["values"]
    t = {"f32": v.float32_tensor, "f64": v.float64_tensor, "i32": v.int32_tensor}[rec["tensor"]]
    t.values.extend(rec["values"])
    if "keys" in rec:
        t.keys.extend(rec["keys"])
    if "shape" in rec:
        t.shape.extend(rec["shape"])
    return r.SerializeToString(deterministic=True)


def label_record(pb2, rec):
    r = pb2.Record()
    for lab in rec["labels"]:
        r.label[lab["name"]].float32_tensor.values.extend(lab["values"])
    return r.SerializeToString(deterministic=True)


def dense(values, dim, tensor, keys=None):
    conv = f32 if tensor == "f32" else float
    row = [0.0] * dim
    for i, x in enumerate(values):
        row[keys[i] if keys is not None else i] = float(conv(x))
    return row


def f_dense(values, tensor="f32", shape=None, encode=True):
    rec = {"tensor": tensor, "values": values, "dense": dense(values, len(values), tensor),
           "encode": encode and tensor == "f32" and shape is None}
    if shape is not None:
        rec["shape"] = shape
    return rec


def f_sparse(keys, values, dim, tensor="f32"):
    return {"tensor": tensor, "values": values, "keys": keys, "shape": [dim],
            "dense": dense(values, dim, tensor, keys), "encode": tensor == "f32"}


def vectors():
    rnd = random.Random(18)
    out = []
    # the hand-encoded vector of sagemaker-protocols.md 5.3
    out.append(("spec.rec", "features", 2, [f_dense([1.5, 2.0])]))
    out.append(("dense_f32.rec", "features", 4, [
        f_dense([1.0, 2.0, 3.0, 4.0]),
        f_dense([-0.5, 0.0, 1e-3, 123456.789]),
        f_dense([0.1, 0.2, 0.3, 1e30]),
        f_dense([3.0, 1.0, 4.0, 1.5], shape=[4]),
        f_dense([1.0, 2.0, 3.0, 4.0], shape=[2, 2]),
    ]))
    out.append(("dense_f64.rec", "features", 3, [
        f_dense([0.1, -2.5, 1e300], "f64"),
        f_dense([1.0 / 3.0, 2.0, 0.0], "f64"),
    ]))
    out.append(("dense_i32.rec", "features", 3, [
        f_dense([1, -2, 2147483647], "i32"),
        f_dense([-2147483648, 0, 7], "i32"),
    ]))
    out.append(("sparse.rec", "features", 10, [
        f_sparse([1, 3], [1.0, 2.0], 10),
        f_sparse([0, 9], [-1.25, 0.1], 10),
        f_sparse([], [], 10),  # an empty row, as the SDK writes one
        f_sparse([2, 5, 7], [0.5, 0.0, 8.0], 10, "f64"),
        f_sparse([4], [-3], 10, "i32"),
        f_sparse(list(range(10)), [float(i) for i in range(10)], 10),
    ]))
    rows = []
    for _ in range(40):
        rows.append(f_dense([rnd.uniform(-1000, 1000) for _ in range(7)]))
    out.append(("random_dense.rec", "features", 7, rows))
    rows = []
    for _ in range(40):
        keys = sorted(rnd.sample(range(100), rnd.randint(0, 20)))
        rows.append(f_sparse(keys, [rnd.gauss(0, 10) for _ in keys], 100))
    out.append(("random_sparse.rec", "features", 100, rows))
    # split by dmlc's writer: float32 values whose bytes are the magic, so
    # the data holds it at 4-aligned offsets (a first, middle and last part,
    # an empty middle part for two in a row)
    m = struct.unpack("<f", MAGIC_BYTES)[0]
    out.append(("split.rec", "features", 6, [
        f_dense([1.0, m, 2.0, m, m, 3.0]),
        f_dense([4.0, 5.0, 6.0, 7.0, 8.0, 9.0]),
        f_dense([m, 0.0, 0.0, 0.0, 0.0, m]),
    ]))
    out.append(("labels_kmeans.rec", "labels", 0, [
        {"labels": [{"name": "closest_cluster", "values": [1.0]},
                    {"name": "distance_to_cluster", "values": [3.0]}]},
        {"labels": [{"name": "distance_to_cluster", "values": [0.123456789]},
                    {"name": "closest_cluster", "values": [0.0]}]},
    ]))
    out.append(("labels_pca.rec", "labels", 0, [
        {"labels": [{"name": "projection", "values": [1.0, 2.0, 3.0, 4.0, 5.0]}]},
        {"labels": [{"name": "projection", "values": [-0.1, 0.2]}]},
    ]))
    out.append(("labels_ll_binary.rec", "labels", 0, [
        {"labels": [{"name": "score", "values": [0.4]},
                    {"name": "predicted_label", "values": [0.0]}]},
        {"labels": [{"name": "predicted_label", "values": [1.0]},
                    {"name": "score", "values": [0.97]}]},
    ]))
    out.append(("labels_ll_multiclass.rec", "labels", 0, [
        {"labels": [{"name": "score", "values": [0.1, 0.2, 0.4, 0.3]},
                    {"name": "predicted_label", "values": [2.0]}]},
    ]))
    out.append(("labels_ll_regressor.rec", "labels", 0, [
        {"labels": [{"name": "score", "values": [0.4]}]},
        {"labels": [{"name": "score", "values": [-12345.678]}]},
    ]))
    return out


def write(pb2, folder):
    manifest = []
    for name, kind, dim, recs in vectors():
        body = b""
        for rec in recs:
            if kind == "features":
                payload = feature_record(pb2, rec)
                body += frame_dmlc(payload) if name == "split.rec" else frame_whole(payload)
            else:
                body += frame_whole(label_record(pb2, rec))
        with open(os.path.join(folder, name), "wb") as f:
            f.write(body)
        manifest.append({"file": name, "kind": kind, "dim": dim, "records": recs})
    # one record a line
    lines = []
    for i, v in enumerate(manifest):
        head = {k: v[k] for k in ("file", "kind", "dim")}
        recs = ",\n  ".join(json.dumps(r, separators=(",", ":")) for r in v["records"])
        lines.append(" " + json.dumps(head)[:-1] + ', "records": [\n  ' + recs + "]}"
                     + ("," if i + 1 < len(manifest) else ""))
    with open(os.path.join(folder, "vectors.json"), "w") as f:
        f.write('{"vectors": [\n' + "\n".join(lines) + "\n]}\n")


def read_frames(body):
    """The records of a RecordIO body (dmlc's reader: parts joined by the magic)."""
    recs, cur, pos = [], b"", 0
    while pos < len(body):
        magic, word = struct.unpack_from("<II", body, pos)
        assert magic == MAGIC, "bad magic at %d" % pos
        flag, n = word >> 29, word & ((1 << 29) - 1)
        pos += 8
        cur += body[pos:pos + n]
        pos += n + (4 - n % 4) % 4
        if flag in (0, 3):
            recs.append(cur)
            cur = b""
        else:
            cur += MAGIC_BYTES
    return recs


def check_rows(pb2, folder):
    """Every committed file read back with the Python runtime."""
    bad = 0
    with open(os.path.join(folder, "vectors.json")) as f:
        manifest = json.load(f)["vectors"]
    for v in manifest:
        with open(os.path.join(folder, v["file"]), "rb") as f:
            payloads = read_frames(f.read())
        if len(payloads) != len(v["records"]):
            print("%s: %d records, expected %d" % (v["file"], len(payloads), len(v["records"])))
            bad += 1
            continue
        for i, (p, rec) in enumerate(zip(payloads, v["records"])):
            r = pb2.Record()
            r.ParseFromString(p)
            if v["kind"] == "features":
                val = r.features["values"]
                t = getattr(val, val.WhichOneof("value"))
                keys = list(t.keys) or None
                got = dense(list(t.values), v["dim"], rec["tensor"], keys)
                ok = got == rec["dense"]
            else:
                got = {k: list(r.label[k].float32_tensor.values) for k in r.label}
                want = {lab["name"]: [f32(x) for x in lab["values"]] for lab in rec["labels"]}
                ok = got == want
            if not ok:
                print("%s record %d: read %r, expected %r" % (v["file"], i + 1, got, rec))
                bad += 1
    return bad


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in ("--write", "--check"):
        print(__doc__)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        pb2 = load_pb2(tmp)
        if sys.argv[1] == "--write":
            os.makedirs(DATA, exist_ok=True)
            write(pb2, DATA)
            print("recordio_vectors: wrote", DATA)
            return 0
        gen = os.path.join(tmp, "gen")
        os.mkdir(gen)
        write(pb2, gen)
        bad = 0
        names = sorted(os.listdir(gen))
        for name in names:
            if not filecmp.cmp(os.path.join(gen, name), os.path.join(DATA, name), shallow=False):
                print("recordio_vectors: %s differs from the regenerated file" % name)
                bad += 1
        extra = sorted(set(os.listdir(DATA)) - set(names))
        if extra:
            print("recordio_vectors: files not generated:", " ".join(extra))
            bad += 1
        bad += check_rows(pb2, DATA)
        print("recordio_vectors: %d files, %s" % (len(names), "OK" if not bad else
                                                   "%d problems" % bad))
        return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
