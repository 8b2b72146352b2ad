"""The API tests' fixtures live in apitest.py (importable by the tests under a unique name)."""

from apitest import api, db_url, moto, postgres  # noqa: F401
