"""The legal record: the DAO's public metadata, derived from ledger state.

Wyoming's DAO LLC statute asks the articles to carry a publicly available identifier of
what manages the DAO; Utah and the Marshall Islands ask for similar identifiers and a
public way to monitor it. Plaza's answer is the ledger: its identifier is the hash of
the genesis event, its public keys sign the checkpoints, and the checkpoint location is
where anyone fetches them. The record is recomputed after every event that could change
it (genesis, a constitution amendment); each distinct version is kept with the ledger
position that produced it, so filings can be diffed against the live configuration.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from plaza.dao.constitution import Constitution


@dataclass(frozen=True, slots=True)
class LegalRecord:
    dao_name: str
    legal_name: str
    jurisdiction: str
    legal_form: str
    management_mode: str
    registered_agent: str
    ledger_id: str
    ledger_keys: tuple[str, ...]
    checkpoint_location: str
    agents: tuple[str, ...]

    def to_map(self) -> dict[str, Any]:
        out = asdict(self)
        out["ledger_keys"] = list(self.ledger_keys)
        out["agents"] = list(self.agents)
        return out


def legal_record(constitution: Constitution, ledger_id: str) -> LegalRecord:
    legal = constitution.legal
    return LegalRecord(
        dao_name=constitution.name,
        legal_name=legal.name,
        jurisdiction=legal.jurisdiction,
        legal_form=legal.legal_form,
        management_mode=legal.management_mode,
        registered_agent=legal.registered_agent,
        ledger_id=ledger_id,
        ledger_keys=tuple(constitution.ledger_keys),
        checkpoint_location=legal.checkpoint_location,
        agents=tuple(constitution.agents),
    )


@dataclass(frozen=True, slots=True)
class LegalVersion:
    """A version of the record and the ledger event that produced it."""

    seq: int
    time_ms: int
    record: LegalRecord


def diff_records(old: LegalRecord, new: LegalRecord) -> list[tuple[str, Any, Any]]:
    """``(field, old, new)`` for every field that differs."""
    a, b = old.to_map(), new.to_map()
    return [(k, a[k], b[k]) for k in a if a[k] != b[k]]
