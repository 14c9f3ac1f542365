"""End-to-end with a real SMTP server on loopback: with the server down, welcome e-mails are
retried and dead-lettered; once it is up, redriving the dead letters delivers each e-mail exactly
once (a second redrive finds nothing to do). A body line starting with '.' arrives intact: dot-
stuffed once on the wire (by libcurl) and un-stuffed by the server, neither lost nor doubled."""
import email
import email.policy
import os
import re
import shutil
import socket
import subprocess
import sys

from shoplib import Shop, check, expect, outbox_files, run, wait_until

HANDLER = "notifications.send_welcome_email"


def python_with_aiosmtpd():
    for candidate in [sys.executable, "/usr/bin/python3", shutil.which("python3")]:
        if candidate and subprocess.run([candidate, "-c", "import aiosmtpd"], capture_output=True).returncode == 0:
            return candidate
    raise AssertionError("no Python with aiosmtpd (Debian: python3-aiosmtpd)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def received_raw(directory):
    out = []
    if os.path.isdir(directory):
        for name in sorted(os.listdir(directory)):
            if name.endswith(".eml"):
                with open(os.path.join(directory, name), "rb") as f:
                    out.append(f.read())
    return out


def received(directory):
    return [m.decode(errors="replace") for m in received_raw(directory)]


def test(binary, data_dir, shops):
    python = python_with_aiosmtpd()
    port = free_port()
    inbox = os.path.join(data_dir, "smtp-inbox")
    shop = Shop(binary, data_dir, ["--smtp-url", "smtp://127.0.0.1:%d" % port, "--retry-max-attempts", "3",
                                   "--retry-initial-delay-ms", "20", "--retry-max-delay-ms", "100"]).start()
    shops.append(shop)

    emails = ["s1@example.com", "s2@example.com"]
    users = [shop.register(e, "S") for e in emails]

    def letters():
        s, body = shop.get("/admin/dead-letters?handler=" + HANDLER)
        return body["dead_letters"] if s == 200 else []
    dead = wait_until("welcome e-mails dead-lettered", lambda: len(letters()) == 2 and letters())
    for d in dead:
        check(d["attempts"] == 3 and not d["parked"] and d["last_error"].startswith("unavailable"),
              "dead letter: %r" % d)
    # The other handlers of the same event were not held up.
    for u in users:
        wait_until("cart", lambda: shop.get("/api/carts/" + u, as_user=u)[0] == 200)
    check(received(inbox) == [], "nothing can have been delivered yet")

    sink = subprocess.Popen([python, os.path.join(os.path.dirname(os.path.abspath(__file__)), "smtp_sink.py"),
                             str(port), inbox], stdout=subprocess.PIPE, text=True)
    try:
        check(sink.stdout.readline().strip() == "READY", "smtp sink did not start")
        for d in dead:
            expect(shop.post("/admin/dead-letters/%d/redrive" % d["id"]), 200, where="redrive")
        check(letters() == [], "dead letters left after redrive: %r" % letters())
        mails = wait_until("two e-mails", lambda: len(received(inbox)) == 2 and received(inbox))
        rcpts = sorted(re.search(r"^To: <([^>]+)>", m, re.M).group(1) for m in mails)
        check(rcpts == emails, "recipients: %r" % rcpts)
        ids = {re.search(r"^Message-ID: <([^>]+)>", m, re.M).group(1) for m in mails}
        check(len(ids) == 2, "message ids: %r" % ids)
        # A second redrive of the same entries: they are gone, and nothing is sent again.
        for d in dead:
            expect(shop.post("/admin/dead-letters/%d/redrive" % d["id"]), 404, "not_found", "second redrive")
        # New registrations go straight through now.
        shop.register("s3@example.com", "S")
        wait_until("third e-mail", lambda: len(received(inbox)) == 3)

        # The order confirmation lists each product at the start of a line.
        dot = expect(shop.post("/api/products", {"sku": "DOT-1", "name": ".hidden", "price_cents": 250,
                                                 "stock": 3}), 201)["id"]
        dots = expect(shop.post("/api/products", {"sku": "DOT-2", "name": "..", "price_cents": 100,
                                                  "stock": 3}), 201)["id"]
        expect(shop.post("/api/carts/%s/items" % users[0], {"product_id": dot, "quantity": 1}, as_user=users[0]), 200)
        expect(shop.post("/api/carts/%s/items" % users[0], {"product_id": dots, "quantity": 1}, as_user=users[0]),
               200)
        order = expect(shop.post("/api/orders", {"payment_token": "tok_visa"}, as_user=users[0]), 202)["id"]
        wait_until("order confirmation", lambda: len(received(inbox)) == 4)
        confirmation = [m for m in received_raw(inbox) if ("Subject: Your order %s" % order).encode() in m]
        check(len(confirmation) == 1, "confirmations: %d" % len(confirmation))
        lines = confirmation[0].split(b"\r\n")
        check(b".hidden (DOT-1): 1 x 2.50" in lines and b".. (DOT-2): 1 x 1.00" in lines,
              "dot lines lost or doubled: %r" % lines)
        check(not any(line.startswith(b"...") or line.startswith(b"..h") for line in lines),
              "a dot was doubled: %r" % lines)
        for raw in received_raw(inbox):
            msg = email.message_from_bytes(raw, policy=email.policy.strict)
            check(msg.defects == [], "defects: %r" % msg.defects)

        check(shop.stop() == 0, "graceful stop")
        check(len(received(inbox)) == 4, "e-mails after stop: %d" % len(received(inbox)))
        check(outbox_files(data_dir) == [], "SMTP mode must not write the outbox")
    finally:
        sink.terminate()
        sink.wait(timeout=10)


if __name__ == "__main__":
    run(test)
