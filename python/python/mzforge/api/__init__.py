"""The mzforge analysis API (``pip install "mzforge[api]"``, ``mzforge-api``): a FastAPI service
that takes uploads, runs analyses with the engine and serves results. See ``python/api/README.md``."""

from .app import create_app
from .settings import Settings

__all__ = ["create_app", "Settings"]
