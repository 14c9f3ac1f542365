"""A fresh, empty PostgreSQL database per test on the server named by HERALD_TEST_POSTGRES_URL
(created with psql, dropped at the end), and the skip convention of the multi-instance tests."""
import glob
import os
import shutil
import subprocess
import sys
import urllib.parse
import uuid

SKIP = 77  # ctest SKIP_RETURN_CODE


def base_url_or_skip():
    url = os.environ.get("HERALD_TEST_POSTGRES_URL", "")
    if not url:
        print("SKIP: HERALD_TEST_POSTGRES_URL is not set (scripts/pg-temp start gives one)")
        sys.exit(SKIP)
    return url


def psql_binary():
    found = shutil.which("psql")
    if found:
        return found
    for path in sorted(glob.glob("/usr/lib/postgresql/*/bin/psql"), reverse=True):
        return path
    print("SKIP: no psql binary to create a test database")
    sys.exit(SKIP)


class FreshDatabase:
    """CREATE DATABASE herald_multi_<random> on enter, DROP ... WITH (FORCE) on exit."""

    def __init__(self, base_url):
        self.base_url = base_url
        self.name = "herald_multi_" + uuid.uuid4().hex[:12]
        parts = urllib.parse.urlsplit(base_url)
        self.url = urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/" + self.name, parts.query, ""))
        self.psql = psql_binary()

    def _sql(self, statement):
        subprocess.run([self.psql, "-v", "ON_ERROR_STOP=1", "-q", "-d", self.base_url, "-c", statement],
                       check=True, stdout=subprocess.DEVNULL, timeout=60)

    def __enter__(self):
        self._sql('CREATE DATABASE "%s"' % self.name)
        return self

    def __exit__(self, *exc):
        try:
            self._sql('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % self.name)
        except Exception as e:  # a leftover database must not hide the test's own outcome
            print("warning: cannot drop test database %s: %s" % (self.name, e))
        return False
