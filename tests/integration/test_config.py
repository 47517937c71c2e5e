"""Configuration from the real binary: --check-config, precedence of file,
environment and flags, and exit status 2 with file:line:key for bad input."""

import os
import subprocess
import tempfile
import time
import urllib.request

from iglib import BIN, ROOT, check, check_eq, finish, free_port, run

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

bad = conf("[endpoint demo]\nmodel = file://conf/models/demo-kmeans.json\nmax_inflight = lots\n")
r = run([BIN, "--config", bad, "--check-config"])
check_eq(r.returncode, 2, "bad value exits 2")
check("%s:3: max_inflight" % bad in r.stderr.decode(), "bad value names file:line:key: " + r.stderr.decode())

r = run([BIN, "--config", bad.replace(".conf", ".missing"), "--check-config"])
check_eq(r.returncode, 2, "missing file exits 2")

r = run([BIN, "--no-such-flag", "1"])
check_eq(r.returncode, 2, "unknown flag exits 2")

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

finish()
