"""Configuration from the real binary: --check-config, precedence of file,
environment and flags, and exit status 2 with file:line:key for bad input
(a plain line under --check-config, a JSON log line at start-up)."""

import json
import os
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request

from iglib import BIN, DEMO_MODEL, ROOT, Gateway, check, check_eq, finish, free_port, run

tmp = tempfile.mkdtemp(prefix="ig-config-")


def conf(text):
    p = os.path.join(tmp, "c%d.conf" % len(os.listdir(tmp)))
    with open(p, "w") as f:
        f.write(text)
    return p


r = run([BIN, "--config", os.path.join(ROOT, "conf/infergate.conf"), "--check-config"])
check_eq(r.returncode, 0, "shipped config passes --check-config: " + r.stderr.decode())

bad = conf("listen = 127.0.0.1:8080\nbogus_key = 1\n")
r = run([BIN, "--config", bad, "--check-config"])
check_eq(r.returncode, 2, "unknown key exits 2")
check_eq(r.stderr.decode(), "infergate: %s:2: unknown key 'bogus_key' in the global section\n" % bad,
         "unknown key message names file, line and key")

bad = conf("[endpoint demo]\nmodel = file://%s\nmax_inflight = lots\n" % DEMO_MODEL)
r = run([BIN, "--config", bad, "--check-config"])
check_eq(r.returncode, 2, "bad value exits 2")
check("%s:3: max_inflight" % bad in r.stderr.decode(), "bad value names file:line:key: " + r.stderr.decode())

r = run([BIN, "--config", bad.replace(".conf", ".missing"), "--check-config"])
check_eq(r.returncode, 2, "missing file exits 2")

# the format options (docs/formats.md): what they say together
for text, want in (
        ("[endpoint a]\nmodel = file://%s\nupstream_content_type = text/csv\n" % DEMO_MODEL,
         "%s:1: endpoint a: upstream_content_type and upstream_accept are for remote models "
         "(http://, https://, sagemaker://); a file:// model reads and writes every format\n"),
        ("[endpoint a]\nmodel = http://127.0.0.1:9\nupstream_accept = text/libsvm\n",
         "%s:1: endpoint a: upstream_accept: text/libsvm is a request format only\n"),
        ("[endpoint a]\nmodel = http://127.0.0.1:9\nupstream_content_type = image/png\n",
         "%s:3: upstream_content_type: 'image/png' is not a format the gateway converts "
         "(text/csv, application/json, application/jsonlines, application/x-recordio-protobuf, "
         "text/libsvm)\n"),
        ("[endpoint a]\nmodel = http://127.0.0.1:9\nlibsvm_index_base = 2\n",
         "%s:3: libsvm_index_base: 2 is out of range 0..1\n")):
    bad = conf(text)
    r = run([BIN, "--config", bad, "--check-config"])
    check_eq((r.returncode, r.stderr.decode()), (2, "infergate: " + want % bad),
             "format options refused: " + text.splitlines()[-1])
good = conf("[endpoint a]\nmodel = http://127.0.0.1:9\nupstream_content_type = "
            "application/x-recordio-protobuf\nupstream_accept = application/json\n"
            "feature_dim = 50\nlibsvm_index_base = 1\n")
r = run([BIN, "--config", good, "--check-config"])
check_eq(r.returncode, 0, "format options accepted: " + r.stderr.decode())



def json_error(r):
    """The one JSON error line a refused start-up writes, or None."""
    lines = r.stderr.decode().splitlines()
    try:
        o = json.loads(lines[0]) if len(lines) == 1 else None
    except ValueError:
        return None
    return o["msg"] if o and o.get("level") == "error" and "ts" in o else None


r = run([BIN, "--no-such-flag", "1"])
check_eq((r.returncode, json_error(r)),
         (2, "command line: --no-such-flag: unknown option"),
         "unknown flag at start-up: exit 2, one JSON log line")
