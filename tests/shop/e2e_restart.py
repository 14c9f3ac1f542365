"""End-to-end: SIGKILL herald_shop in the middle of order sagas, restart it on the same data
directory, and check every saga completes with no duplicate e-mail or event."""
import os
import sqlite3

from shoplib import Shop, check, expect, outbox_files, run, wait_until

ORDERS_PER_ROUND = 4


def count_events(data_dir, event_type):
    con = sqlite3.connect("file:%s?mode=ro" % os.path.join(data_dir, "events.db"), uri=True)
    try:
        return con.execute("SELECT count(*) FROM events WHERE type = ?", (event_type,)).fetchone()[0]
    finally:
        con.close()


def test(binary, data_dir, shops):
    shop = Shop(binary, data_dir).start()
    shops.append(shop)
    product = expect(shop.post("/api/products", {"sku": "K-1", "name": "Kettle", "price_cents": 1999,
                                                  "stock": 1000}), 201)["id"]
    users = []
    orders = []
    interrupted = False
    for round_no in range(5):
        # Users and carts first, so that only the sagas are in flight at the kill.
        batch = []
        for i in range(ORDERS_PER_ROUND):
            uid = shop.register("r%d.%d@example.com" % (round_no, i), "R")
            batch.append(uid)
        for uid in batch:
            wait_until("cart", lambda: shop.get("/api/carts/" + uid, as_user=uid)[0] == 200)
            expect(shop.post("/api/carts/%s/items" % uid, {"product_id": product, "quantity": 2}, as_user=uid), 200)
        users += batch
        for uid in batch:
            orders.append((uid, expect(shop.post("/api/orders", {"payment_token": "tok_ok"}, as_user=uid), 202)["id"]))
        shop.kill()  # right after the last 202
        confirmed = count_events(data_dir, "OrderConfirmed")
        committed = count_events(data_dir, "InventoryCommitted")
        print("round %d: killed with %d/%d orders confirmed, %d committed" %
              (round_no, confirmed, len(orders), committed))
        tokens = shop.tokens
        shop = Shop(binary, data_dir).start()
        shop.tokens = tokens  # sessions live in the store: they survive the kill
        shops.append(shop)
        if committed < len(orders):
            interrupted = True
            break
    check(interrupted, "every kill came after the sagas had finished; nothing was interrupted")

    for uid, oid in orders:
        wait_until("order %s confirmed" % oid,
                   lambda: shop.get("/api/orders/" + oid, as_user=uid)[1]["status"] == "confirmed")
    wait_until("stock committed", lambda: shop.get("/api/products/" + product)[1]["stock_reserved"] == 0)
    p = shop.get("/api/products/" + product)[1]
    check(p["stock_available"] == 1000 - 2 * len(orders), "stock: %r" % p)
    wait_until("order stats", lambda: shop.get("/api/stats/orders")[1].get("confirmed") == len(orders))
    wait_until("user stats", lambda: shop.get("/api/stats/users")[1].get("total_users") == len(users))
    expected_mails = len(users) + len(orders)
    wait_until("e-mails", lambda: len(outbox_files(data_dir)) >= expected_mails)

    # Let the handlers settle, then stop so the database can be read as it is.
    check(shop.stop() == 0, "graceful stop")
    check(len(outbox_files(data_dir)) == expected_mails, "e-mails: %d, expected %d (one per user and order)" %
          (len(outbox_files(data_dir)), expected_mails))
    for event_type, n in [("OrderCreated", len(orders)), ("OrderConfirmed", len(orders)),
                          ("InventoryReservationRequested", len(orders)), ("PaymentRequested", len(orders)),
                          ("PaymentCaptured", len(orders)), ("StockReserved", len(orders)),
                          ("StockCommitted", len(orders)), ("CartInitialized", len(users))]:
        got = count_events(data_dir, event_type)
        check(got == n, "%s: %d events, expected exactly %d" % (event_type, got, n))


if __name__ == "__main__":
    run(test)
