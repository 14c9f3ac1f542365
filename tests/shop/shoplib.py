"""Helpers for the shop's end-to-end tests: start the real herald_shop binary on a free loopback
port with an SQLite store in a temporary directory, and talk JSON to it over HTTP (stdlib only)."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

DEFAULT_TIMEOUT = 30.0


class Shop:
    def __init__(self, binary, data_dir, extra_args=(), log_level="warn"):
        self.binary = binary
        self.log_level = log_level
        self.data_dir = data_dir
        self.extra_args = list(extra_args)
        self.proc = None
        self.url = None
        self.log_path = os.path.join(data_dir, "shop.log")

    def start(self):
        port_file = os.path.join(self.data_dir, "port")
        if os.path.exists(port_file):
            os.remove(port_file)
        args = [self.binary, "--data-dir", self.data_dir, "--port", "0", "--port-file", port_file,
                "--log-level", self.log_level] + self.extra_args
        self.log = open(self.log_path, "a")
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + DEFAULT_TIMEOUT
        while not os.path.exists(port_file):
            if self.proc.poll() is not None:
                raise AssertionError("herald_shop exited with %s:\n%s" % (self.proc.returncode, self.read_log()))
            if time.monotonic() > deadline:
                raise AssertionError("herald_shop did not write its port file:\n" + self.read_log())
            time.sleep(0.05)
        with open(port_file) as f:
            self.url = "http://127.0.0.1:%d" % int(f.read().strip())
        return self

    def read_log(self):
        try:
            with open(self.log_path) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def kill(self):
        """SIGKILL: no graceful anything, as a crash."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self):
        """SIGTERM and wait for the graceful stop; returns the exit code."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError("herald_shop did not stop on SIGTERM")
        return self.proc.returncode if self.proc else None

    def request(self, method, path, body=None, raw=None, headers=None):
        """Returns (status, parsed JSON body or None)."""
        data = None
        hdrs = {"Content-Type": "application/json"}
        hdrs.update(headers or {})
        if raw is not None:
            data = raw if isinstance(raw, bytes) else raw.encode()
        elif body is not None:
            data = json.dumps(body).encode()
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=20) as resp:
                payload = resp.read()
                status = resp.status
        except urllib.error.HTTPError as e:
            payload = e.read()
            status = e.code
        try:
            parsed = json.loads(payload) if payload else None
        except ValueError:
            parsed = payload.decode(errors="replace")
        return status, parsed

    def get(self, path):
        return self.request("GET", path)

    def post(self, path, body=None, raw=None):
        return self.request("POST", path, body=body, raw=raw)

    def delete(self, path):
        return self.request("DELETE", path)


def wait_until(what, fn, timeout=DEFAULT_TIMEOUT, interval=0.05):
    """Polls fn() until it returns a truthy value, which is returned; fails after `timeout`."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError("timed out waiting for %s (last: %r)" % (what, last))


def check(cond, message):
    if not cond:
        raise AssertionError(message)


def expect(status_body, status, error=None, where=""):
    got_status, body = status_body
    check(got_status == status, "%s: expected HTTP %d, got %d %r" % (where, status, got_status, body))
    if error is not None:
        check(isinstance(body, dict) and body.get("error") == error and isinstance(body.get("message"), str)
              and body["message"], "%s: expected error %r with a message, got %r" % (where, error, body))
    return body


def outbox_files(data_dir):
    d = os.path.join(data_dir, "outbox")
    if not os.path.isdir(d):
        return []
    return sorted(f for f in os.listdir(d) if f.endswith(".eml"))


def run_shops(test_fn, binary, data_dir, shops):
    """Runs test_fn(binary, data_dir, shops); prints the log of every shop it started when it
    fails, and kills them all afterwards."""
    try:
        test_fn(binary, data_dir, shops)
    except Exception:
        for s in shops:
            print("---- herald_shop log ----\n" + s.read_log())
        raise
    finally:
        for s in shops:
            s.kill()


def run(test_fn):
    """Runs test_fn(binary, data_dir, shops) with a fresh temp dir (see run_shops)."""
    if len(sys.argv) < 2:
        print("usage: %s PATH/TO/herald_shop" % sys.argv[0])
        sys.exit(2)
    binary = os.path.abspath(sys.argv[1])
    data_dir = tempfile.mkdtemp(prefix="herald-shop-e2e-")
    try:
        run_shops(test_fn, binary, data_dir, [])
        print("PASS")
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
