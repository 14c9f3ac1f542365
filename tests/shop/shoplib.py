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
# Passes the registration rules (10+ characters, 5+ different, not common, not the e-mail's name).
PASSWORD = "correct horse battery staple"


class Shop:
    def __init__(self, binary, data_dir, extra_args=(), log_level="warn"):
        self.binary = binary
        self.log_level = log_level
        self.data_dir = data_dir
        self.extra_args = list(extra_args)
        self.proc = None
        self.url = None
        # user id -> bearer token of its latest sign-in through register() or sign_in(); kept across
        # restarts, as a client would keep it (sessions live in the store).
        self.tokens = {}
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

    def request(self, method, path, body=None, raw=None, headers=None, as_user=None, token=None):
        """Returns (status, parsed JSON body or None). as_user: send the bearer token of that user
        id (from register/sign_in); token: send this bearer token."""
        data = None
        hdrs = {"Content-Type": "application/json"}
        if as_user is not None:
            token = self.tokens[as_user]
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
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

    def get(self, path, as_user=None, token=None):
        return self.request("GET", path, as_user=as_user, token=token)

    def post(self, path, body=None, raw=None, as_user=None, token=None):
        return self.request("POST", path, body=body, raw=raw, as_user=as_user, token=token)

    def delete(self, path, as_user=None, token=None):
        return self.request("DELETE", path, as_user=as_user, token=token)

    def sign_in(self, email, password=PASSWORD):
        """POST /api/sessions; returns (user id, token) and remembers the token for as_user."""
        body = expect(self.post("/api/sessions", {"email": email, "password": password}), 201, where="sign in " + email)
        check(body["token_type"] == "Bearer" and len(body["token"]) == 64, "session: %r" % body)
        self.tokens[body["user_id"]] = body["token"]
        return body["user_id"], body["token"]

    def register(self, email, name="Test User", password=PASSWORD):
        """POST /api/users with a password, then sign in; returns the user id (its token is in
        self.tokens)."""
        uid = expect(self.post("/api/users", {"email": email, "name": name, "password": password}), 201,
                     where="register " + email)["id"]
        signed_in, _ = self.sign_in(email, password)
        check(signed_in == uid, "signed in as %s, registered %s" % (signed_in, uid))
        return uid


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
