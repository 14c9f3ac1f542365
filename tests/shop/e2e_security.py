"""End-to-end: the attacks of the security review, against the real herald_shop with an admin
token. Raw sockets, so that every byte sent is the attacker's (no client library normalises paths
or headers). Covers:
  - every admin route (listed by /admin/routes) under each path variant: 401 without the token,
    a non-401 answer below 500 with it;
  - JSON nested 1,000, 100,000 and 1,000,000 deep to every route that takes a body: 400, and the
    process lives;
  - requests a browser could forge: a non-JSON body (415), a rebound Host (400), a foreign Origin
    on a state-changing request (403), and that same-origin and configured CORS origins pass;
  - conflicting Content-Length headers (400 and the connection closed);
  - control characters from X-Request-Id and the path never reach the log raw;
  - binding a non-loopback address without an admin token is refused at start-up."""
import json
import os
import re
import socket
import subprocess
import sys

from shoplib import PASSWORD, Shop, check, expect, run, wait_until

TOKEN = "t0ken-for-the-security-test"
SAMPLE = {"stream": "order-01a2a2a2-0000-7000-8000-00000000dead", "name": "no.such.handler", "id": "987654321",
          "user_id": "01a2a2a2-0000-7000-8000-00000000beef", "product_id": "01a2a2a2-0000-7000-8000-00000000cafe"}


