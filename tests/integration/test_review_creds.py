"""An adversarial review of the sagemaker upstream's credentials:
C1. the wall clock jumps past the credentials' expiry (a VM suspended and
    resumed, the clock stepped forward) while the refresh timer, on the
    monotonic clock, is still far away: the refresh must start at once,
    not when that timer fires (before: every call failed "their refresh
    is still running" with no refresh running, for up to the
    credentials' lifetime less 5 minutes); and the calls that find the
    credentials expired wait for that refresh (before: they failed 500
    while it ran).
C2. then a refresh that hangs past the fetch's 5 s timeout: the calls
    waiting for it fail when it times out (not at once, not for ever), told
    that the refresh failed, and a refresh that answers again serves the
    calls within about a second, without a storm of fetches.

The gateway runs under a small LD_PRELOAD shim (built here with cc) that
adds the seconds written in a file to CLOCK_REALTIME, time() and
gettimeofday(), never to the monotonic clock; the fake STS reads the same
file, so the two agree on the time as they would after a real suspend.

Run: INFERGATE_BIN=bin/infergate-san /usr/bin/python3 tests/integration/test_review_creds.py [filter]
"""

import datetime
import http.client
import http.server
import os
import re
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from iglib import Gateway, check, check_eq, finish  # noqa: E402

FILTER = sys.argv[1] if len(sys.argv) > 1 else ""
tmp = tempfile.mkdtemp(prefix="ig-rc-")

