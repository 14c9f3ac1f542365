"""End-to-end: every shop route with bad input answers the expected 4xx and error body, and
nothing is written (the store's total_events does not move). Every request carries the signed-in
user's token, so the user routes' own checks are what answers."""
from shoplib import PASSWORD, Shop, check, expect, run, wait_until

UNKNOWN = "01a2a2a2-0000-7000-8000-00000000dead"


def total_events(shop):
    return expect(shop.get("/admin/stats"), 200)["store"]["total_events"]


def test(binary, data_dir, shops):
    shop = Shop(binary, data_dir, ["--body-limit-bytes", "4096"]).start()
    shops.append(shop)
    user = shop.register("bad@example.com", "B")
    product = expect(shop.post("/api/products", {"sku": "X-1", "name": "X", "price_cents": 5, "stock": 1}), 201)["id"]
    wait_until("cart", lambda: shop.get("/api/carts/" + user, as_user=user)[0] == 200)
    before = total_events(shop)

    bad = "invalid_argument"
    cases = [
        # users
        ("POST", "/api/users", None, "{", 400, bad),
        ("POST", "/api/users", None, "", 400, bad),
        ("POST", "/api/users", None, "[1]", 400, bad),
        ("POST", "/api/users", {"name": "N"}, None, 400, bad),
        ("POST", "/api/users", {"email": 5, "name": "N"}, None, 400, bad),
        ("POST", "/api/users", {"email": "no-at-sign", "name": "N"}, None, 400, bad),
        ("POST", "/api/users", {"email": "n@example.com"}, None, 400, bad),
        ("POST", "/api/users", {"email": "n@example.com", "name": ["N"]}, None, 400, bad),
        ("POST", "/api/users", {"email": "n@example.com", "name": ""}, None, 400, bad),
        ("POST", "/api/users", {"email": "n@example.com", "name": "N"}, None, 400, bad),
        ("POST", "/api/users", {"email": "n@example.com", "name": "N", "password": 1234567890}, None, 400, bad),
        ("POST", "/api/users", {"email": "n@example.com", "name": "N", "password": "short"}, None, 400, bad),
        ("POST", "/api/users", {"email": "n@example.com", "name": "N", "password": "aaaabbbbaaaa"}, None, 400, bad),
        ("POST", "/api/users", {"email": "n@example.com", "name": "N", "password": "Password123"}, None, 400, bad),
        ("POST", "/api/users", {"email": "nina@example.com", "name": "N", "password": "xNINA-1234z"}, None, 400,
         bad),
        ("POST", "/api/users", {"email": "n@example.com", "name": "N", "password": "x" * 129}, None, 400, bad),
        ("POST", "/api/users", {"email": "n@example.com", "name": "N", "password": "tab\there-123"}, None, 400, bad),
        ("POST", "/api/users", {"email": "no-at-sign", "name": "N", "password": PASSWORD}, None, 400, bad),
        ("POST", "/api/users", {"email": "BAD@example.com", "name": "dup", "password": PASSWORD}, None, 409,
         "already_exists"),
        # sessions and password resets
        ("POST", "/api/sessions", None, "{", 400, bad),
        ("POST", "/api/sessions", {"email": "bad@example.com"}, None, 400, bad),
        ("POST", "/api/sessions", {"password": PASSWORD}, None, 400, bad),
        ("POST", "/api/sessions", {"email": "no-at-sign", "password": PASSWORD}, None, 400, bad),
        ("POST", "/api/sessions", {"email": "bad@example.com", "password": ["x"]}, None, 400, bad),
        ("POST", "/api/sessions", {"email": "bad@example.com", "password": "p" * 1025}, None, 400, bad),
        ("POST", "/api/sessions", {"email": "bad@example.com", "password": "wrong password 1"}, None, 401,
         "unauthorized"),
        ("POST", "/api/password-resets", {}, None, 400, bad),
        ("POST", "/api/password-resets", {"email": "no-at-sign"}, None, 400, bad),
        ("POST", "/api/password-resets/confirm", {"password": PASSWORD}, None, 400, bad),
        ("POST", "/api/password-resets/confirm", {"token": "0" * 64}, None, 400, bad),
        ("POST", "/api/password-resets/confirm", {"token": "nope", "password": PASSWORD}, None, 400, bad),
        ("POST", "/api/password-resets/confirm", {"token": "0" * 64, "password": PASSWORD}, None, 400, bad),
        ("GET", "/api/users/not-a-uuid", None, None, 400, bad),
        ("GET", "/api/users/" + UNKNOWN, None, None, 404, "not_found"),
        # products
        ("POST", "/api/products", None, "{\"sku\":", 400, bad),
        ("POST", "/api/products", {"name": "n", "price_cents": 1, "stock": 1}, None, 400, bad),
        ("POST", "/api/products", {"sku": "S", "price_cents": 1, "stock": 1}, None, 400, bad),
        ("POST", "/api/products", {"sku": "S", "name": "n", "stock": 1}, None, 400, bad),
        ("POST", "/api/products", {"sku": "S", "name": "n", "price_cents": 1}, None, 400, bad),
        ("POST", "/api/products", {"sku": "S", "name": "n", "price_cents": -1, "stock": 1}, None, 400, bad),
        ("POST", "/api/products", {"sku": "S", "name": "n", "price_cents": 1, "stock": -5}, None, 400, bad),
        ("POST", "/api/products", {"sku": "S", "name": "n", "price_cents": 1.5, "stock": 1}, None, 400, bad),
        ("POST", "/api/products", {"sku": "S", "name": "n", "price_cents": "1", "stock": 1}, None, 400, bad),
        ("POST", "/api/products", {"sku": "has space", "name": "n", "price_cents": 1, "stock": 1}, None, 400, bad),
        ("POST", "/api/products", {"sku": "X-1", "name": "again", "price_cents": 1, "stock": 1}, None, 409,
         "already_exists"),
        ("GET", "/api/products/nope", None, None, 400, bad),
        ("GET", "/api/products/" + UNKNOWN, None, None, 404, "not_found"),
        # carts
        ("GET", "/api/carts/nope", None, None, 400, bad),
        ("GET", "/api/carts/" + UNKNOWN, None, None, 404, "not_found"),
        ("POST", "/api/carts/%s/items" % user, None, "{{", 400, bad),
        ("POST", "/api/carts/%s/items" % user, {"quantity": 1}, None, 400, bad),
        ("POST", "/api/carts/%s/items" % user, {"product_id": product}, None, 400, bad),
        ("POST", "/api/carts/%s/items" % user, {"product_id": product, "quantity": 0}, None, 400, bad),
        ("POST", "/api/carts/%s/items" % user, {"product_id": product, "quantity": -2}, None, 400, bad),
        ("POST", "/api/carts/%s/items" % user, {"product_id": product, "quantity": "2"}, None, 400, bad),
        ("POST", "/api/carts/%s/items" % user, {"product_id": product, "quantity": 1.5}, None, 400, bad),
        ("POST", "/api/carts/%s/items" % user, {"product_id": 7, "quantity": 1}, None, 400, bad),
        ("POST", "/api/carts/%s/items" % user, {"product_id": "nope", "quantity": 1}, None, 400, bad),
        ("POST", "/api/carts/%s/items" % user, {"product_id": UNKNOWN, "quantity": 1}, None, 404, "not_found"),
        ("POST", "/api/carts/%s/items" % UNKNOWN, {"product_id": product, "quantity": 1}, None, 404, "not_found"),
        ("POST", "/api/carts/nope/items", {"product_id": product, "quantity": 1}, None, 400, bad),
        ("DELETE", "/api/carts/%s/items/%s" % (user, product), None, None, 404, "not_found"),
        ("DELETE", "/api/carts/%s/items/nope" % user, None, None, 400, bad),
        ("DELETE", "/api/carts/%s/items/%s" % (UNKNOWN, product), None, None, 404, "not_found"),
        # orders
        ("POST", "/api/orders", None, "nope", 400, bad),
        ("POST", "/api/orders", {}, None, 400, bad),
        ("POST", "/api/orders", {"user_id": user}, None, 400, bad),
        ("POST", "/api/orders", {"user_id": user, "payment_token": 1}, None, 400, bad),
        ("POST", "/api/orders", {"user_id": "nope", "payment_token": "tok"}, None, 400, bad),
        ("POST", "/api/orders", {"user_id": UNKNOWN, "payment_token": "tok"}, None, 404, "not_found"),
        ("POST", "/api/orders", {"user_id": user, "payment_token": "tok"}, None, 409, "failed_precondition"),
        ("POST", "/api/orders", {"payment_token": "tok"}, None, 409, "failed_precondition"),
        ("GET", "/api/orders?user_id=" + UNKNOWN, None, None, 404, "not_found"),
        ("GET", "/api/orders?limit=0", None, None, 400, bad),
        ("GET", "/api/orders/nope", None, None, 400, bad),
        ("GET", "/api/orders/" + UNKNOWN, None, None, 404, "not_found"),
        ("GET", "/api/orders?user_id=nope", None, None, 400, bad),
        # transport
        ("POST", "/api/users", None, '{"email":"big@example.com","name":"%s"}' % ("x" * 8000), 413,
         "payload_too_large"),
        ("POST", "/api/products", None, '{"pad":"%s"}' % ("y" * 5000), 413, "payload_too_large"),
        ("GET", "/api/nothing", None, None, 404, "route_not_found"),
        ("PUT", "/api/users", {"email": "p@example.com", "name": "P"}, None, 405, "method_not_allowed"),
    ]
    for method, path, body, raw, status, error in cases:
        got = shop.request(method, path, body=body, raw=raw, as_user=user)
        expect(got, status, error, "%s %s %s" % (method, path, raw if raw is not None else body))
    after = total_events(shop)
    check(after == before, "bad requests wrote %d event(s)" % (after - before))
    # And the read models did not move either.
    check(shop.get("/api/stats/users")[1]["total_users"] == 1, "user stats moved")
    check(shop.get("/api/carts/" + user, as_user=user)[1]["items"] == [], "cart moved")
    check(shop.get("/api/products/" + product)[1]["stock_available"] == 1, "stock moved")
    check(shop.stop() == 0, "graceful stop")


if __name__ == "__main__":
    run(test)