def raw_request(port, data, timeout=20.0):
    """Sends `data` (bytes) and reads until the server closes or one response is complete.
    Returns (status, headers dict lower-cased, body bytes, closed_by_server)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(data)
        buf = b""
        closed = False
        while True:
            head_end = buf.find(b"\r\n\r\n")
            if head_end >= 0:
                head = buf[:head_end].decode("latin-1")
                lines = head.split("\r\n")
                status = int(lines[0].split(" ")[1])
                headers = {}
                for ln in lines[1:]:
                    k, _, v = ln.partition(":")
                    headers[k.strip().lower()] = v.strip()
                length = int(headers.get("content-length", "0"))
                if len(buf) >= head_end + 4 + length:
                    body = buf[head_end + 4:head_end + 4 + length]
                    if headers.get("connection", "").lower() == "close":
                        try:
                            closed = s.recv(1) == b""
                        except socket.timeout:
                            closed = False
                    return status, headers, body, closed
            chunk = s.recv(65536)
            if not chunk:
                raise AssertionError("connection closed before a whole response: %r" % buf[:200])
            buf += chunk


def http(port, method, target, body=None, headers=None, host="127.0.0.1"):
    hdrs = {"Host": "%s:%d" % (host, port), "Connection": "close"}
    if body is not None:
        hdrs["Content-Type"] = "application/json"
    hdrs.update(headers or {})
    data = body if isinstance(body, bytes) else (body or "").encode()
    if body is not None or method in ("POST", "PUT", "PATCH"):
        hdrs["Content-Length"] = str(len(data))
    text = "%s %s HTTP/1.1\r\n" % (method, target)
    text += "".join("%s: %s\r\n" % (k, v) for k, v in hdrs.items() if v is not None)
    return raw_request(port, text.encode("latin-1") + b"\r\n" + data)


def concrete(pattern):
    return re.sub(r"\{(\w+)\}", lambda m: SAMPLE.get(m.group(1), "x"), pattern)


def variants(path):
    """The spellings of `path` that a prefix check on the raw path gets wrong."""
    rest = path[len("/admin"):]
    last_slash = path.rfind("/")
    return [
        path,
        "/" + path,                       # //admin/...
        "//" + path,                      # ///admin/...
        "/%2fadmin" + rest,
        "/%2Fadmin" + rest,
        "/admin/." + rest,
        "/x/../admin" + rest,
        "/admin/x/.." + rest,
        "/admin/%2e" + rest,
        path + "/",                       # trailing slash
        path + ";param=1",
        path[:last_slash] + "/;x" + path[last_slash:] if last_slash > 0 else path + ";x",
        path.upper(),
        "/ADMIN" + rest,
        "/Admin" + rest,
        "/admin/" + rest.lstrip("/"),
        "/admin//" + rest.lstrip("/"),
    ]


def admin_route_matrix(shop, port):
    status, _, body, _ = http(port, "GET", "/admin/routes", headers={"Authorization": "Bearer " + TOKEN})
    check(status == 200, "GET /admin/routes with the token: %d" % status)
    routes = json.loads(body)["routes"]
    admin = [r for r in routes if r["access"] == "admin"]
    names = {(r["method"], r["pattern"]) for r in admin}
    for must in [("GET", "/admin/events"), ("POST", "/admin/streams/{stream}"), ("GET", "/admin/dead-letters"),
                 ("POST", "/admin/dead-letters/{id}/redrive"), ("DELETE", "/admin/dead-letters/{id}"),
                 ("POST", "/admin/handlers/{name}/replay"), ("POST", "/api/products")]:
        check(must in names, "%s %s is not an admin route: %r" % (must[0], must[1], sorted(names)))
    for r in routes:
        if r["pattern"].lower().startswith("/admin"):
            check(r["access"] == "admin", "%s %s is public" % (r["method"], r["pattern"]))
    checked = 0
    for r in admin:
        path = concrete(r["pattern"])
        body = "{}" if r["method"] in ("POST", "PUT", "PATCH") else None
        spellings = variants(path) if path.startswith("/admin") else [path, "/" + path, path + "/", "/x/.." + path]
        for target in spellings:
            where = "%s %s (route %s)" % (r["method"], target, r["pattern"])
            status, headers, _, _ = http(port, r["method"], target, body=body)
            check(status == 401, "%s without the token: expected 401, got %d" % (where, status))
            check(headers.get("www-authenticate") == "Bearer", where + ": no WWW-Authenticate")
            status, _, _, _ = http(port, r["method"], target, body=body, headers={"Authorization": "Bearer wrong"})
            check(status == 401, "%s with a wrong token: expected 401, got %d" % (where, status))
            status, _, resp, _ = http(port, r["method"], target, body=body,
                                      headers={"Authorization": "Bearer " + TOKEN})
            check(status != 401 and 200 <= status < 500, "%s with the token: got %d %r" % (where, status, resp))
            checked += 1
    check(checked > 100, "only %d variants checked" % checked)
    print("route matrix: %d admin routes, %d variant requests x 3" % (len(admin), checked))


def nested(depth, closed=True):
    return "[" * depth + ("]" * depth if closed else "")


def depth_matrix(shop, port):
    status, _, body, _ = http(port, "GET", "/admin/routes", headers={"Authorization": "Bearer " + TOKEN})
    routes = json.loads(body)["routes"]
    with_body = [r for r in routes if r["method"] in ("POST", "PUT", "PATCH", "DELETE")]
    check(len(with_body) >= 8, "few body routes: %r" % with_body)
    before = expect(shop.get_admin("/admin/stats"), 200)["store"]["total_events"]
    sent = 0
    for r in with_body:
        path = concrete(r["pattern"])
        for depth in (1000, 100_000, 1_000_000):
            # 1,000,000 closed brackets would be over the 1 MiB body limit (413): send them unclosed,
            # which is what a parser without a depth limit recurses into before noticing.
            doc = nested(depth, closed=depth < 1_000_000)
            for body in (doc, '{"events":[{"type":"X","data":%s}],"email":"a@b.c","name":%s}' % (doc, doc)):
                if len(body) > 1 << 20:
                    body = body[: 1 << 20]
                status, _, resp, _ = http(port, r["method"], path, body=body,
                                          headers={"Authorization": "Bearer " + TOKEN})
                where = "%s %s depth %d" % (r["method"], path, depth)
                check(status == 400, "%s: expected 400, got %d %r" % (where, status, resp[:200]))
                sent += 1
        check(shop.proc.poll() is None, "herald_shop died on deep JSON to " + path)
    expect(shop.get("/health"), 200)
    after = expect(shop.get_admin("/admin/stats"), 200)["store"]["total_events"]
    check(after == before, "deep bodies wrote %d events" % (after - before))
    print("depth matrix: %d requests, all 400, process alive" % sent)


def forgery(shop, port):
    user = {"email": "forge@example.com", "name": "F", "password": PASSWORD}
    text = json.dumps(user)
    # A cross-site form or text/plain post needs no preflight: refuse anything but JSON.
    for ctype in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None,
                  "application/jsonx"):
        status, _, _, _ = http(port, "POST", "/api/users", body=text, headers={"Content-Type": ctype})
        check(status == 415, "Content-Type %r: expected 415, got %d" % (ctype, status))
    status, _, _, _ = http(port, "POST", "/api/users", body=text,
                           headers={"Content-Type": "Application/JSON; charset=utf-8"})
    check(status == 201, "application/json with parameters: %d" % status)
    # DNS rebinding: the browser sends the attacker's name as Host.
    for host in ("evil.test", "127.0.0.1.evil.test", "localhost.evil.test"):
        status, _, body, _ = http(port, "GET", "/api/products", host=host)
        check(status == 400 and json.loads(body)["error"] == "host_not_allowed", "Host %s: %d %r" % (host, status, body))
    for host in ("localhost", "127.0.0.1", "LOCALHOST"):
        status, _, _, _ = http(port, "GET", "/health", host=host)
        check(status == 200, "Host %s: %d" % (host, status))
    status, _, _, _ = raw_request(port, b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n")
    check(status == 400, "HTTP/1.1 without Host: %d" % status)
    status, _, _, _ = raw_request(port, ("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nHost: evil.test\r\n"
                                         "Connection: close\r\n\r\n").encode())
    check(status == 400, "two Host headers: %d" % status)
    # A foreign Origin on a state-changing request (a page on evil.test posting to us).
    for method, path, body in (("POST", "/api/users", json.dumps({"email": "o@example.com", "name": "O", "password": PASSWORD})),
                               ("POST", "/admin/dead-letters/1/redrive", None),
                               ("DELETE", "/admin/dead-letters/1", None)):
        status, headers, _, _ = http(port, method, path, body=body,
                                     headers={"Origin": "http://evil.test", "Authorization": "Bearer " + TOKEN})
        check(status == 403, "%s %s from a foreign Origin: %d" % (method, path, status))
        check("access-control-allow-origin" not in headers, "CORS header sent to a foreign origin")
    status, _, _, _ = http(port, "POST", "/api/users", body=json.dumps({"email": "n@example.com", "name": "N", "password": PASSWORD}),
                           headers={"Origin": "null"})
    check(status == 403, "Origin null: %d" % status)
    # Same origin (a page served from this host) is served.
    status, _, _, _ = http(port, "POST", "/api/users", body=json.dumps({"email": "same@example.com", "name": "S", "password": PASSWORD}),
                           headers={"Origin": "http://127.0.0.1:%d" % port})
    check(status == 201, "same-origin POST: %d" % status)
    # CORS is off: a preflight from anywhere is refused.
    status, _, _, _ = http(port, "OPTIONS", "/api/users",
                           headers={"Origin": "http://evil.test", "Access-Control-Request-Method": "POST"})
    check(status == 403, "preflight with CORS off: %d" % status)
    print("forgery: content type, host, origin checks pass")


def cors_when_configured(binary, data_dir, shops):
    d = os.path.join(data_dir, "cors")
    os.makedirs(d)
    shop = Shop(binary, d, ["--admin-token", TOKEN, "--allowed-origins", "https://app.example.test",
                            "--allowed-hosts", "shop.example.test"]).start()
    shops.append(shop)
    port = int(shop.url.rsplit(":", 1)[1])
    status, headers, _, _ = http(port, "OPTIONS", "/api/users", host="shop.example.test",
                                 headers={"Origin": "https://app.example.test", "Access-Control-Request-Method": "POST"})
    check(status == 204 and headers.get("access-control-allow-origin") == "https://app.example.test",
          "preflight from a configured origin: %d %r" % (status, headers))
    status, headers, _, _ = http(port, "POST", "/api/users", host="shop.example.test",
                                 body=json.dumps({"email": "c@example.com", "name": "C", "password": PASSWORD}),
                                 headers={"Origin": "https://app.example.test"})
    check(status == 201 and headers.get("access-control-allow-origin") == "https://app.example.test",
          "POST from a configured origin: %d %r" % (status, headers))
    status, _, _, _ = http(port, "POST", "/api/users", host="shop.example.test",
                           body=json.dumps({"email": "d@example.com", "name": "D", "password": PASSWORD}),
                           headers={"Origin": "https://other.example.test"})
    check(status == 403, "POST from an unlisted origin: %d" % status)
    shop.stop()


def framing_and_logs(shop, port):
    body = b'{"email":"cl@example.com","name":"CL","password":"%s"}' % PASSWORD.encode()
    req = (b"POST /api/users HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
           b"Content-Length: %d\r\nContent-Length: 5\r\n\r\n" % len(body)) + body
    status, headers, _, closed = raw_request(port, req)
    check(status == 400, "conflicting Content-Length: %d" % status)
    check(headers.get("connection", "").lower() == "close" and closed, "connection not closed after bad framing")
    # The same length twice is not a conflict (RFC 9112 6.3 allows treating it as one).
    req = (b"POST /api/users HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nConnection: close\r\n"
           b"Content-Length: %d\r\nContent-Length: %d\r\n\r\n" % (len(body), len(body))) + body
    status, _, _, _ = raw_request(port, req)
    check(status == 201, "repeated equal Content-Length: %d" % status)
    # Terminal and log injection through the request id and the path.
    evil_id = "abc\x1b[31mRED\x1b[0m\r\nFORGED log line"
    status, headers, _, _ = http(port, "GET", "/health", headers={"X-Request-Id": evil_id.replace("\r\n", " ")})
    # A control character in a header value is bad framing to the server (RFC 9110 5.5): 400, or
    # served with the id replaced; never echoed or logged raw.
    check(status in (200, 400), "health with an ESC in the request id: %d" % status)
    check("\x1b" not in headers.get("x-request-id", "") and headers.get("x-request-id"), "request id echoed raw")
    status, headers, _, _ = http(port, "GET", "/health", headers={"X-Request-Id": 'a "quoted" id; with spaces'})
    check(status == 200, "health with an odd request id: %d" % status)
    check(re.fullmatch(r"[0-9a-f-]{36}", headers.get("x-request-id", "")), "odd request id not replaced: %r" % headers)
    status, headers, _, _ = http(port, "GET", "/health", headers={"X-Request-Id": "req-42.a_b:c"})
    check(headers.get("x-request-id") == "req-42.a_b:c", "a plain request id is echoed: %r" % headers)
    status, _, _, _ = http(port, "GET", "/api/products/%1b[2J%1b[31m")
    check(status == 400, "control characters in the path: %d" % status)
    status, _, _, _ = http(port, "GET", "/api/\x1b[2Jproducts")
    check(status in (400, 404), "raw ESC in the target: %d" % status)
    wait_until("access log written", lambda: "[2J" in shop.read_log())
    log = shop.read_log()
    check("\x1b" not in log, "an ESC reached the log: %r" % log[-500:])
    print("framing and logs: conflicting lengths refused, no control characters in the log")


def exposure(binary, data_dir):
    args = [binary, "--data-dir", os.path.join(data_dir, "exposed"), "--host", "0.0.0.0", "--port", "0",
            "--log-level", "warn"]
    p = subprocess.run(args, capture_output=True, text=True, timeout=30)
    out = p.stdout + p.stderr
    check(p.returncode != 0, "herald_shop started on 0.0.0.0 without an admin token")
    check("--admin-token" in out and "--insecure-admin" in out, "startup error does not name the flags: %r" % out)
    print("exposure: 0.0.0.0 without a token refused: %s" % out.strip().splitlines()[-1][:160])


def test(binary, data_dir, shops):
    exposure(binary, data_dir)
    shop = Shop(binary, data_dir, ["--admin-token", TOKEN], log_level="info").start()
    shops.append(shop)
    shop.get_admin = lambda path: shop.request("GET", path, headers={"Authorization": "Bearer " + TOKEN})
    port = int(shop.url.rsplit(":", 1)[1])
    admin_route_matrix(shop, port)
    depth_matrix(shop, port)
    forgery(shop, port)
    framing_and_logs(shop, port)
    check(shop.stop() == 0, "graceful stop")
    cors_when_configured(binary, data_dir, shops)


if __name__ == "__main__":
    run(test)
