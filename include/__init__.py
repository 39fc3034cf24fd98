"""Domain package of the client data exchange.

Modules here import without Airflow where they can, so they are unit-tested
on their own; the DAG files under ``dags/`` only wire them into tasks.
"""