r = run([BIN, "--no-such-flag", "1", "--check-config"])
check_eq((r.returncode, r.stderr.decode()),
         (2, "infergate: command line: --no-such-flag: unknown option\n"),
         "unknown flag under --check-config: exit 2, a plain line")

env = dict(os.environ, INFERGATE_MAX_BODY_BYTES="0")
r = subprocess.run([BIN, "--config", os.path.join(ROOT, "conf/infergate.conf"),
                                  "--check-config"], env=env, capture_output=True)
check_eq(r.returncode, 2, "out-of-range environment value exits 2")
check("INFERGATE_MAX_BODY_BYTES" in r.stderr.decode(), "environment error names the variable")

# Flags are validated like file values.
env = dict(os.environ, INFERGATE_WORKERS="3")
r = subprocess.run([BIN, "--config", os.path.join(ROOT, "conf/infergate.conf"),
                                  "--workers", "999", "--check-config"], env=env,
                                 capture_output=True)
check_eq(r.returncode, 2, "flag value is validated (workers 999 out of range)")
check("--workers" in r.stderr.decode() or "workers" in r.stderr.decode(),
      "flag error names the option: " + r.stderr.decode())

# Precedence, observable: the port the gateway listens on comes from the
# file, then the environment, then the flag.
ports = [free_port(), free_port(), free_port()]
p = conf("listen = 127.0.0.1:%d\n" % ports[0])


def listening_on(extra_env, args):
    env = dict(os.environ, **extra_env)
    proc = subprocess.Popen([BIN, "--config", p] + args, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    found = None
    deadline = time.time() + 10
    while found is None and time.time() < deadline:
        for port in ports:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/ping" % port, timeout=1):
                    found = port
            except OSError:
                pass
        time.sleep(0.05)
    proc.terminate()
    proc.wait()
    return found


check_eq(listening_on({}, []), ports[0], "listen from the file")
check_eq(listening_on({"INFERGATE_LISTEN": "127.0.0.1:%d" % ports[1]}, []), ports[1],
         "environment overrides the file")
check_eq(listening_on({"INFERGATE_LISTEN": "127.0.0.1:%d" % ports[1]},
                      ["--listen", "127.0.0.1:%d" % ports[2]]), ports[2],
         "flag overrides the environment")

r = run([BIN, "--help"])
check_eq(r.returncode, 0, "--help exits 0")
check(b"max_batch_rows" in r.stdout and b"listen" in r.stdout, "--help lists options from the table")

# ---- --check-config does what start-up does, short of binding ------------

SHIPPED = os.path.join(ROOT, "conf/infergate.conf")
r = run([BIN, "--config", SHIPPED, "--check-config"])
check_eq((r.returncode, r.stdout.decode()),
         (0, "infergate: configuration %s OK (1 endpoints, every model loaded)\n" % SHIPPED),
         "shipped config checks clean, its model loaded")
# Relative file:// paths are next to the config file, whatever the cwd.
r = subprocess.run([BIN, "--config", SHIPPED, "--check-config"], cwd="/", capture_output=True)
check_eq(r.returncode, 0, "shipped config checks clean from another cwd: " + r.stderr.decode())
r = subprocess.run([os.path.join(ROOT, BIN), "--config", "infergate.conf", "--check-config"],
                   cwd=os.path.join(ROOT, "conf"), capture_output=True)
check_eq(r.returncode, 0, "config named without a directory: " + r.stderr.decode())


def check_fails(text, want, what, args=(), env=None, exact=True):
    """--check-config on <text> exits 2 with 'infergate: <path><want>'."""
    p = conf(text)
    r = subprocess.run([BIN, "--config", p, "--check-config"] + list(args), capture_output=True,
                       env=dict(os.environ, **(env or {})))
    got = r.stderr.decode()
    full = "infergate: %s%s\n" % (p, want)
    if exact:
        check_eq((r.returncode, got), (2, full), what)
    else:
        check(r.returncode == 2 and got.startswith(full.rstrip("\n")),
              "%s: exit %d, %r does not start with %r" % (what, r.returncode, got, full))
    return p


missing = os.path.join(tmp, "nosuch.json")
check_fails("listen = 127.0.0.1:0\n\n[endpoint demo]\nmodel = file://nosuch.json\n",
            ":4: model: cannot open %s: No such file or directory" % missing,
            "missing model file: file:line:key, path resolved next to the config")
with open(os.path.join(tmp, "bad-model.json"), "w") as f:
    f.write('{"algorithm": "kmeans", "feature_dim": 2}')
check_fails("[endpoint demo]\nvariant = V1\nmodel = file://bad-model.json\n",
            ":3: model: %s: " % os.path.join(tmp, "bad-model.json"),
            "invalid model.json is loaded and refused with file:line:key", exact=False)
with open(os.path.join(tmp, "not-json.json"), "w") as f:
    f.write("not json at all")
check_fails("[endpoint a]\nmodel = file://%s\n[endpoint b]\nmodel = file://not-json.json\n"
            % DEMO_MODEL, ":4: model: %s: " % os.path.join(tmp, "not-json.json"),
            "every model is loaded, not only the first", exact=False)
# Remote models: --check-config accepts their URLs (nothing is sent)...
for url in ("http://127.0.0.1:9", "https://runtime.example.com/x"):
    p = conf("[endpoint demo]\nmodel = %s\n" % url)
    r = subprocess.run([BIN, "--config", p, "--check-config"], capture_output=True)
    check_eq((r.returncode, r.stderr.decode()), (0, ""), "--check-config accepts model = %s" % url)
# ... a sagemaker:// model needs credentials, which --check-config looks for
noaws = {k: "" for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE",
                         "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
                         "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI")}
