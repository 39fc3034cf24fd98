"""A MongoDB wire-protocol server backed by mongomock, for machines without mongod.

Airflow tasks, the secret service and the demo share one database through the
real pymongo driver. Start it with :func:`include.mongo_standin.server.start_standin`
or ``python -m include.mongo_standin``. Product code connects through pymongo
and does not import mongomock.
"""
