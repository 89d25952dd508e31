"""OpenSSH signatures, the one way the hub signs and verifies anything (``ssh-keygen -Y``).

The disclosure register signs its events (namespace ``samverkan-register``) and the outbox signs
every delivery's manifest (``samverkan-delivery``) with the hub's Ed25519 key; a recipient checks
both with ``ssh-keygen -Y verify`` and the allowed-signers lines the hub publishes, no new tools.
This module is the bottom of ``samverkan.sharing``: the register, the outbox and the attestation
build on it, so none of them has to import another to sign. Nothing here is cryptography of its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

REGISTER_NAMESPACE = "samverkan-register"  # ssh-keygen -Y namespace, and the allowed-signers identity
DELIVERY_NAMESPACE = "samverkan-delivery"
# The register's signing key (OpenSSH Ed25519): events are signed when it is set (see register.py).
REGISTER_KEY_ENV = "SAMVERKAN_REGISTER_SIGNING_KEY"
# The delivery signing key; without it the register's key signs deliveries too (one hub key, two namespaces).
DELIVERY_KEY_ENV = "SAMVERKAN_DELIVERY_SIGNING_KEY"


class SigningError(RuntimeError):
    """ssh-keygen refused to sign (a missing or unreadable key, a key with a passphrase)."""


def register_key() -> Path | None:
    found = os.environ.get(REGISTER_KEY_ENV)
    return Path(found) if found else None


def delivery_key() -> Path | None:
    found = os.environ.get(DELIVERY_KEY_ENV) or os.environ.get(REGISTER_KEY_ENV)
    return Path(found) if found else None


def ssh_keygen(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [shutil.which("ssh-keygen") or "ssh-keygen", *args], input=stdin, capture_output=True, timeout=30, check=False
    )


def sign_file(key: Path, path: Path, namespace: str, mode: int | None = None) -> Path:
    """``<path>.sig`` beside the file (with ``mode``, e.g. readable like the file it signs)."""
    signature = Path(f"{path}.sig")
    signature.unlink(missing_ok=True)
    done = ssh_keygen("-q", "-Y", "sign", "-f", str(key), "-n", namespace, str(path))
    if done.returncode != 0:
        raise SigningError(f"signing {path.name} failed: {done.stderr.decode(errors='replace').strip()}")
    if mode is not None:
        signature.chmod(mode)
    return signature


def sign_text(key: Path, message: str, namespace: str) -> str:
    """An armored signature of ``message`` (ssh-keygen signs a file: a private temporary one)."""
    with tempfile.TemporaryDirectory(prefix="samverkan-sign-") as tmp:
        text = Path(tmp) / "message"
        text.write_text(message, encoding="ascii")
        return sign_file(key, text, namespace).read_text(encoding="ascii")


def verifies(allowed_signers: Path, message: bytes, signature: Path, namespace: str, identity: str) -> bool:
    done = ssh_keygen(
        "-Y", "verify", "-f", str(allowed_signers), "-I", identity, "-n", namespace, "-s", str(signature), stdin=message
    )
    return done.returncode == 0


def file_verifies(allowed_signers: Path, path: Path, signature: Path, namespace: str, identity: str) -> bool:
    return signature.exists() and verifies(allowed_signers, path.read_bytes(), signature, namespace, identity)


def text_verifies(allowed_signers: Path, message: str, signature: str, namespace: str, identity: str) -> bool:
    with tempfile.TemporaryDirectory(prefix="samverkan-verify-") as tmp:
        sig = Path(tmp) / "message.sig"
        sig.write_text(signature, encoding="ascii")
        return verifies(allowed_signers, message.encode("utf-8"), sig, namespace, identity)