noaws["HOME"] = tmp
noaws["AWS_SHARED_CREDENTIALS_FILE"] = os.path.join(tmp, "none")
noaws["AWS_CONFIG_FILE"] = os.path.join(tmp, "none")
check_fails("[endpoint demo]\nmodel = sagemaker://us-east-1/my-endpoint\n",
            ":2: model: sagemaker://us-east-1/my-endpoint: no AWS credentials",
            "a sagemaker:// model without credentials is refused at check time", exact=False,
            env=noaws)
# ... and a container that is not there: the gateway starts, /readyz says why
with Gateway({"demo": {"model": "http://127.0.0.1:9"}}) as gw:
    time.sleep(0.5)
    try:
        urllib.request.urlopen(gw.url + "/readyz", timeout=5)
        ready = (200, "")
    except urllib.error.HTTPError as e:
        ready = (e.code, e.read().decode())
    check_eq(ready, (503, '{"status":"not ready","reason":"container http://127.0.0.1:9: GET /ping '
                          'failed: Couldn\'t connect to server"}'),
             "a container that does not answer /ping: /readyz 503 with the reason")

# At start-up a model that does not load is a configuration error too: exit 2,
# a JSON log line naming file:line: model.
p = conf("listen = 127.0.0.1:0\nlog_level = warn\n[endpoint demo]\nmodel = file://nosuch.json\n")
r = run([BIN, "--config", p])
lines = r.stderr.decode().splitlines()
check_eq(r.returncode, 2, "start-up with a missing model exits 2: %r" % lines)
check(len(lines) == 1 and json.loads(lines[0])["level"] == "error" and
      json.loads(lines[0])["msg"] == "%s:4: model: cannot open %s: No such file or directory"
      % (p, missing), "start-up names file:line: model in one JSON line: %r" % lines)
# A port in use is not a configuration error: exit 1.
busy = socket.socket()
busy.bind(("127.0.0.1", 0))
busy.listen(1)
p = conf("listen = 127.0.0.1:%d\nlog_level = warn\n[endpoint demo]\nmodel = file://%s\n"
         % (busy.getsockname()[1], DEMO_MODEL))
r = run([BIN, "--config", p])
check(r.returncode == 1 and b"cannot start: cannot listen on 127.0.0.1:" in r.stderr,
      "a port in use exits 1: %d %r" % (r.returncode, r.stderr[-300:]))
