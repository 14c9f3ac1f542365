"""End-to-end: registration with a password and sign-in (welcome e-mail once, cart, user stats) and
the order saga (confirmed, declined, out of stock) by the signed-in user, against the real
herald_shop binary."""
import os

import urllib.request

from shoplib import Shop, check, expect, outbox_files, run, wait_until


def register(shop, email, name="Ann"):
    return shop.register(email, name)


def product(shop, sku, price, stock):
    return expect(shop.post("/api/products", {"sku": sku, "name": "Item " + sku, "price_cents": price,
                                               "stock": stock}), 201, where="product")["id"]


def wait_cart(shop, user):
    return wait_until("cart of " + user, lambda: shop.get("/api/carts/" + user, as_user=user)[0] == 200)


def wait_order(shop, order_id, status, user):
    def done():
        s, body = shop.get("/api/orders/" + order_id, as_user=user)
        return body if s == 200 and body["status"] == status else None
    return wait_until("order %s %s" % (order_id, status), done)


def order(shop, user, token):
    body = expect(shop.post("/api/orders", {"payment_token": token}, as_user=user), 202, where="order")
    check(body["status"] == "pending", "new order not pending: %r" % body)
    return body["id"]


def test(binary, data_dir, shops):
    shop = Shop(binary, data_dir).start()
    shops.append(shop)

    # -- registration --
    s, _ = shop.get("/api/carts/01a2a2a2-0000-7000-8000-000000000000")
    check(s == 401, "cart without a token: %d" % s)
    ann = register(shop, "Ann@Example.com")
    s, _ = shop.get("/api/carts/01a2a2a2-0000-7000-8000-000000000000", as_user=ann)
    check(s == 404, "cart of another (unknown) user: %d" % s)
    user = expect(shop.get("/api/users/" + ann, as_user=ann), 200, where="get user")
    check(user == {"id": ann, "email": "ann@example.com", "name": "Ann"}, "user: %r" % user)
    expect(shop.post("/api/users", {"email": "ann@example.COM", "name": "Other", "password": "another secret 42"}),
           409, "already_exists", "duplicate e-mail")
    # The refused registration left Ann's password as it was.
    check(shop.sign_in("ann@example.com")[0] == ann, "Ann signs in after the duplicate")
    wait_cart(shop, ann)
    cart = expect(shop.get("/api/carts/" + ann, as_user=ann), 200)
    check(cart == {"user_id": ann, "items": []}, "fresh cart: %r" % cart)
    wait_until("welcome e-mail", lambda: len(outbox_files(data_dir)) == 1)
    with open(os.path.join(data_dir, "outbox", outbox_files(data_dir)[0])) as f:
        mail = f.read()
    check("To: <ann@example.com>" in mail and "Subject: Welcome" in mail, "welcome e-mail: %r" % mail)
    wait_until("user stats", lambda: shop.get("/api/stats/users")[1]["total_users"] == 1)

    # -- an order that goes through --
    a = product(shop, "A-1", 250, 5)
    b = product(shop, "B-1", 1000, 2)
    p = expect(shop.get("/api/products/" + a), 200)
    check(p["stock_available"] == 5 and p["stock_reserved"] == 0 and p["price_cents"] == 250, "product: %r" % p)
    expect(shop.post("/api/carts/%s/items" % ann, {"product_id": a, "quantity": 2}, as_user=ann), 200)
    expect(shop.post("/api/carts/%s/items" % ann, {"product_id": b, "quantity": 1}, as_user=ann), 200)
    expect(shop.post("/api/carts/%s/items" % ann, {"product_id": b, "quantity": 1}, as_user=ann), 200)
    cart = expect(shop.delete("/api/carts/%s/items/%s" % (ann, b), as_user=ann), 200)
    check(cart["items"] == [{"product_id": a, "quantity": 2}], "cart after delete: %r" % cart)
    expect(shop.post("/api/carts/%s/items" % ann, {"product_id": b, "quantity": 1}, as_user=ann), 200)
    wait_until("cart view", lambda: len(shop.get("/api/carts/" + ann, as_user=ann)[1]["items"]) == 2)

    first = order(shop, ann, "tok_visa")
    done = wait_order(shop, first, "confirmed", ann)
    check(done["total_cents"] == 1500 and done["user_id"] == ann and done["reason"] == "", "order: %r" % done)
    check(sorted((i["product_id"], i["quantity"]) for i in done["items"]) == sorted([(a, 2), (b, 1)]),
          "order items: %r" % done["items"])
    wait_until("stock committed", lambda: shop.get("/api/products/" + a)[1]["stock_available"] == 3
               and shop.get("/api/products/" + a)[1]["stock_reserved"] == 0)
    wait_until("order stats", lambda: shop.get("/api/stats/orders")[1].get("confirmed") == 1)
    stats = shop.get("/api/stats/orders")[1]
    check(stats["revenue_cents"] == 1500 and stats["created"] == 1, "order stats: %r" % stats)
    wait_until("confirmation e-mail", lambda: len(outbox_files(data_dir)) == 2)
    wait_until("cart emptied", lambda: shop.get("/api/carts/" + ann, as_user=ann)[1]["items"] == [])
    mine = wait_until("Ann's orders", lambda: [o["id"] for o in shop.get("/api/orders", as_user=ann)[1]["orders"]])
    check(mine == [first], "Ann's orders: %r" % mine)
    listed = expect(shop.get("/api/products"), 200)["products"]
    check(sorted(x["sku"] for x in listed) == ["A-1", "B-1"], "product list: %r" % listed)

    # -- declined payment: compensated --
    expect(shop.post("/api/carts/%s/items" % ann, {"product_id": a, "quantity": 3}, as_user=ann), 200)
    declined = order(shop, ann, "tok_declined")
    body = wait_order(shop, declined, "cancelled", ann)
    check(body["reason"] == "payment_declined: card_declined", "declined reason: %r" % body)
    wait_until("stock released", lambda: shop.get("/api/products/" + a)[1]["stock_reserved"] == 0)
    check(shop.get("/api/products/" + a)[1]["stock_available"] == 3, "stock after decline")

    # -- out of stock: the other line's reservation is released too --
    expect(shop.post("/api/carts/%s/items" % ann, {"product_id": a, "quantity": 1}, as_user=ann), 200)
    expect(shop.post("/api/carts/%s/items" % ann, {"product_id": b, "quantity": 5}, as_user=ann), 200)
    short = order(shop, ann, "tok_visa")
    body = wait_order(shop, short, "cancelled", ann)
    check(body["reason"].startswith("out_of_stock: "), "short reason: %r" % body)
    wait_until("order stats after cancels", lambda: shop.get("/api/stats/orders")[1].get("cancelled") == 2)
    pa, pb = shop.get("/api/products/" + a)[1], shop.get("/api/products/" + b)[1]
    check((pa["stock_available"], pa["stock_reserved"]) == (3, 0), "A after short: %r" % pa)
    check((pb["stock_available"], pb["stock_reserved"]) == (1, 0), "B after short: %r" % pb)
    stats = shop.get("/api/stats/orders")[1]
    check(stats["cancel_reasons"] == {"payment_declined": 1, "out_of_stock": 1}, "reasons: %r" % stats)

    # No further e-mails: cancellations send none, and none was sent twice.
    check(len(outbox_files(data_dir)) == 2, "outbox: %r" % outbox_files(data_dir))

    # -- a gateway that never answers: retried, dead-lettered, the order waits with its stock --
    expect(shop.post("/api/carts/%s/items" % ann, {"product_id": a, "quantity": 1}, as_user=ann), 200)
    stuck = order(shop, ann, "tok_timeout")

    def payment_letters():
        return [d for d in shop.get("/admin/dead-letters?handler=payments.processor")[1]["dead_letters"]
                if d["stream"] == "payment-" + stuck]
    letter = wait_until("payment dead letter", payment_letters)[0]
    check(letter["event_type"] == "PaymentRequested" and letter["last_error"].startswith("timeout"),
          "payment dead letter: %r" % letter)
    check(shop.get("/api/orders/" + stuck, as_user=ann)[1]["status"] == "pending", "timed-out order must stay pending")
    check(shop.get("/api/products/" + a)[1]["stock_reserved"] == 1, "timed-out order keeps its reservation")
    expect(shop.post("/admin/dead-letters/%d/redrive" % letter["id"]), 504, "timeout", "redrive of a timeout")
    check(len(payment_letters()) == 1, "a failed redrive keeps the dead letter")
    health = shop.get("/health")
    check(health[0] == 200 and health[1]["checks"]["notifications.mailer"]["status"] == "up", "health: %r" % (health,))

    # One write path: every event the seed flows wrote (commands, handlers' follow-ups, the saga)
    # went through the bus, so its publish counter and the store's event count agree.
    def metric(name):
        with urllib.request.urlopen(shop.url + "/metrics", timeout=10) as r:
            text = r.read().decode()
        values = [float(ln.split()[-1]) for ln in text.splitlines() if ln.startswith(name + " ")]
        check(len(values) == 1, "metric %s: %r" % (name, values))
        return int(values[0])
    published, stored = metric("herald_bus_published_events_total"), metric("herald_store_events")
    check(published == stored and stored > 0, "bus published %d events, the store holds %d" % (published, stored))
    check(shop.stop() == 0, "graceful stop")


if __name__ == "__main__":
    run(test)
