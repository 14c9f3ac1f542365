"""End-to-end: herald_shop under the seed flows' mix (tests/shop/load_mix.lua: registrations,
sign-ins, product reads, cart adds, checkouts, admin event reads), driven by wrk.

  e2e_http_load.py PATH/TO/herald_shop [sqlite|postgres] [fixed|saturation]

fixed: HERALD_LOAD_RATE requests/s in all (default 1000), paced per connection; saturation: as
fast as the shop answers. HERALD_LOAD_SECONDS (default 60) long, HERALD_LOAD_CONNECTIONS (default
16) customers at once. postgres needs HERALD_TEST_POSTGRES_URL (scripts/pg-temp start); each run
gets a fresh schema. Then checks: no 5xx and no other error answer, no socket error (dropped
connection, timeout), every acknowledged registration and order in the log exactly once, and every
handler caught up (lag 0) within 60 s. Prints the achieved requests/s beside the offered rate, and
p50/p99 (wrk's latency: from sending to the answer), in one LOAD line."""
import json
import os
import shutil
import subprocess
import sys
import time
import uuid

from shoplib import Shop, check, expect, run

HERE = os.path.dirname(os.path.abspath(__file__))


def all_events(shop, event_type):
    position = 0
    while True:
        page = expect(shop.get("/admin/events?type=%s&from=%d&limit=1000" % (event_type, position)), 200)
        yield from page["events"]
        if page["end_of_log"]:
            return
        position = page["next"]


def payload(e):
    p = e["data"]
    return json.loads(p) if isinstance(p, str) else p


def postgres_schema_url():
    base = os.environ.get("HERALD_TEST_POSTGRES_URL")
    if not base:
        print("SKIP: HERALD_TEST_POSTGRES_URL is not set (scripts/pg-temp start prints one)")
        sys.exit(77)
    schema = "load_" + uuid.uuid4().hex[:12]
    subprocess.run(["psql", base, "-q", "-c", "CREATE SCHEMA " + schema], check=True)
    sep = "&" if "?" in base else "?"
    return base + sep + "options=-c%20search_path%3D" + schema


def test(binary, data_dir, shops):
    backend = sys.argv[2] if len(sys.argv) > 2 else "sqlite"
    mode = sys.argv[3] if len(sys.argv) > 3 else "fixed"
    check(backend in ("sqlite", "postgres") and mode in ("fixed", "saturation"), "usage: see the docstring")
    wrk = shutil.which("wrk")
    check(wrk is not None, "wrk is not installed (scripts/setup installs it)")
    seconds = int(os.environ.get("HERALD_LOAD_SECONDS", "60"))
    connections = int(os.environ.get("HERALD_LOAD_CONNECTIONS", "16"))
    rate = float(os.environ.get("HERALD_LOAD_RATE", "1000")) if mode == "fixed" else 0.0
    extra = ["--store", postgres_schema_url()] if backend == "postgres" else []
    shop = Shop(binary, data_dir, extra_args=extra).start()
    shops.append(shop)

    products = []
    for i in range(20):
        body = {"sku": "LOAD-%d" % i, "name": "Load product %d" % i, "price_cents": 100 + i, "stock": 1000000000}
        products.append(expect(shop.post("/api/products", body), 201, where="create product")["id"])
    out_dir = os.path.join(data_dir, "acks")
    os.makedirs(out_dir)
    env = dict(os.environ, HERALD_LOAD_PRODUCTS=",".join(products), HERALD_LOAD_OUT=out_dir,
               HERALD_LOAD_RATE=str(rate / connections if rate else 0))
    # One thread per connection: the script keeps one customer's state per thread.
    cmd = [wrk, "-t%d" % connections, "-c%d" % connections, "-d%ds" % seconds, "--timeout", "10s",
           "-s", os.path.join(HERE, "load_mix.lua"), shop.url + "/"]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 120, env=env)
    print(res.stdout)
    check(res.returncode == 0, "wrk failed: %s %s" % (res.stdout, res.stderr[-2000:]))
    fields = [ln for ln in res.stdout.splitlines() if ln.startswith("MIX ")][0].split()[1:]
    mix = {fields[i]: float(fields[i + 1]) for i in range(0, len(fields), 2)}
    check(mix["server_error"] == 0, "%d 5xx answers: %s" % (mix["server_error"], res.stderr[-2000:]))
    check(mix["client_error"] == 0, "%d 4xx answers: %s" % (mix["client_error"], res.stderr[-2000:]))
    for k in ("connect", "read", "write", "timeout"):
        check(mix[k] == 0, "wrk saw %d %s errors (a dropped connection or an unanswered request)" % (mix[k], k))
    check(mix["registered"] > 0 and mix["ordered"] > 0, "no registration or no order acknowledged: %r" % mix)
    # Reported, not asserted (figures belong to bench/): on a shared machine the offered rate may
    # not be reached, which the LOAD line shows beside the offered one.
    achieved = mix["requests"] / mix["seconds"]

    acked_users, acked_orders = [], []
    for name in os.listdir(out_dir):
        with open(os.path.join(out_dir, name)) as f:
            for line in f:
                kind, ident = line.split()
                (acked_users if kind == "U" else acked_orders).append(ident)

    stopped = time.monotonic()
    while True:
        lags = {h["name"]: h["lag"] for h in expect(shop.get("/admin/handlers"), 200)}
        if all(lag == 0 for lag in lags.values()):
            break
        check(time.monotonic() - stopped < 60, "handlers not caught up 60 s after the load: %r" % lags)
        time.sleep(0.2)
    caught_up = time.monotonic() - stopped

    users = {}
    for e in all_events(shop, "UserRegistered"):
        uid = payload(e)["user_id"]
        users[uid] = users.get(uid, 0) + 1
    orders = {}
    for e in all_events(shop, "OrderCreated"):
        oid = payload(e)["order_id"]
        orders[oid] = orders.get(oid, 0) + 1
    for uid in acked_users:
        check(users.get(uid, 0) == 1, "acknowledged user %s is in the log %d times" % (uid, users.get(uid, 0)))
    for oid in acked_orders:
        check(orders.get(oid, 0) == 1, "acknowledged order %s is in the log %d times" % (oid, orders.get(oid, 0)))
    check(all(n == 1 for n in users.values()) and all(n == 1 for n in orders.values()), "an event twice in the log")
    print("LOAD %s %s: %.0f requests/s (offered %s), p50 %.2f ms, p99 %.2f ms; %d registrations and %d orders "
          "acknowledged, each in the log once; handlers caught up %.1f s after the load"
          % (backend, mode, achieved, "%.0f/s" % rate if rate else "saturation", mix["p50_ms"], mix["p99_ms"],
             len(acked_users), len(acked_orders), caught_up))
    check(shop.stop() == 0, "graceful stop")


if __name__ == "__main__":
    run(test)
