"""SFTP identity lookup: one check of a login secret, used by two adapters.

:mod:`include.identity.lookup` contains the check and the login secret format;
:mod:`include.identity.rclone_proxy` adapts it for the local gateway
(``rclone serve sftp --auth-proxy``) and :mod:`include.identity.lambda_handler`
for Transfer Family's custom identity provider.
"""
