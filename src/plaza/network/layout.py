"""Where the local network keeps its data, and its timings.

``plaza up --data-dir D`` lays D out as :class:`Layout` says: the governance data dir
``D/gov`` (keystore, ledger, mandate), each PDS's ``D/pdsN``, each provider daemon's
keystore in ``D/providerN``, each prober's in ``D/proberN``, the labeler's keys,
model and store in ``D/labeler``, the entryway's store,
every process's log in ``D/logs`` and the chaos markers in ``D/chaos``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from plaza.errors import InvalidInputError

HOSTS: Final = 4
"""Hosting providers the local network registers: host1..host4."""
CONTRACTED: Final = 3
"""Of those, the first ones hold a contract from genesis; the rest stand by."""
PROBERS: Final = 3
"""Independent probers (the market's quorum)."""

AGENT: Final = "ops"
"""The DAO's agent: market operator and the DAO's recovery (migration) key."""
FOUNDERS: Final = ("alice", "bob", "carol")
PROVIDER: Final = "provider"
"""The identity name in each provider daemon's keystore."""
PROBER: Final = "prober"
"""The identity name in each prober's keystore."""


@dataclass(frozen=True)
class Timings:
    """The local network's clocks, in seconds: the market's settlement epoch, the probe
    window (how often the probers sample, and the market's window), and how long a host
    stays unreachable before the agents restore its accounts elsewhere."""

    epoch_s: int = 120
    probe_s: int = 10
    dead_after_s: int = 30

    def __post_init__(self) -> None:
        if self.epoch_s <= 0 or self.probe_s <= 0 or self.dead_after_s <= 0:
            raise InvalidInputError("--epoch, --probe-interval and --dead-after must be positive")
        if self.epoch_s % self.probe_s:
            raise InvalidInputError(
                f"--epoch ({self.epoch_s} s) must be a multiple of --probe-interval "
                f"({self.probe_s} s)"
            )

    @property
    def grace_s(self) -> int:
        """How long after an epoch ends the agents wait for its evidence before settling."""
        return 2 * self.probe_s


@dataclass(frozen=True)
class Layout:
    """The paths of one local network under ``root``."""

    root: Path

    @property
    def gov(self) -> Path:
        return self.root / "gov"

    @property
    def keys(self) -> Path:
        """The governance keystore (founders and the agent)."""
        return self.gov / "keys.json"

    @property
    def ledger(self) -> Path:
        return self.gov / "ledger.db"

    @property
    def mandate(self) -> Path:
        """A copy of the mandate the DAO adopted at genesis, for people to read."""
        return self.gov / "mandate.toml"

    def pds(self, n: int) -> Path:
        return self.root / f"pds{n}"

    def provider(self, n: int) -> Path:
        return self.root / f"provider{n}"

    def prober(self, n: int) -> Path:
        return self.root / f"prober{n}"

    @property
    def labeler(self) -> Path:
        """The labeler's data dir: its keys and DID (made at genesis), model and store."""
        return self.root / "labeler"

    @property
    def entryway(self) -> Path:
        return self.root / "entryway"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def chaos(self) -> Path:
        return self.root / "chaos"

    @property
    def endpoints(self) -> Path:
        return self.root / "endpoints.json"
