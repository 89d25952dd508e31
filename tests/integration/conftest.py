"""Real OpenSSH servers for the integration tests, each with its own host key and root.

The connector is tested against sshd's internal-sftp, not a Python stand-in, because the
partners run OpenSSH and what matters (host-key exchange, SFTP limits, error behaviour) is
exactly what a stand-in would get subtly different.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from samverkan.connectors.sftp import SFTPSettings
from samverkan.connectors.sshd import SSHD, SFTPServer, generate_keypair, sshd_available, start_sftp_server


@pytest.fixture(scope="module")
def validator():
    """One Great Expectations validator per module: building it is the slow part."""
    from samverkan.quality.validation import Validator

    return Validator()


@pytest.fixture
def hub(tmp_path: Path, validator):
    """A data root of its own on which the pipeline runs without Airflow (resilience_support.Hub)."""
    from tests.integration.resilience_support import Hub

    return Hub.create(tmp_path / "hub", validator)


@pytest.fixture(scope="session")
def client_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The hub's key pair: (private key path, public key line)."""
    if not sshd_available():
        pytest.skip(f"OpenSSH server not installed ({SSHD} missing); scripts/setup installs it")
    return generate_keypair(tmp_path_factory.mktemp("client-key") / "hub_ed25519")


@pytest.fixture
def start_server(tmp_path_factory: pytest.TempPathFactory, client_key: tuple[Path, str]) -> Iterator[Callable[..., SFTPServer]]:
    """Start more servers (or one on a given port); all are stopped after the test."""
    started: list[SFTPServer] = []

    def start(root: Path | None = None, *, port: int | None = None, authorized_key: str | None = None) -> SFTPServer:
        base = tmp_path_factory.mktemp("sftp")
        server = start_sftp_server(root or base / "root", authorized_key or client_key[1], base / "sshd", port=port)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture
def sftp_server(start_server: Callable[..., SFTPServer]) -> SFTPServer:
    """A running server; put files below ``sftp_server.root``."""
    return start_server()


@pytest.fixture
def settings_for(client_key: tuple[Path, str]) -> Callable[..., SFTPSettings]:
    """``settings_for(server, **overrides)``: settings that reach ``server`` with the hub's key."""

    def make(server: SFTPServer, **overrides) -> SFTPSettings:
        values = dict(host=server.host, port=server.port, username=server.username, key_file=str(client_key[0]),
                      host_key=server.host_key_line, path_prefix=server.path_prefix)
        values.update(overrides)
        return SFTPSettings(**values)

    return make