SHIM = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>
static volatile int64_t *shift;
static int64_t get_shift(void)
{
    if (shift == NULL) {
        const char *p = getenv("IG_CLOCK_SHIFT_FILE");
        int fd = p ? open(p, O_RDONLY) : -1;
        void *m = fd >= 0 ? mmap(NULL, 8, PROT_READ, MAP_SHARED, fd, 0) : MAP_FAILED;
        if (fd >= 0)
            close(fd);
        if (m == MAP_FAILED)
            return 0;
        shift = m;
    }
    return *shift;
}
int clock_gettime(clockid_t id, struct timespec *ts)
{
    static int (*real)(clockid_t, struct timespec *);
    int rc;
    if (!real)
        real = (int (*)(clockid_t, struct timespec *))dlsym(RTLD_NEXT, "clock_gettime");
    rc = real(id, ts);
    if (rc == 0 && (id == CLOCK_REALTIME || id == CLOCK_REALTIME_COARSE))
        ts->tv_sec += get_shift();
    return rc;
}
int gettimeofday(struct timeval *tv, void *tz)
{
    struct timespec ts;
    (void)tz;
    clock_gettime(CLOCK_REALTIME, &ts);
    tv->tv_sec = ts.tv_sec;
    tv->tv_usec = ts.tv_nsec / 1000;
    return 0;
}
time_t time(time_t *t)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (t)
        *t = ts.tv_sec;
    return ts.tv_sec;
}
"""


def iso8601(t):
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Fakes:
    """One loopback server: STS (POST /) and a SageMaker runtime (POST
    /endpoints/...) that answers each CSV row with its sum."""

    def __init__(self, shift_file):
        outer = self
        self.shift_file = shift_file
        self.fetches = []
        self.calls = []
        self.sts_delay = 0.0

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n)
                if self.path.startswith("/endpoints/"):
                    outer.calls.append(self.headers.get("Authorization", ""))
                    out = b"".join(b"%r\n" % float(sum(float(x) for x in line.split(b",")))
                                   for line in body.splitlines())
                    self.send_response(200)
                    self.send_header("Content-Type", "text/csv")
                else:
                    time.sleep(outer.sts_delay)
                    outer.fetches.append(time.time())
                    k = len(outer.fetches)
                    exp = iso8601(time.time() + outer.shift() + 3600)
                    out = ("<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult>"
                           "<Credentials><AccessKeyId>ASIACLOCK%d</AccessKeyId>"
                           "<SecretAccessKey>s/%d</SecretAccessKey><SessionToken>t%d</SessionToken>"
                           "<Expiration>%s</Expiration></Credentials>"
                           "</AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>"
                           % (k, k, k, exp)).encode()
                    self.send_response(200)
                    self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.httpd.daemon_threads = True
        self.url = "http://127.0.0.1:%d" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def shift(self):
        with open(self.shift_file, "rb") as f:
            return struct.unpack("<q", f.read(8))[0]

    def set_shift(self, s):
        with open(self.shift_file, "r+b") as f:
            f.write(struct.pack("<q", s))


def post(gw, timeout=10):
    c = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=timeout)
    c.request("POST", "/endpoints/sm/invocations", body=b"1,2\n",
              headers={"Content-Type": "text/csv", "Accept": "text/csv"})
    r = c.getresponse()
    out = r.read().decode()
    c.close()
    return r.status, out


def start():
    """The gateway under the clock shim, its STS and runtime fakes."""
    shim = os.path.join(tmp, "clockshift.so")
    src = os.path.join(tmp, "clockshift.c")
    with open(src, "w") as f:
        f.write(SHIM)
    subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", shim, src, "-ldl"], check=True)
    shift_file = os.path.join(tmp, "shift")
    with open(shift_file, "wb") as f:
        f.write(struct.pack("<q", 0))
    fk = Fakes(shift_file)
    token = os.path.join(tmp, "token")
    with open(token, "w") as f:
        f.write("jwt")
    saved = dict(os.environ)
    for k in list(os.environ):
        if k.startswith("AWS_"):
            del os.environ[k]
    os.environ.update(HOME=tmp, AWS_WEB_IDENTITY_TOKEN_FILE=token,
                      AWS_ROLE_ARN="arn:aws:iam::123456789012:role/gw",
                      AWS_ENDPOINT_URL_STS=fk.url, LD_PRELOAD=shim, IG_CLOCK_SHIFT_FILE=shift_file,
                      ASAN_OPTIONS=(os.environ.get("ASAN_OPTIONS", "") +
                                    ":verify_asan_link_order=0").lstrip(":"))
    try:
        gw = Gateway({"sm": {"model": "sagemaker://us-east-1/my-ep", "endpoint_url": fk.url,
                             "content_type": "text/csv", "accept": "text/csv"}})
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return gw, fk


def c1_clock_jump(gw, fk):
    for _ in range(100):
        if fk.fetches:
            break
        time.sleep(0.05)
    check_eq(post(gw), (200, "3.0\n"), "C1: a call before the jump")
    check_eq(len(fk.fetches), 1, "C1: one STS fetch before the jump")
    fk.sts_delay = 0.5  # the refresh takes a while: calls come meanwhile
    fk.set_shift(3700)  # the hour's credentials expired while the VM slept
    ncalls = len(fk.calls)
    t0 = time.time()
    got = [None] * 4

    def one(i):
        time.sleep(0.1 * i)
        got[i] = post(gw)
    ts = [threading.Thread(target=one, args=(i,)) for i in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    took = time.time() - t0
    check_eq(got, [(200, "3.0\n")] * 4,
             "C1: the calls that find the credentials expired by a wall-clock jump wait for "
             "the refresh the first one starts (before: the first failed 500)")
    check(0.4 < took < 3, "C1: they waited for the 0.5 s refresh, not longer (%.2f s)" % took)
    check_eq(len(fk.fetches), 2, "C1: one refresh after the jump, not a storm")
    new = fk.calls[ncalls:]
    check(1 <= len(new) <= 4 and all("ASIACLOCK2/" in a for a in new),
          "C1: every call after the jump signed with the new set: %r" % new)


def c2_refresh_hangs(gw, fk):
    """The refresh after an expiry hangs past the fetch's timeout (5 s): the
    calls waiting for it fail then, told so, and the next refresh (at most
    a second later) serves the calls after it."""
    fk.sts_delay = 8.0
    fk.set_shift(fk.shift() + 3700)
    nf = len(fk.fetches)
    t0 = time.time()
    got = post(gw, timeout=20)
    took = time.time() - t0
    print("  C2: %r after %.2f s" % (got, took))
    check(4.5 < took < 7.5, "C2: a call waits for the hanging refresh up to its 5 s timeout, "
          "not for ever nor failing at once (%.2f s)" % took)
    check(got[0] == 500 and re.fullmatch(
        r'\{"message":"Row 1: The gateway has no AWS credentials to call SageMaker endpoint my-ep '
        r'\(us-east-1\): AWS credentials from web identity expired at \d{4}-\d\d-\d\dT\d\d:\d\d:'
        r'\d\dZ; their refresh failed \(the gateway\'s log says why\)"\}', got[1]),
        "C2: then fails, told the refresh failed: %r" % (got,))
    fk.sts_delay = 0.0
    deadline = time.time() + 10
    while time.time() < deadline:
        got = post(gw)
        if got[0] == 200:
            break
        time.sleep(0.2)
    took = time.time() - t0
    check_eq(got, (200, "3.0\n"), "C2: a refresh that answers again serves the calls")
    check(took < 9, "C2: within about a second of the failed refresh (%.2f s after the first "
          "call)" % took)
    check(len(fk.fetches) - nf <= 3, "C2: no storm of fetches: %d" % (len(fk.fetches) - nf))
    check(all("ASIACLOCK%d/" % len(fk.fetches) in a for a in fk.calls[-1:]),
          "C2: the call signed with the newest set: %r" % fk.calls[-1:])


CASES = [("c1", c1_clock_jump), ("c2", c2_refresh_hangs)]
gw, fk = start()
with gw:
    for name, fn in CASES:
        if FILTER in name:
            fn(gw, fk)
finish()
