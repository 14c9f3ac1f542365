"""End-to-end: GET /api/products and GET /api/orders page with ?limit= and ?after=. Paging through
more items than a page holds returns every item exactly once, in creation order, with "next" null
on the last page only; GET /api/orders pages over the signed-in user's orders alone (through the
per-user index) and another user's ?user_id= is 404; bad paging parameters are 400s."""
from shoplib import Shop, check, expect, run, wait_until

UNKNOWN = "01a2a2a2-0000-7000-8000-00000000dead"


def page_through(shop, path, key, limit=None, as_user=None):
    """Every item of `path`, following "next"; checks each page's size and cursor."""
    items, after, pages = [], None, 0
    while True:
        query = []
        if limit is not None:
            query.append("limit=%d" % limit)
        if after is not None:
            query.append("after=" + after)
        sep = "&" if "?" in path else "?"
        body = expect(shop.get(path + (sep + "&".join(query) if query else ""), as_user=as_user), 200, where=path)
        check(set(body) == {key, "next"}, "%s: keys %r" % (path, sorted(body)))
        page = body[key]
        check(len(page) <= (limit or 50), "%s: page of %d" % (path, len(page)))
        items += page
        pages += 1
        check(pages <= 1000, "%s: no end" % path)
        if body["next"] is None:
            return items, pages
        check(len(page) == (limit or 50), "%s: a page before the last holds %d" % (path, len(page)))
        check(body["next"] == page[-1]["id"], "%s: next %r is not the last id" % (path, body["next"]))
        after = body["next"]


def test(binary, data_dir, shops):
    shop = Shop(binary, data_dir).start()
    shops.append(shop)

    # -- products: more than the default page of 50 --
    created = []
    for i in range(57):
        created.append(expect(shop.post("/api/products", {"sku": "P-%03d" % i, "name": "Product %d" % i,
                                                          "price_cents": 100 + i, "stock": i}), 201)["id"])
    def views_caught_up():
        items = page_through(shop, "/api/products", "products", 200)[0]
        return len(items) == 57 and all(p["stock_available"] == i for i, p in enumerate(items))
    wait_until("products and stock views", views_caught_up)
    first = expect(shop.get("/api/products"), 200)
    check(len(first["products"]) == 50 and first["next"] == first["products"][-1]["id"], "default page")
    for limit in (None, 1, 7, 56, 57, 200):
        items, pages = page_through(shop, "/api/products", "products", limit)
        ids = [p["id"] for p in items]
        check(ids == created, "limit %r: ids out of order, missing or repeated" % limit)
        expected_pages = -(-57 // (limit or 50))
        # A page that ends exactly at the last product says so (next null), without an empty page.
        check(pages == expected_pages, "limit %r: %d pages, expected %d" % (limit, pages, expected_pages))
        for p, i in zip(items, range(57)):
            check(p["sku"] == "P-%03d" % i and p["price_cents"] == 100 + i and p["stock_available"] == i
                  and p["stock_reserved"] == 0 and p["stock_sold"] == 0, "product %d: %r" % (i, p))
    last = expect(shop.get("/api/products?after=" + created[-1]), 200)
    check(last == {"products": [], "next": None}, "after the last product: %r" % last)

    # -- orders: two users, interleaved --
    ann = shop.register("ann@example.com", "Ann")
    bob = shop.register("bob@example.com", "Bob")
    for u in (ann, bob):
        wait_until("cart", lambda: shop.get("/api/carts/" + u, as_user=u)[0] == 200)
    placed = {ann: [], bob: []}
    for i in range(11):
        who = bob if i % 4 == 0 else ann  # bob: 3 orders, ann: 8
        expect(shop.post("/api/carts/%s/items" % who, {"product_id": created[i + 1], "quantity": 1}, as_user=who),
               200)
        placed[who].append(expect(shop.post("/api/orders", {"payment_token": "tok_visa"}, as_user=who), 202)["id"])
    for who in (ann, bob):
        wait_until("orders view", lambda: len(page_through(shop, "/api/orders", "orders", 200, who)[0])
                   == len(placed[who]))
        for limit in (None, 1, 2, 3, 8, 50):
            for path in ("/api/orders", "/api/orders?user_id=" + who):
                items, pages = page_through(shop, path, "orders", limit, who)
                check([o["id"] for o in items] == placed[who], "orders of %s, limit %r" % (who, limit))
                check(all(o["user_id"] == who for o in items), "another user's order in the list")
                check(pages == -(-len(placed[who]) // (limit or 50)),
                      "orders of %s, limit %r: %d pages" % (who, limit, pages))
    expect(shop.get("/api/orders?user_id=" + bob, as_user=ann), 404, "not_found", "Bob's orders for Ann")
    expect(shop.get("/api/orders?user_id=" + UNKNOWN, as_user=ann), 404, "not_found", "orders of nobody")
    last = expect(shop.get("/api/orders?after=" + placed[ann][-1], as_user=ann), 200)
    check(last == {"orders": [], "next": None}, "after Ann's last order: %r" % last)

    # -- bad paging parameters --
    for route in ("/api/products", "/api/orders", "/api/orders?user_id=" + ann):
        sep = "&" if "?" in route else "?"
        for q in ("limit=0", "limit=201", "limit=-1", "limit=abc", "limit=", "limit=1.5", "after=", "after=nope",
                  "after=../x", "after=" + created[0][:-1]):
            got = expect(shop.get(route + sep + q, as_user=ann), 400, "invalid_argument", route + sep + q)
            check(("'%s'" % q.split("=")[0]) in got["message"], "message must name the parameter: %r" % got)
    check(shop.stop() == 0, "graceful stop")


if __name__ == "__main__":
    run(test)