busy.close()

check_fails("; x\nlisten = nosuchhost.invalid:8080\n",
            ":2: listen: 'nosuchhost.invalid:8080': cannot resolve nosuchhost.invalid: Name or "
            "service not known", "listen host that does not resolve")
check_fails("admin_listen = nosuchhost.invalid:8081\n",
            ":1: admin_listen: 'nosuchhost.invalid:8081': cannot resolve nosuchhost.invalid: Name or "
            "service not known", "admin_listen is resolved too")
p = conf("listen = 127.0.0.1:0\n")
r = subprocess.run([BIN, "--config", p, "--check-config"], capture_output=True,
                   env=dict(os.environ, INFERGATE_LISTEN="nosuchhost.invalid:1"))
check_eq((r.returncode, r.stderr.decode()),
         (2, "infergate: environment: INFERGATE_LISTEN: 'nosuchhost.invalid:1': cannot resolve "
             "nosuchhost.invalid: Name or service not known\n"),
         "a listen from the environment is named by its variable")
r = run([BIN, "--config", p, "--check-config", "--listen", "nosuchhost.invalid:1"])
check_eq((r.returncode, r.stderr.decode()),
         (2, "infergate: command line: --listen: 'nosuchhost.invalid:1': cannot resolve "
             "nosuchhost.invalid: Name or service not known\n"),
         "a listen from the command line is named by its flag")
r = run([BIN, "--config", p, "--listen", "nosuchhost.invalid:1"])
check_eq((r.returncode, json_error(r)),
         (2, "command line: --listen: 'nosuchhost.invalid:1': cannot resolve "
             "nosuchhost.invalid: Name or service not known"),
         "start-up refuses the unresolvable listen with exit 2 too, as a JSON line")
p2 = conf("listen = 127.0.0.1:0\nbogus = 1\n")
r = run([BIN, "--config", p2])
check_eq((r.returncode, json_error(r)),
         (2, "%s:2: unknown key 'bogus' in the global section" % p2),
         "a bad key at start-up: exit 2, the file:line:key message as a JSON line")
check_fails("listen = localhost:0\ntls_cert = /nonexistent/cert.pem\ntls_key = /nonexistent/k.pem\n",
            ":2: tls_cert: cannot use '/nonexistent/cert.pem': error:",
            "TLS certificate is loaded by --check-config", exact=False)
p = conf("listen = localhost:0\n[endpoint demo]\nmodel = file://%s\n" % DEMO_MODEL)
r = run([BIN, "--config", p, "--check-config"])
check_eq((r.returncode, r.stdout.decode()),
         (0, "infergate: configuration %s OK (1 endpoints, every model loaded)\n" % p),
         "listen = localhost:0 checks clean")

# A host name works at start-up, and a relative model path serves from any cwd.
port = free_port()
mdir = tempfile.mkdtemp(prefix="ig-config-rel-")
with open(DEMO_MODEL) as src, open(os.path.join(mdir, "m.json"), "w") as dst:
    dst.write(src.read())
p = os.path.join(mdir, "gw.conf")
with open(p, "w") as f:
    f.write("listen = localhost:%d\nlog_level = warn\n[endpoint demo]\nmodel = file://m.json\n"
            % port)
proc = subprocess.Popen([os.path.join(ROOT, BIN), "--config", p], cwd="/",
                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
status = None
deadline = time.time() + 10
while status is None and time.time() < deadline and proc.poll() is None:
    try:
        req = urllib.request.Request("http://127.0.0.1:%d/endpoints/demo/invocations" % port,
                                     data=b",".join([b"0"] * 64) + b"\n",
                                     headers={"Content-Type": "text/csv"})
        with urllib.request.urlopen(req, timeout=1) as resp:
            status = resp.status
    except OSError:
        time.sleep(0.05)
proc.terminate()
_, err = proc.communicate()
check_eq(status, 200, "listen = localhost:PORT serves, relative model found from cwd /: " +
         err.decode()[-500:])

finish()
