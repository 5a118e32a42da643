"""Real remote-storage servers on 127.0.0.1 for the team-workflow tests, started and stopped by them."""
from __future__ import annotations

import contextlib
import getpass
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

SSHD = "/usr/sbin/sshd"


def unavailable(reason: str) -> None:
    """Skip on a developer machine without the server; in CI a missing server is a failure."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (CI must install it: see .ci/run)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            return
        time.sleep(0.1)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout} s")


@contextlib.contextmanager
def stopping(process: subprocess.Popen) -> Iterator[None]:
    try:
        yield
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def openssh_server(directory: Path) -> Iterator[dict]:
    """OpenSSH on a free port with a throwaway host key and client key.

    Yields the port, user, client key path and a HOME whose known_hosts trusts
    exactly this server's host key, so host-key checking stays on.
    """
    if not (Path(SSHD).exists() and shutil.which("ssh-keygen")):
        unavailable("OpenSSH server not installed (Debian package openssh-server)")
    directory.mkdir(parents=True, exist_ok=True)
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(directory / name)], check=True)
    shutil.copy(directory / "client_key.pub", directory / "authorized_keys")
    port = free_port()
    (directory / "sshd_config").write_text("\n".join([
        f"Port {port}", "ListenAddress 127.0.0.1", f"HostKey {directory / 'host_key'}",
        f"PidFile {directory / 'sshd.pid'}", f"AuthorizedKeysFile {directory / 'authorized_keys'}",
        "PasswordAuthentication no", "KbdInteractiveAuthentication no", "UsePAM no", "StrictModes no",
        "PermitRootLogin prohibit-password", "Subsystem sftp internal-sftp", "LogLevel ERROR", "",
    ]))
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # privilege-separation directory sshd insists on
    home = directory / "home"
    (home / ".ssh").mkdir(parents=True)
    key_type, key = (directory / "host_key.pub").read_text().split()[:2]
    (home / ".ssh" / "known_hosts").write_text(f"[127.0.0.1]:{port} {key_type} {key}\n")
    process = subprocess.Popen([SSHD, "-D", "-e", "-f", str(directory / "sshd_config")],
                               stdout=subprocess.DEVNULL, stderr=open(directory / "sshd.log", "w"))
    with stopping(process):
        wait_for_port(port, process)
        yield {"port": port, "user": getpass.getuser(), "keyfile": str(directory / "client_key"), "home": str(home)}


@contextlib.contextmanager
def s3_server(bucket: str) -> Iterator[dict]:
    """moto's S3-compatible HTTP server (in server mode, a real separate process)."""
    try:
        import boto3
        import moto.server  # noqa: F401
    except ImportError:
        unavailable("moto[server] not installed")
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    credentials = {"AWS_ACCESS_KEY_ID": "team-test-key", "AWS_SECRET_ACCESS_KEY": "team-test-secret",
                   "AWS_DEFAULT_REGION": "us-east-1"}
    with stopping(process):
        wait_for_port(port, process)
        endpoint = f"http://127.0.0.1:{port}"
        boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
                     aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
                     region_name="us-east-1").create_bucket(Bucket=bucket)
        yield {"endpoint": endpoint, "credentials": credentials}
