"""README.md's examples, run as written with `sh` from the top of the tree.

Every fenced block tagged `sh` is run with /bin/sh against the gateway that
`make run` starts (the same command: bin/infergate --config
conf/infergate.conf), on a free port instead of 8080 (which may be busy
here); when a block tagged `text` follows it, the block's stdout must be
exactly that text (trailing newlines aside). Blocks with no tag (`make run`, synopses) are not run.
Also: the README links only to files inside the tree, and says nothing of
../shared."""

import os
import re
import subprocess
import tempfile
import time
import urllib.request

from iglib import BIN, ROOT, check, check_eq, finish, free_port

README = os.path.join(ROOT, "README.md")
with open(README) as f:
    text = f.read()

# ---- the README stays inside the tree --------------------------------------

check("../" not in text and "/work/" not in text and "shared/DESIGN" not in text,
      "README points outside the repository")
for target in re.findall(r"\]\(([^)#]+)\)", text):
    if "://" not in target:
        check(os.path.exists(os.path.join(ROOT, target)), "README link %s exists" % target)
check(os.path.exists(os.path.join(ROOT, "docs", "design.md")), "docs/design.md exists")

# ---- the examples ------------------------------------------------------------

blocks = []  # (tag, body, first line, index of its opening fence, of its closing fence)
lines = text.split("\n")
i = 0
while i < len(lines):
    m = re.match(r"^```(\w*)\s*$", lines[i])
    if m:
        j = i + 1
        while j < len(lines) and lines[j] != "```":
            j += 1
        blocks.append((m.group(1), "\n".join(lines[i + 1:j]) + "\n", i + 1, i, j))
        i = j + 1
    else:
        i += 1

examples = []  # (script, expected output or None, line)
for k, (tag, body, line, _, end) in enumerate(blocks):
    if tag != "sh":
        continue
    expected = None
    # its output: a `text` block right after it, with only blank lines between
    if (k + 1 < len(blocks) and blocks[k + 1][0] == "text" and
            all(not l.strip() for l in lines[end + 1:blocks[k + 1][3]])):
        expected = blocks[k + 1][1]
    examples.append((body, expected, line))
check(len(examples) >= 8, "README has its examples (%d sh blocks)" % len(examples))
check(all(e is not None for _, e, _ in examples[:5]),
      "the first examples show their output")

# The README's port is the shipped configuration's.
with open(os.path.join(ROOT, "conf", "infergate.conf")) as f:
    check("\nlisten = 127.0.0.1:8080\n" in f.read(), "conf/infergate.conf listens on 8080")
check("127.0.0.1:8080" in text, "README uses port 8080")

port = free_port()
admin_port = free_port()
tmp = tempfile.mkdtemp(prefix="ig-readme-")
out_json = os.path.join(tmp, "out.json")
log = open(os.path.join(tmp, "stderr.log"), "w+")
# The admin API on a free port too, its embedded redis-server in a data_dir
# of the test's own (the README's examples use 8081 and ./var), given as a
# path relative to the working directory as the shipped ./var is.
proc = subprocess.Popen([BIN, "--config", "conf/infergate.conf", "--listen",
                         "127.0.0.1:%d" % port, "--admin-listen", "127.0.0.1:%d" % admin_port,
                         "--data-dir", os.path.relpath(os.path.join(tmp, "var"), ROOT)],
                        cwd=ROOT, stdout=log, stderr=log)
deadline = time.time() + 15
up = False
while time.time() < deadline and not up and proc.poll() is None:
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/ping" % port, timeout=1) as r:
            up = r.status == 200
    except OSError:
        time.sleep(0.05)
check(up, "the gateway of `make run` answers /ping")

# A fresh machine's PATH: Debian's tools first (not a pyenv or npm shim).
env = dict(os.environ, PATH="/usr/local/bin:/usr/bin:/bin")
for k in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_ACCESS_KEY_ID",
          "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_REGION"):
    env.pop(k, None)
env["HOME"] = tmp  # no ~/.aws of this machine
for script, expected, line in examples:
    run_script = (script.replace("127.0.0.1:8080", "127.0.0.1:%d" % port)
                  .replace("127.0.0.1:8081", "127.0.0.1:%d" % admin_port)
                  .replace("/tmp/out.json", out_json)
                  .replace("bin/infergate ", BIN + " "))
    r = subprocess.run(["/bin/sh", "-c", run_script], cwd=ROOT, env=env, capture_output=True,
                       timeout=120)
    what = "README line %d: %s" % (line, script.strip().split("\n")[0][:70])
    check_eq(r.returncode, 0, what + " exits 0; stderr: " + r.stderr.decode()[-500:])
    if expected is not None:
        # a terminal shows the same thing whether the last line ends or not
        check_eq(r.stdout.decode().rstrip("\n"), expected.rstrip("\n"),
                 what + " prints what the README shows")
    else:
        check(r.stdout.strip() != b"", what + " prints something")

proc.terminate()
check_eq(proc.wait(timeout=30), 0, "the gateway drains and exits 0")
finish()
