"""Ingestion of client exports from S3 into MongoDB.

One module per concern:

* ``config``: settings from the environment;
* ``formats``, ``readers``, ``records``: detection, streaming reads, validation and keys;
* ``documents``, ``spool``, ``prepare``: BSON documents and the single parse pass;
* ``loader``, ``ledger``, ``objects``: bulk upserts, processed versions, S3 calls;
* ``pipeline``: one client's run; ``tasks``, ``notify``, ``status``: Airflow and ops entry points.
"""
