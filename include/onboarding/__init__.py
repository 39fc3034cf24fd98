"""Client onboarding: provision, credential, verify, share, notify and record.

One module per concern; :mod:`include.onboarding.run` has one function per
task of the ``client_onboarding`` DAG.
"""
