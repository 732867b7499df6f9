"""A broker type that needs credentials, installed the way `pip install` would leave a plugin, and its config."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, create_engine

from brokers.registry import ENTRY_POINT_GROUP
from host.config import Config, parse_config
from host.router.tables import metadata

PLUGIN_SOURCE = '''
import hashlib
import json

from brokers.paper.adapter import PaperBroker


class VaultBroker(PaperBroker):
    """The paper broker behind two credential fields; describe() shows a digest of what it was lent."""

    type_name = "vault"
    credential_fields = ("api_key", "api_secret")

    async def start(self):
        if set(self.services.secrets) != set(self.credential_fields):
            raise RuntimeError("started without its credentials")
        await super().start()

    def describe(self):
        lent = json.dumps(dict(sorted(self.services.secrets.items()))).encode()
        return super().describe() | {"environment": "practice", "connected": True, "secrets_sha256": hashlib.sha256(lent).hexdigest()}
'''

CONFIG = """\
[router]
enabled = false
request_timeout = 5

[brokers.paper]
type = "paper"

[brokers.fx]
type = "vault"
"""


def write_plugin(folder: Path) -> Path:
    """A module and its dist-info registering the ``vault`` broker type through the entry point group."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vault_broker.py").write_text(textwrap.dedent(PLUGIN_SOURCE))
    info = folder / "vault_broker-1.0.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: vault-broker\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[{ENTRY_POINT_GROUP}]\nvault = vault_broker:VaultBroker\n")
    return folder


@pytest.fixture(scope="session")
def plugin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = write_plugin(tmp_path_factory.mktemp("plugin"))
    sys.path.insert(0, str(folder))
    try:
        yield folder
    finally:
        sys.path.remove(str(folder))
        sys.modules.pop("vault_broker", None)


@pytest.fixture
def config(plugin: Path, tmp_path: Path) -> Config:
    path = tmp_path / "supervisor.toml"
    path.write_text(CONFIG)
    config = parse_config(CONFIG, path)
    config.host.state_dir.mkdir(mode=0o700)
    return config


@pytest.fixture
def database(config: Config) -> Iterator[Engine]:
    engine = create_engine(config.database_url)
    metadata.create_all(engine)
    try:
        yield engine
    finally:
        engine.dispose()
