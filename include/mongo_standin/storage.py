"""The in-memory data behind the stand-in: one mongomock client and its lock.

mongomock removes TTL-expired documents lazily, on every read. mongod instead
deletes them from a background TTL monitor that runs every 60 seconds, so an
expired document stays readable until the next pass. The store classes below
turn off the lazy removal, and :meth:`Storage.remove_expired_documents` is
the monitor's pass. Tests written against the stand-in then also hold
against mongod.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import mongomock
from bson import ObjectId
from mongomock.collection import Collection
from mongomock.filtering import filter_applies
from mongomock.store import CollectionStore, DatabaseStore, ServerStore

log = logging.getLogger(__name__)

# NOTE: these subclasses override private parts of mongomock
# (``_remove_expired_documents``, ``_ttl_indexes``, ``_collections``,
# ``_databases``, ``_iter_documents``). They are written against
# mongomock 4.3.0, the pinned version.

# _id types for which a dictionary lookup finds every match. Numbers are left
# out because MongoDB matches 1, 1.0 and Decimal128("1") as equal.
_LOOKUP_ID_TYPES = (str, ObjectId)


class _IdLookupCollection(Collection):
    """A mongomock collection that finds a document by ``_id`` without a scan.

    mongomock tests every document against every filter. A filter with a
    string or ObjectId ``_id`` (how the registry and the secret service read
    and upsert) can match only the document stored under that key.
    """

    def _iter_documents(self, filter):
        document_id = filter.get("_id") if isinstance(filter, Mapping) else None
        if not isinstance(document_id, _LOOKUP_ID_TYPES):
            return super()._iter_documents(filter)
        try:
            # The stored document itself: mongomock's update changes it in place.
            document = self._store[document_id]
        except KeyError:
            # Still reject an invalid filter, as mongomock does on an empty collection.
            filter_applies(filter, {})
            return iter(())
        return iter((document,) if filter_applies(filter, document) else ())


class _TtlCollectionStore(CollectionStore):
    def _remove_expired_documents(self) -> None:
        """Skip mongomock's removal on read, because the TTL monitor removes instead."""

    def remove_expired_now(self) -> int:
        """Delete the documents that the TTL indexes mark as expired and return how many."""
        before = len(self._documents)
        for index in list(self._ttl_indexes.values()):
            self._expire_documents(index)
        return before - len(self._documents)


class _TtlDatabaseStore(DatabaseStore):
    def __getitem__(self, col_name: str) -> CollectionStore:
        if col_name not in self._collections:
            self._collections[col_name] = _TtlCollectionStore(col_name)
        return self._collections[col_name]


class _TtlServerStore(ServerStore):
    def __getitem__(self, db_name: str) -> DatabaseStore:
        if db_name not in self._databases:
            self._databases[db_name] = _TtlDatabaseStore()
        return self._databases[db_name]

    def iter_collection_stores(self) -> Iterator[tuple[str, _TtlCollectionStore]]:
        for db_name, database in list(self._databases.items()):
            for collection in list(database._collections.values()):
                yield db_name, collection


class Storage:
    """The databases of one stand-in.

    Every command runs while holding :attr:`lock`, one at a time, so a
    single-document operation such as findAndModify is atomic, as on mongod.
    """

    def __init__(self) -> None:
        self._store = _TtlServerStore()
        self.client = mongomock.MongoClient(_store=self._store)
        self.lock = threading.RLock()
        self._change_count = 0

    def collection(self, database: str, name: str) -> Collection:
        """Return the mongomock collection ``database.name`` (created on first write)."""
        mock_database = self.client[database]
        mock_database._ensure_valid_collection_name(name)
        return _IdLookupCollection(mock_database, name, _db_store=mock_database._store)

    def collection_exists(self, database: str, name: str) -> bool:
        return name in self.client[database].list_collection_names()

    def keep_collection(self, database: str, name: str) -> None:
        """Keep an existing collection listed after its last document or index is removed.

        mongomock lists a collection only while it has documents or indexes,
        but mongod keeps it until it is dropped.
        """
        store = self._store[database][name]
        if store.is_created:
            store.create()

    def mark_changed(self) -> None:
        """Record that data may have changed, so the next periodic snapshot saves."""
        self._change_count += 1

    @property
    def change_count(self) -> int:
        """Number of write commands run since start, which snapshots compare."""
        return self._change_count

    def remove_expired_documents(self) -> int:
        """Run one TTL monitor pass over every collection and return the documents deleted."""
        removed = 0
        with self.lock:
            for db_name, collection in self._store.iter_collection_stores():
                count = collection.remove_expired_now()
                if count:
                    log.info("TTL monitor deleted %d documents from %s.%s",
                             count, db_name, collection.name)
                removed += count
            if removed:
                self.mark_changed()
        return removed

    def dump(self) -> Iterator[tuple[str, str, list[dict[str, Any]], list[dict[str, Any]]]]:
        """Yield ``(database, collection, index specs, documents)`` for every collection.

        The caller keeps :attr:`lock` acquired until it has consumed the
        iterator, and must not change the documents: they are the stored
        ones. Reading the store skips the copy and the filter test that
        ``find()`` makes per document, which took about 5 s for 43,000
        FHIR-sized documents and made a stop outlast its timeout.
        """
        for db_name in self.client.list_database_names():
            database = self.client[db_name]
            for name in database.list_collection_names():
                collection = database[name]
                indexes = [index for index in collection.list_indexes() if index["name"] != "_id_"]
                yield db_name, name, indexes, list(self._store[db_name][name].documents)
