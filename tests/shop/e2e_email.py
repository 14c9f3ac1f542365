"""End-to-end: the e-mails herald_shop writes are well-formed MIME whatever the names, and no input
can add a header or replace a body.

Registers users with non-ASCII, long and encoded-word-looking names, places an order with
products named ".hidden" and non-ASCII, and tries header-injection payloads (each must be a 400
naming the field, writing nothing). Then every .eml in the outbox is parsed with Python's own
MIME parser: exactly the headers Herald writes, no defects, CRLF everywhere, and the decoded
Subject and body equal to the Unicode text that went in."""
import email
import email.policy
import email.utils
import os
import re

from shoplib import PASSWORD, Shop, check, expect, outbox_files, run, wait_until

HEADERS = ["Message-ID", "Date", "From", "To", "Subject", "MIME-Version", "Content-Type",
           "Content-Transfer-Encoding"]
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def total_events(shop):
    return expect(shop.get("/admin/stats"), 200)["store"]["total_events"]


def long_name():
    """200 characters (the limit) but 300+ bytes, with 4-byte characters among them."""
    base = "Ünïcødé Ŝtřîñg 🦆 "
    name = (base * 20)[:200].rstrip()
    while len(name) < 200:
        name += "ß"
    return name


def injections():
    """(body, field) pairs that must be refused."""
    names = ["Eve\r\nBcc: x@evil.test", "Eve\n\nreplaced body", "Eve\n.\nQUIT", "Eve\rBcc: x@evil.test",
             "Eve\u2028Bcc: x@evil.test", "Eve\u2029", "Eve\u0085Bcc: x", "Eve\x00", "Eve\tTab", "Eve\x7f",
             "Eve\x1b[31m", "x" * 201, "ü" * 201]
    emails = ["eve@example.com\r\nBcc: x@evil.test", "eve@example.com\n", "eve@example.com>", "<eve@example.com>",
              "Eve <eve@example.com>", "a b@example.com", '"eve"@example.com', "eve@example.com,x@evil.test",
              "eve@example.com;x@evil.test", "eve(x)@example.com", "eve\\@example.com", "eve@exa\u2028mple.com"]
    cases = [({"email": "eve@example.com", "name": n, "password": PASSWORD}, "name") for n in names]
    cases += [({"email": e, "name": "Eve", "password": PASSWORD}, "email") for e in emails]
    return cases


def product_injections():
    names = ["Mug\r\nBcc: x@evil.test", "Mug\n\nbody", "Mug\u2028", "Mug\x00", "é" * 201]
    skus = ["MUG\r\n", "MUG\u2028", "MUG 1"]
    cases = [({"sku": "INJ-1", "name": n, "price_cents": 1, "stock": 1}, "name") for n in names]
    cases += [({"sku": s, "name": "Mug", "price_cents": 1, "stock": 1}, "sku") for s in skus]
    return cases


def check_crlf(raw, where):
    check(b"\n" not in raw.replace(b"\r\n", b""), "%s: bare LF" % where)
    check(b"\r" not in raw.replace(b"\r\n", b""), "%s: bare CR" % where)
    check(raw.endswith(b"\r\n"), "%s: does not end in CRLF" % where)


def parse(raw, where):
    # strict raises on any defect; default keeps them in .defects, which must be empty too.
    email.message_from_bytes(raw, policy=email.policy.strict)
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    check(msg.defects == [], "%s: defects %r" % (where, msg.defects))
    check(list(msg.keys()) == HEADERS, "%s: headers %r" % (where, list(msg.keys())))
    for name in HEADERS:
        check(not getattr(msg[name], "defects", ()), "%s: %s defects %r" % (where, name, msg[name].defects))
    check(not msg.is_multipart() and msg.get_content_type() == "text/plain"
          and msg.get_content_charset() == "utf-8", "%s: not one text/plain part" % where)
    check(msg["MIME-Version"] == "1.0", "%s: MIME-Version %r" % (where, msg["MIME-Version"]))
    header_block = raw[:raw.index(b"\r\n\r\n")]
    for line in header_block.split(b"\r\n"):
        check(len(line) <= 76, "%s: header line of %d characters: %r" % (where, len(line), line))
        check(all(b < 0x80 for b in line), "%s: non-ASCII header line %r" % (where, line))
    date = email.utils.parsedate_to_datetime(str(msg["Date"]))
    check(date.utcoffset() is not None and date.utcoffset().total_seconds() == 0, "%s: Date %r" % (where, msg["Date"]))
    body = raw[raw.index(b"\r\n\r\n") + 4:]
    content = msg.get_content().replace("\r\n", "\n")
    cte = msg["Content-Transfer-Encoding"]
    if all(b < 0x80 for b in content.encode()) and all(len(l) <= 998 for l in content.split("\n")):
        check(cte == "7bit", "%s: ASCII body sent as %r" % (where, cte))
    else:
        check(cte == "quoted-printable", "%s: non-ASCII body sent as %r" % (where, cte))
        check(all(len(l) <= 76 for l in body.split(b"\r\n")), "%s: quoted-printable line over 76" % where)
    return msg, content


def check_mailbox(msg, header, name, address, where):
    addresses = msg[header].addresses
    check(len(addresses) == 1 and addresses[0].addr_spec == address and addresses[0].display_name == name,
          "%s: %s holds %r, expected %r <%s>" % (where, header, addresses, name, address))


