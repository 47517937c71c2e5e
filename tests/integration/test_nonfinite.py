"""Outputs past the double range: finite inputs that overflow a model (huge
weights times huge features, a K-Means distance or a PCA projection past
1.8e308) never put a bare Infinity or NaN in a response. The request that
owns such a row fails alone with a ModelError naming the row (counted in
that request) and the overflow; requests sharing its batch get their
predictions; a response is always valid JSON (or CSV numbers)."""

import json
import os
import tempfile
import threading

from iglib import Gateway, check, check_eq, curl, finish

tmp = tempfile.mkdtemp(prefix="ig-nonfinite-")


def model_file(name, model):
    path = os.path.join(tmp, name + ".json")
    with open(path, "w") as f:
        json.dump(model, f)
    return path


REG = model_file("reg", {"algorithm": "linear-learner", "feature_dim": 2,
                         "predictor_type": "regressor", "weights": [1e308, -1e308], "bias": 0})
BIN = model_file("bin", {"algorithm": "linear-learner", "feature_dim": 2,
                         "predictor_type": "binary_classifier", "weights": [1e308, 1e308],
                         "bias": 0})
KM = model_file("km", {"algorithm": "kmeans", "feature_dim": 2,
                       "centroids": [[-1e308, 0], [1e308, 0]]})
PCA = model_file("pca", {"algorithm": "pca", "feature_dim": 2,
                         "components": [[1, 0], [1e308, 1e308]]})

WHY = {
    "reg": "the model's output is not finite (overflow in the linear learner score).",
    "bin": "the model's output is not finite (overflow in the linear learner score).",
    "km": "the model's output is not finite (overflow in the K-Means distance).",
    "pca": "the model's output is not finite (overflow in the PCA projection).",
}
ACCEPTS = ("application/json", "application/jsonlines", "text/csv")


def invoke(gw, ep, body, accept="application/json", h2=False):
    return curl(gw.invoke_url(ep), body, ["Content-Type: text/csv", "Accept: " + accept], h2)


def expect_ok(gw, ep, body, want, accept, h2, what):
    st, hd, out = invoke(gw, ep, body, accept, h2)
    check_eq((st, out), (200, want), what)
    check("Infinity" not in out and "NaN" not in out and "inf" not in out.lower(),
          what + ": no non-finite number")
    if accept == "application/json":
        try:
            json.loads(out)
            check(True, what + ": valid JSON")
        except ValueError as e:
            check(False, "%s: not JSON (%s): %r" % (what, e, out[:200]))


def expect_model_error(gw, ep, body, row, accept, h2, what):
    st, hd, out = invoke(gw, ep, body, accept, h2)
    msg = "Row %d: %s" % (row, WHY[ep])
    check_eq((st, hd.get("x-amzn-errortype"), hd.get("content-type")),
             (424, "ModelError", "application/json"), what + ": status and type")
    try:
        doc = json.loads(out)
    except ValueError:
        check(False, "%s: error body is not JSON: %r" % (what, out[:200]))
        return
    # SageMaker's ModelError shape (the gateway's): the model's message as
    # OriginalMessage, inside the service's sentence as Message.
    check_eq(doc.get("OriginalMessage"), msg, what + ": OriginalMessage")
    check(msg in doc.get("Message", ""), what + ": Message names the row: %r" % doc.get("Message"))


# A long max_delay_us: requests posted together share one batch.
with Gateway({n: {"model": p, "max_delay_us": "150000", "max_batch_rows": "1000"}
              for n, p in (("reg", REG), ("bin", BIN), ("km", KM), ("pca", PCA))}) as gw:
    for h2 in (False, True):
        for accept in ACCEPTS:
            p = "%s %s: " % ("h2" if h2 else "h1", accept)
            csv = accept == "text/csv"
            lines = accept != "application/json"

            def body_of(objs, key="predictions"):
                if csv:
                    return "".join(o[1] + "\n" for o in objs)
                if lines:
                    return "".join(o[0] + "\n" for o in objs)
                return '{"%s":[%s]}' % (key, ",".join(o[0] for o in objs))

            # regressor: w.x = 1e308*x0 - 1e308*x1
            expect_ok(gw, "reg", "1,1\n1,0\n0,1\n",
                      body_of([('{"score":0.0}', "0.0"), ('{"score":1e+308}', "1e+308"),
                               ('{"score":-1e+308}', "-1e+308")]), accept, h2, p + "reg finite")
            expect_model_error(gw, "reg", "1,1\n2,0\n", 2, accept, h2, p + "reg inf")
            expect_model_error(gw, "reg", "1,1\n0,0\n1e308,1e308\n", 3, accept, h2,
                               p + "reg inf - inf")
            # binary classifier: an infinite score has a sigmoid; inf - inf has not
            expect_ok(gw, "bin", "1,1\n-1,-1\n",
                      body_of([('{"score":1.0,"predicted_label":1}', "1.0,1"),
                               ('{"score":0.0,"predicted_label":0}', "0.0,0")]),
                      accept, h2, p + "binary infinite score")
            expect_model_error(gw, "bin", "1,-1\n1e308,-1e308\n", 2, accept, h2, p + "bin NaN")
            # K-Means: a distance whose square overflows is still a distance
            expect_ok(gw, "km", "0,1e308\n1e307,0\n",
                      body_of([('{"closest_cluster":0.0,"distance_to_cluster":'
                                '1.4142135623730951e+308}', "0.0,1.4142135623730951e+308"),
                               ('{"closest_cluster":1.0,"distance_to_cluster":9e+307}',
                                "1.0,9e+307")]), accept, h2, p + "kmeans huge distance")
            expect_model_error(gw, "km", "0,1.7e308\n", 1, accept, h2, p + "kmeans inf")
            # PCA: one overflowing projection fails the row
            expect_ok(gw, "pca", "1,0\n",
                      body_of([('{"projection":[1.0,1e+308]}', "1.0,1e+308")], "projections"),
                      accept, h2, p + "pca finite")
            expect_model_error(gw, "pca", "1,0\n1,1\n", 2, accept, h2, p + "pca inf")

    # Requests sharing a batch: only the one that owns the bad row fails,
    # and its row number counts its own rows, not the batch's.
    for h2 in (False, True):
        p = "h2 shared batch: " if h2 else "h1 shared batch: "
        results = {}

        def post(i, body):
            results[i] = invoke(gw, "reg", body, "application/json", h2)

        bodies = {0: "1,0\n0,1\n", 1: "1,1\n1,1\n3,0\n", 2: "0,0\n", 3: "1,0\n"}
        threads = [threading.Thread(target=post, args=(i, b)) for i, b in bodies.items()]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        check_eq((results[0][0], results[0][2]), (200, '{"predictions":[{"score":1e+308},'
                                                  '{"score":-1e+308}]}'), p + "request 0")
        check_eq(results[1][0], 424, p + "request 1 fails")
        try:
            orig = json.loads(results[1][2]).get("OriginalMessage")
        except ValueError:
            orig = results[1][2]
        check_eq(orig, "Row 3: " + WHY["reg"], p + "request 1 names its row 3")
        check_eq((results[2][0], results[2][2]), (200, '{"predictions":[{"score":0.0}]}'),
                 p + "request 2")
        check_eq((results[3][0], results[3][2]), (200, '{"predictions":[{"score":1e+308}]}'),
                 p + "request 3")

finish()
