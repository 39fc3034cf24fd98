"""The local stack: AWS emulator, SFTP gateway, MongoDB stand-in, secret service, Airflow.

Run ``python -m include.localstack up|down|status`` (or ``make up``); the
Python API is in :mod:`include.localstack.stack`.
"""
