"""End-to-end: who may call what. Against the real herald_shop with an admin token:
  - the authorisation matrix: every route (the list comes from /admin/routes, so a new route fails
    this test until it is given its row) x {no token, expired token, revoked token, another user's
    token, own token, admin token}, each with its expected status; another user's cart, order or
    record answers 404 exactly as an unknown id does;
  - sign-in: unknown e-mail and wrong password give the same answer; 429 with Retry-After after
    five failures for one account;
  - password reset through the outbox: 202 with the same body whether or not the address exists,
    single use, revokes the user's sessions, the old password stops working;
  - secrets stay out of the log: the Argon2id hash is in no event, and a search of every file of
    the data directory finds it only in the process-state table (documents); no file holds a
    password or a session token in clear.
The expired token comes from a first run with --session-ttl-seconds 1 (sessions live in the store,
so the token is still refused after a restart with the default TTL)."""
import json
import os
import re
import sqlite3
import time

from shoplib import PASSWORD, Shop, check, expect, outbox_files, run, wait_until

ADMIN = "admin-token-of-the-auth-test"
UNKNOWN = "01a2a2a2-0000-7000-8000-00000000dead"
CREDS = ("none", "expired", "revoked", "another", "own", "admin")


def test(binary, data_dir, shops):
    # -- a first run whose sessions last one second: the expired token --
    shop = Shop(binary, data_dir, ["--admin-token", ADMIN, "--session-ttl-seconds", "1"]).start()
    shops.append(shop)
    ann = shop.register("ann@example.com", "Ann")
    bob = shop.register("bob@example.com", "Bob")
    expired = shop.tokens[ann]
    check(shop.stop() == 0, "graceful stop")
    time.sleep(1.2)

    shop = Shop(binary, data_dir, ["--admin-token", ADMIN]).start()
    shops.append(shop)
    admin = {"Authorization": "Bearer " + ADMIN}
    product = expect(shop.request("POST", "/api/products", {"sku": "M-1", "name": "Mug", "price_cents": 500,
                                                            "stock": 100}, headers=admin), 201)["id"]
    _, revoked = shop.sign_in("ann@example.com")
    expect(shop.delete("/api/sessions/current", token=revoked), 204, where="sign out")
    _, own = shop.sign_in("ann@example.com")
    _, another = shop.sign_in("bob@example.com")
    wait_until("carts", lambda: shop.get("/api/carts/" + ann, token=own)[0] == 200
               and shop.get("/api/carts/" + bob, token=another)[0] == 200)
    expect(shop.post("/api/carts/%s/items" % ann, {"product_id": product, "quantity": 1}, token=own), 200)
    order = expect(shop.post("/api/orders", {"payment_token": "tok_visa"}, token=own), 202)["id"]
    wait_until("orders view", lambda: shop.get("/api/orders", token=own)[1]["orders"])
    tokens = {"none": None, "expired": expired, "revoked": revoked, "another": another, "own": own, "admin": ADMIN}

    counter = [0]

    def fresh_email():
        counter[0] += 1
        return "new%d@example.com" % counter[0]

    def fresh_sku():
        counter[0] += 1
        return {"sku": "S-%d" % counter[0], "name": "S", "price_cents": 1, "stock": 1}

    def add_item():
        expect(shop.post("/api/carts/%s/items" % ann, {"product_id": product, "quantity": 1}, token=own), 200)

    PUBLIC = {c: 200 for c in CREDS}
    USER = {"none": 401, "expired": 401, "revoked": 401, "another": 404, "own": 200, "admin": 401}
    # None: served (any answer but 401 below 500); e2e_security.py checks each admin route's spellings.
    ADMIN_ONLY = {"none": 401, "expired": 401, "revoked": 401, "another": 401, "own": 401, "admin": None}

    def row(expected, **changes):
        out = dict(expected)
        out.update(changes)
        return out

    # (method, pattern) -> (path, body or a function making it, expected by credential, prepare)
    matrix = {
        ("GET", "/health"): ("/health", None, PUBLIC, None),
        ("GET", "/livez"): ("/livez", None, PUBLIC, None),
        ("GET", "/readyz"): ("/readyz", None, PUBLIC, None),
        ("GET", "/metrics"): ("/metrics", None, PUBLIC, None),
        ("GET", "/admin/events"): ("/admin/events", None, ADMIN_ONLY, None),
        ("GET", "/admin/streams/{stream}"): ("/admin/streams/user-" + ann, None, ADMIN_ONLY, None),
        ("POST", "/admin/streams/{stream}"): ("/admin/streams/misc-1", {}, ADMIN_ONLY, None),
        ("GET", "/admin/stats"): ("/admin/stats", None, ADMIN_ONLY, None),
        ("GET", "/admin/handlers"): ("/admin/handlers", None, ADMIN_ONLY, None),
        ("GET", "/admin/handlers/{name}"): ("/admin/handlers/orders.view", None, ADMIN_ONLY, None),
        ("POST", "/admin/handlers/{name}/replay"): ("/admin/handlers/no.such/replay", {}, ADMIN_ONLY,
                                                   None),
        ("GET", "/admin/dead-letters"): ("/admin/dead-letters", None, ADMIN_ONLY, None),
        ("POST", "/admin/dead-letters/{id}/redrive"): ("/admin/dead-letters/987654/redrive", None,
                                                       ADMIN_ONLY, None),
        ("DELETE", "/admin/dead-letters/{id}"): ("/admin/dead-letters/987654", None, ADMIN_ONLY, None),
        ("POST", "/admin/backup"): ("/admin/backup", {}, ADMIN_ONLY, None),
        ("GET", "/admin/routes"): ("/admin/routes", None, ADMIN_ONLY, None),
        ("POST", "/api/users"): ("/api/users", lambda: {"email": fresh_email(), "name": "N", "password": PASSWORD},
                                 {c: 201 for c in CREDS}, None),
        ("GET", "/api/users/{id}"): ("/api/users/" + ann, None, USER, None),
        ("POST", "/api/sessions"): ("/api/sessions", {"email": "bob@example.com", "password": PASSWORD},
                                    {c: 201 for c in CREDS}, None),
        ("POST", "/api/password-resets"): ("/api/password-resets", {"email": "nobody@example.com"},
                                           {c: 202 for c in CREDS}, None),
        ("POST", "/api/password-resets/confirm"): ("/api/password-resets/confirm",
                                                   {"token": "0" * 64, "password": PASSWORD},
                                                   {c: 400 for c in CREDS}, None),
        ("POST", "/api/products"): ("/api/products", fresh_sku, row(ADMIN_ONLY, admin=201), None),
        ("GET", "/api/products"): ("/api/products", None, PUBLIC, None),
        ("GET", "/api/products/{id}"): ("/api/products/" + product, None, PUBLIC, None),
        ("GET", "/api/carts/{user_id}"): ("/api/carts/" + ann, None, USER, None),
        ("POST", "/api/carts/{user_id}/items"): ("/api/carts/%s/items" % ann, {"product_id": product, "quantity": 1},
                                                 USER, None),
        ("DELETE", "/api/carts/{user_id}/items/{product_id}"): ("/api/carts/%s/items/%s" % (ann, product), None, USER,
                                                                add_item),
        # Another user's token places an order in its own name (Bob's cart is empty: 409), never Ann's.
        ("POST", "/api/orders"): ("/api/orders", {"payment_token": "tok_visa"}, row(USER, own=202, another=409),
                                  add_item),
        # Another user's token lists its own orders (checked below); Ann's by id is 404.
        ("GET", "/api/orders"): ("/api/orders?user_id=" + ann, None, USER, None),
        ("GET", "/api/orders/{id}"): ("/api/orders/" + order, None, USER, None),
        ("GET", "/api/stats/users"): ("/api/stats/users", None, PUBLIC, None),
        ("GET", "/api/stats/orders"): ("/api/stats/orders", None, PUBLIC, None),
        # Last: it ends the session of whoever calls it.
        ("DELETE", "/api/sessions/current"): ("/api/sessions/current", None, row(USER, another=204, own=204), None),
    }
    routes = expect(shop.request("GET", "/admin/routes", headers=admin), 200)["routes"]
    listed = [(r["method"], r["pattern"]) for r in routes]
    missing = [r for r in listed if r not in matrix]
    check(not missing, "routes without a row in the matrix: %r" % missing)
    check(not [r for r in matrix if r not in listed], "rows for routes that do not exist: %r" %
          [r for r in matrix if r not in listed])
    access = {(r["method"], r["pattern"]): r["access"] for r in routes}
    for key, (_, _, expected, _) in matrix.items():
        kind = "public" if expected["none"] != 401 else "admin" if expected["own"] == 401 else "user"
        check(access[key] == kind, "%s %s: /admin/routes says %s, the matrix %s" % (key[0], key[1], access[key], kind))

    cells = 0
    ordered = sorted(matrix, key=lambda k: k == ("DELETE", "/api/sessions/current"))
    for key in ordered:
        path, body, expected, prepare = matrix[key]
        for cred in CREDS:
            if prepare is not None and cred == "own":
                prepare()
            sent = body() if callable(body) else body
            status, answer = shop.request(key[0], path, body=sent, token=tokens[cred])
            want = expected[cred]
            where = "%s %s with %s token" % (key[0], path, cred)
            if want is None:
                check(status != 401 and status < 500, "%s: %d %r" % (where, status, answer))
            else:
                check(status == want, "%s: expected %d, got %d %r" % (where, want, status, answer))
            if status == 401:
                check(isinstance(answer, dict) and answer.get("error") == "unauthorized", where + ": " + repr(answer))
            cells += 1
    print("authorisation matrix: %d routes x %d credentials = %d requests" % (len(matrix), len(CREDS), cells))

    # Another user's ids cannot be told from unknown ones.
    _, bob_token = shop.sign_in("bob@example.com")
    for known, unknown in (("/api/orders/" + order, "/api/orders/" + UNKNOWN),
                           ("/api/carts/" + ann, "/api/carts/" + UNKNOWN),
                           ("/api/users/" + ann, "/api/users/" + UNKNOWN)):
        a = shop.get(known, token=bob_token)
        b = shop.get(unknown, token=bob_token)
        check(a[0] == b[0] == 404 and a[1]["message"].replace(ann, "X").replace(order, "X")
              == b[1]["message"].replace(UNKNOWN, "X"), "probe %s: %r vs %r" % (known, a, b))
    bobs = expect(shop.get("/api/orders", token=bob_token), 200)
    check(bobs == {"orders": [], "next": None}, "Bob sees orders: %r" % bobs)
    check(shop.get("/api/carts/" + ann, token=bob_token)[1].get("items") is None, "Bob read Ann's cart")

    # -- sign-in answers: unknown address and wrong password alike; then 429 --
    unknown = shop.post("/api/sessions", {"email": "nobody@example.com", "password": PASSWORD})
    wrong = shop.post("/api/sessions", {"email": "bob@example.com", "password": "not the password"})
    check(unknown == wrong and unknown[0] == 401, "unknown %r vs wrong %r" % (unknown, wrong))
    carl = shop.register("carl@example.com", "Carl")
    for _ in range(5):
        expect(shop.post("/api/sessions", {"email": "carl@example.com", "password": "guess guess 1"}), 401)
    status, headers, body = raw_post(shop, "/api/sessions", {"email": "carl@example.com", "password": PASSWORD})
    check(status == 429 and body["error"] == "too_many_requests", "sixth attempt: %d %r" % (status, body))
    check(int(headers.get("Retry-After", "0")) >= 1, "Retry-After: %r" % headers)
    wait_until("Carl's session from before the lock still works",
               lambda: shop.get("/api/carts/" + carl, as_user=carl)[0] == 200)

    # -- password reset through the outbox --
    before = set(outbox_files(data_dir))
    asked = expect(shop.post("/api/password-resets", {"email": "ann@example.com"}), 202)
    nobody = expect(shop.post("/api/password-resets", {"email": "nobody@example.com"}), 202)
    check(asked == nobody, "reset answers differ: %r vs %r" % (asked, nobody))
    mail = wait_until("reset e-mail", lambda: [f for f in outbox_files(data_dir) if f not in before
                                               and "Subject: Reset" in read(data_dir, f)])
    check(len(mail) == 1, "reset e-mails: %r" % mail)
    text = read(data_dir, mail[0])
    check("To: <ann@example.com>" in text, "reset e-mail recipient: %r" % text[:300])
    reset = re.search(r'"token": "([0-9a-f]{64})"', text).group(1)
    _, ann_token = shop.sign_in("ann@example.com")
    new_password = "a brand new passphrase"
    expect(shop.post("/api/password-resets/confirm", {"token": reset, "password": "short"}), 400, "invalid_argument")
    expect(shop.post("/api/password-resets/confirm", {"token": reset, "password": new_password}), 204)
    expect(shop.post("/api/password-resets/confirm", {"token": reset, "password": "yet another passphrase"}), 400,
           "invalid_argument", "second use of a reset token")
    expect(shop.get("/api/carts/" + ann, token=ann_token), 401, "unauthorized", "a session from before the reset")
    expect(shop.post("/api/sessions", {"email": "ann@example.com", "password": PASSWORD}), 401, "unauthorized")
    check(shop.sign_in("ann@example.com", new_password)[0] == ann, "sign-in with the new password")

    hashes_seen = stop_and_search(shop, data_dir, [PASSWORD, new_password],
                                  [own, another, ann_token, bob_token, expired, revoked])
    print("secrets: %d password hashes found only in the documents table" % hashes_seen)