def test(binary, data_dir, shops):
    shop = Shop(binary, data_dir).start()
    shops.append(shop)

    # -- input that could reach a header or a body line: refused, nothing written --
    before = total_events(shop)
    for body, field in injections():
        got = expect(shop.post("/api/users", body), 400, "invalid_argument", "register %r" % body)
        check("field '%s'" % field in got["message"], "message must name %r: %r" % (field, got))
    # Invalid UTF-8, sent as raw bytes: the JSON parser or the name check refuses it.
    expect(shop.post("/api/users", raw=b'{"email":"u8@example.com","name":"a\xff\xfeb"}'), 400, "invalid_argument",
           "invalid UTF-8")
    expect(shop.post("/api/users", raw='{"email":"u8@example.com","name":"a\\ud800b"}'), 400, "invalid_argument",
           "lone surrogate")
    for body, field in product_injections():
        got = expect(shop.post("/api/products", body), 400, "invalid_argument", "product %r" % body)
        check("field '%s'" % field in got["message"], "message must name %r: %r" % (field, got))
    check(total_events(shop) == before, "refused requests wrote %d event(s)" % (total_events(shop) - before))
    check(outbox_files(data_dir) == [], "refused requests wrote e-mails: %r" % outbox_files(data_dir))

    # -- names that must go through, and come back exactly --
    users = {
        "zoe@example.com": "Zoë Ünicode",
        "long@example.com": long_name(),
        "ann@example.com": "Ann",
        "fold@example.com": " ".join(["Annabelle"] * 18),
        "word@example.com": "=?UTF-8?B?QmNjOiB4QGV2aWwudGVzdA==?=",
        "dots@example.com": "Dr. J. R. \"Bob\" Dobbs, Jr.",
    }
    check(len(users["long@example.com"]) == 200 and len(users["long@example.com"].encode()) > 300, "long name")
    ids = {}
    for address, name in users.items():
        ids[address] = shop.register(address, name)
        check(expect(shop.get("/api/users/" + ids[address], as_user=ids[address]), 200)["name"] == name,
              "stored name of %s" % address)

    # -- an order whose confirmation lists products named ".hidden" and non-ASCII --
    zoe = ids["zoe@example.com"]
    wait_until("cart", lambda: shop.get("/api/carts/" + zoe, as_user=zoe)[0] == 200)
    dot = expect(shop.post("/api/products", {"sku": "DOT-1", "name": ".hidden", "price_cents": 250, "stock": 5}),
                 201)["id"]
    creme = expect(shop.post("/api/products", {"sku": "CREME-1", "name": "Crème brûlée ☕", "price_cents": 400,
                                                "stock": 5}), 201)["id"]
    expect(shop.post("/api/carts/%s/items" % zoe, {"product_id": dot, "quantity": 1}, as_user=zoe), 200)
    expect(shop.post("/api/carts/%s/items" % zoe, {"product_id": creme, "quantity": 2}, as_user=zoe), 200)
    order = expect(shop.post("/api/orders", {"payment_token": "tok_visa"}, as_user=zoe), 202)["id"]

    expected = len(users) + 1
    wait_until("%d e-mails" % expected, lambda: len(outbox_files(data_dir)) == expected)
    welcomes = {}
    confirmations = []
    for name in outbox_files(data_dir):
        with open(os.path.join(data_dir, "outbox", name), "rb") as f:
            raw = f.read()
        check_crlf(raw, name)
        msg, content = parse(raw, name)
        check(re.fullmatch("<%s@herald-shop>" % UUID, msg["Message-ID"]) is not None
              and msg["Message-ID"][1:37] == name[:-4], "%s: Message-ID %r" % (name, msg["Message-ID"]))
        check_mailbox(msg, "From", "Herald Shop", "shop@herald.local", name)
        to = msg["To"].addresses[0].addr_spec
        check(to in users, "%s: unexpected recipient %r" % (name, to))
        check_mailbox(msg, "To", "", to, name)
        if str(msg["Subject"]).startswith("Welcome"):
            welcomes[to] = (msg, content)
        else:
            confirmations.append((msg, content))

    check(sorted(welcomes) == sorted(users), "welcome e-mails for %r" % sorted(welcomes))
    for address, (msg, content) in welcomes.items():
        name = users[address]
        check(str(msg["Subject"]) == "Welcome to the Herald shop, " + name,
              "%s: subject %r" % (address, str(msg["Subject"])))
        check(content == "Hello %s,\n\nyour account %s is ready.\n" % (name, ids[address]),
              "%s: body %r" % (address, content))

    check(len(confirmations) == 1, "confirmations: %d" % len(confirmations))
    msg, content = confirmations[0]
    check(str(msg["Subject"]) == "Your order %s is confirmed" % order, "confirmation subject %r" % str(msg["Subject"]))
    lines = content.split("\n")
    check(".hidden (DOT-1): 1 x 2.50" in lines, "confirmation lines %r" % lines)
    check("Crème brûlée ☕ (CREME-1): 2 x 4.00" in lines, "confirmation lines %r" % lines)
    check("Total: 10.50" in lines, "confirmation lines %r" % lines)
    check(shop.stop() == 0, "graceful stop")


if __name__ == "__main__":
    run(test)
