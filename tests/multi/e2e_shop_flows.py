"""The shop's own end-to-end flows (tests/shop/e2e_flows.py, e2e_bad_input.py) run unchanged with
`herald_shop --store postgres://…`: each in a fresh database, its Shop instances given the
PostgreSQL URL (leases on by default for it).

Usage: e2e_shop_flows.py PATH/TO/herald_shop   (needs HERALD_TEST_POSTGRES_URL; exit 77 = skipped)"""
import importlib
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "shop"))
import shoplib  # noqa: E402
from pglib import FreshDatabase, base_url_or_skip  # noqa: E402

SUITES = ["e2e_flows", "e2e_bad_input"]


def run_suite(module_name, binary, base):
    module = importlib.import_module(module_name)

    class PostgresShop(shoplib.Shop):
        def __init__(self, binary, data_dir, extra_args=()):
            super().__init__(binary, data_dir, ["--store", PostgresShop.url_of_db] + list(extra_args))

    data_dir = tempfile.mkdtemp(prefix="herald-multi-flows-")
    shops = []
    started = time.monotonic()
    try:
        with FreshDatabase(base) as db:
            PostgresShop.url_of_db = db.url
            module.Shop = PostgresShop  # the suite builds its Shop through its module-level name
            shoplib.run_shops(module.test, binary, data_dir, shops)
            shoplib.check(not os.path.exists(os.path.join(data_dir, "events.db")),
                          "the shop wrote an SQLite store; it should have used " + db.url)
            shoplib.check(shops, "the suite started no shop")
        print("PASS %s on PostgreSQL (%.1f s)" % (module_name, time.monotonic() - started))
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)


def main():
    if len(sys.argv) < 2:
        print("usage: %s PATH/TO/herald_shop" % sys.argv[0])
        sys.exit(2)
    binary = os.path.abspath(sys.argv[1])
    base = base_url_or_skip()
    for name in SUITES:
        run_suite(name, binary, base)


if __name__ == "__main__":
    main()