def raw_post(shop, path, body):
    import urllib.error
    import urllib.request
    req = urllib.request.Request(shop.url + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, dict(r.headers), json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), json.loads(e.read())


def read(data_dir, name):
    with open(os.path.join(data_dir, "outbox", name), encoding="utf-8") as f:
        return f.read()


def stop_and_search(shop, data_dir, passwords, tokens):
    # The events as the API gives them (decoded), before the stop.
    events = []
    position = 0
    while True:
        page = expect(shop.request("GET", "/admin/events?from=%d&limit=1000" % position,
                                   headers={"Authorization": "Bearer " + ADMIN}), 200)
        events += page["events"]
        if not page["events"]:
            break
        position = page["events"][-1]["position"] + 1
    check(shop.stop() == 0, "graceful stop")
    db = os.path.join(data_dir, "events.db")
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    try:
        hashes = [json.loads(r[0])["password_hash"] for r in
                  con.execute("SELECT json FROM documents WHERE collection = 'credentials'")]
        check(len(hashes) >= 3 and all(h.startswith("$argon2id$") for h in hashes), "credentials: %r" % hashes)
        # Every table, every column: a hash may only be in documents.
        tables = [r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        for table in tables:
            for row in con.execute('SELECT * FROM "%s"' % table):
                for value in row:
                    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
                    for h in hashes:
                        check(table == "documents" or h not in text, "a password hash in table %s" % table)
                    check("$argon2" not in text or table == "documents", "an Argon2 string in table %s" % table)
    finally:
        con.close()
    for e in events:
        text = json.dumps(e)
        check("argon2" not in text and not any(p in text for p in passwords), "a secret in event %r" % e["type"])
        check(not any(t in text for t in tokens), "a session token in event %r" % e["type"])
    # The raw bytes of every file: a hash only in the SQLite files (its documents table, as above),
    # passwords and session tokens nowhere.
    found_in = set()
    for root, _, files in os.walk(data_dir):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                data = f.read()
            for h in hashes:
                if h.encode() in data:
                    found_in.add(name)
            for secret in passwords + tokens:
                check(secret.encode() not in data, "a password or session token in clear in %s" % path)
    check(found_in and all(n.startswith("events.db") for n in found_in), "hashes found in %r" % sorted(found_in))
    return len(hashes)


if __name__ == "__main__":
    run(test)
