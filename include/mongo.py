"""The one place that builds a MongoDB client.

Product code calls :func:`get_client` and :func:`get_database`. The server
comes from ``MONGO_URI`` or, inside Airflow, the ``mongo_default`` connection. Locally both point at
the stack's MongoDB stand-in, in production at Atlas.
"""

from __future__ import annotations

import os

from pymongo import MongoClient
from pymongo.database import Database

DEFAULT_DATABASE = "exchange"


def mongo_uri() -> str:
    """Return the MongoDB URI from ``MONGO_URI`` or the Airflow connection."""
    uri = os.environ.get("MONGO_URI")
    if uri:
        return uri
    try:
        from airflow.providers.mongo.hooks.mongo import MongoHook
    except ImportError as exc:
        raise RuntimeError(
            "MONGO_URI is not set and Airflow's mongo provider is not installed: "
            "set MONGO_URI to a mongodb:// URI"
        ) from exc
    return MongoHook(mongo_conn_id="mongo_default").uri


def get_client(uri: str | None = None, **options) -> MongoClient:
    """Build a pymongo client for ``uri`` (default: :func:`mongo_uri`)."""
    options.setdefault("serverSelectionTimeoutMS", 10_000)
    options.setdefault("tz_aware", True)
    return MongoClient(uri or mongo_uri(), **options)


def get_database(client: MongoClient, name: str | None = None) -> Database:
    """Return the database ``name``, ``MONGO_DB``, the URI's default or ``exchange``."""
    name = name or os.environ.get("MONGO_DB")
    if name:
        return client[name]
    return client.get_default_database(default=DEFAULT_DATABASE)
