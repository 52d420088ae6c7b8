"""Genesis of a local network on a real ledger (SQLite, and PostgreSQL in its own
schema): the DAO under the local mandate, the market with the network's timings, four
hosting providers under their own DIDs, bonded, three of them contracted, three
probers; a second genesis changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from plaza.dao.service import Dao
from plaza.errors import InvalidInputError
from plaza.ledger import SqlEventStore, verify_log
from plaza.ledger.keystore import Keystore
from plaza.market import Market
from plaza.market.dao_port import DaoLink
from plaza.network.genesis import BOND, HOSTED_ACCOUNTS, genesis, labeler_identity, ledger_url
from plaza.network.layout import Layout, Timings

NOW = 1_900_000_000_000
HOSTS = [f"http://127.0.0.1:{p}" for p in (4001, 4002, 4006, 4007)]


def test_genesis_founds_the_network_once(db_url: str, tmp_path: Path) -> None:
    layout = Layout(tmp_path / "plaza")
    db = db_url if db_url.startswith("postgresql") else None
    timings = Timings(epoch_s=60, probe_s=5, dead_after_s=10)
    founded = genesis(layout, HOSTS, timings, now_ms=NOW, db=db)
    assert founded.created and len(founded.hosts) == 4
    assert founded.contracted == founded.hosts[:3]

    gov = Keystore(layout.keys)
    assert gov.names() == ["alice", "bob", "carol", "ops"]
    assert founded.agent == gov.get("ops").did
    for n, did in enumerate(founded.hosts, 1):
        assert Keystore(layout.provider(n) / "keys.json").get("provider").did == did
    probers = [Keystore(layout.prober(n) / "keys.json").get("prober").did for n in (1, 2, 3)]
    assert layout.mandate.read_text().startswith("# The mandate of a local Plaza network")
    if db is None:
        assert layout.ledger.exists() and not (layout.gov / "genesis.db").exists()

    store = SqlEventStore.open(ledger_url(layout, db))
    try:
        dao = Dao(store)
        assert dao.state.initialized
        assert dao.state.constitution.agents == (founded.agent,)
        assert dao.state.mandate.limits.max_provider_share_ppm == 500_000
        m = Market(dao.ledger, operator_did=founded.agent, operator_key=None,
                   dao=DaoLink(dao, None))  # fmt: skip
        st = m.state
        assert (st.params.epoch_s, st.params.window_s) == (60, 5)
        for did, endpoint in zip(founded.hosts, HOSTS, strict=True):
            p = st.providers[did]
            assert p.endpoint == endpoint and p.services == ("hosting",) and p.bond == BOND
        assert {d for d in probers} <= {d for d, p in st.providers.items()
                                         if p.services == ("prober",)}  # fmt: skip
        active = {c.provider: c for c in st.contracts.values() if c.status == "active"}
        assert set(active) == set(founded.hosts[:3])
        assert all(c.quantity == HOSTED_ACCOUNTS for c in active.values())
        assert st.accounts_by_provider("hosting").get(founded.hosts[3], 0) == 0
        size = len(dao.ledger)
        assert verify_log(store.read_raw()).ok
    finally:
        store.close()

    again = genesis(layout, HOSTS, timings, now_ms=NOW + 60_000, db=db)
    assert not again.created
    assert (again.agent, again.hosts, again.contracted) == (
        founded.agent, founded.hosts, founded.contracted
    )  # fmt: skip
    store = SqlEventStore.open(ledger_url(layout, db))
    try:
        assert store.head().size == size
    finally:
        store.close()


def test_an_interrupted_genesis_leaves_no_ledger_and_runs_again(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "plaza")
    with pytest.raises(InvalidInputError):
        genesis(layout, HOSTS, Timings(), now_ms=NOW, contracted=5)
    assert not layout.ledger.exists()
    layout.gov.mkdir(parents=True, exist_ok=True)
    (layout.gov / "genesis.db").write_bytes(b"left over by a crash")
    assert genesis(layout, HOSTS, Timings(), now_ms=NOW).created


def test_bad_inputs_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    layout = Layout(tmp_path / "plaza")
    with pytest.raises(InvalidInputError, match="postgresql://"):
        genesis(layout, HOSTS, Timings(), now_ms=NOW, db="mysql://x")
    with pytest.raises(InvalidInputError, match="multiple of --probe-interval"):
        Timings(epoch_s=60, probe_s=7)
    with pytest.raises(InvalidInputError, match="positive"):
        Timings(dead_after_s=0)
    assert not layout.root.exists()


def test_genesis_makes_the_labeler_and_contracts_it(db_url: str, tmp_path: Path) -> None:
    layout = Layout(tmp_path / "plaza")
    db = db_url if db_url.startswith("postgresql") else None
    url = "http://127.0.0.1:4012"
    founded = genesis(layout, HOSTS, Timings(), now_ms=NOW, db=db, labeler=url)
    assert founded.labeler is not None and founded.labeler.startswith("did:plc:")
    # the labeler's own identity: keys and the genesis operation fixing its DID
    for name in ("label.key", "rotation.key", "genesis.json"):
        assert (layout.labeler / name).exists()
    assert labeler_identity(layout, url) == founded.labeler
    assert Keystore(layout.labeler / "keys.json").get("provider").did == founded.labeler_provider

    store = SqlEventStore.open(ledger_url(layout, db))
    try:
        dao = Dao(store)
        m = Market(dao.ledger, operator_did=founded.agent, operator_key=None,
                   dao=DaoLink(dao, None))  # fmt: skip
        p = m.state.providers[str(founded.labeler_provider)]
        assert (p.services, p.endpoint, p.bond) == (("labeler",), url, BOND)
        (c,) = [c for c in m.state.contracts.values() if c.service == "labeler"]
        assert (c.provider, c.status, c.quantity) == (p.did, "active", 3 * HOSTED_ACCOUNTS)
        assert verify_log(store.read_raw()).ok
    finally:
        store.close()
    again = genesis(layout, HOSTS, Timings(), now_ms=NOW + 1, db=db, labeler=url)
    assert (again.created, again.labeler, again.labeler_provider) == (
        False, founded.labeler, founded.labeler_provider
    )  # fmt: skip
