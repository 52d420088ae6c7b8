"""``plaza ledger``: verify, export, import, checkpoint, proof — on real files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from plaza.cli import app
from plaza.dao.service import Dao
from plaza.ledger import SqlEventStore, merkle
from plaza.ledger.keystore import Keystore
from tests.dao.conftest import T0, found, make_world


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A data dir with a DAO ledger (a proposal and two votes) and the ledger key."""
    world = make_world()
    d = tmp_path / "data"
    dao = found(SqlEventStore.open(f"sqlite://{d / 'ledger.db'}"), world)
    pid = dao.propose(world.alice, "signal", "Colour", T0, choices=("red", "blue"))
    dao.vote(world.alice, pid, {"choice": "red"}, T0 + 1)
    dao.vote(world.bob, pid, {"choice": "blue"}, T0 + 2)
    Keystore(d / "keys.json").add("ledger", world.ledger_key)
    dao.store.close()
    return d


def run(*args: str) -> tuple[int, str]:
    res = CliRunner().invoke(app, list(args))
    return res.exit_code, res.output


def test_verify_database_and_export(data_dir: Path, tmp_path: Path) -> None:
    code, out = run("ledger", "checkpoint", "--data-dir", str(data_dir))
    assert code == 0, out
    assert json.loads(out)["size"] == 4
    code, out = run("ledger", "verify", str(data_dir / "ledger.db"))
    assert code == 0 and out.startswith("ok: 4 events, 1 checkpoints"), out
    export = tmp_path / "l.jsonl"
    code, out = run("ledger", "export", "--data-dir", str(data_dir), "-o", str(export))
    assert code == 0, out
    code, out = run("ledger", "verify", str(export), "--json")
    assert code == 0 and json.loads(out)["ok"]


def test_tampered_export_is_named_and_not_imported(data_dir: Path, tmp_path: Path) -> None:
    export = tmp_path / "l.jsonl"
    run("ledger", "export", "--data-dir", str(data_dir), "-o", str(export))
    lines = export.read_text().splitlines()
    lines[3] = lines[3].replace('"red"', '"blue"')  # event 2: alice's vote
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    code, out = run("ledger", "verify", str(bad))
    assert code == 1
    assert out.startswith("BAD event 2:"), out
    replica = tmp_path / "replica"
    code, out = run("ledger", "import", str(bad), "--data-dir", str(replica))
    assert code == 1 and "nothing imported" in out
    assert (
        not (replica / "ledger.db").exists()
        or len(SqlEventStore.open(f"sqlite://{replica / 'ledger.db'}")) == 0
    )
    code, out = run("ledger", "import", str(export), "--data-dir", str(replica))
    assert (code, out.strip()) == (0, "imported 4 events")
    assert (
        Dao(SqlEventStore.open(f"sqlite://{replica / 'ledger.db'}")).state.fingerprint()
        == Dao(SqlEventStore.open(f"sqlite://{data_dir / 'ledger.db'}")).state.fingerprint()
    )


def test_proofs(data_dir: Path) -> None:
    code, out = run("ledger", "proof", "2", "--data-dir", str(data_dir))
    assert code == 0, out
    p = json.loads(out)
    merkle.verify_inclusion(
        2,
        p["size"],
        bytes.fromhex(p["leaf"]),
        [bytes.fromhex(h) for h in p["proof"]],
        bytes.fromhex(p["root"]),
    )
    code, out = run("ledger", "proof", "0", "--consistency-from", "2", "--data-dir", str(data_dir))
    c = json.loads(out)
    merkle.verify_consistency(
        2,
        c["new"],
        bytes.fromhex(c["old_root"]),
        bytes.fromhex(c["new_root"]),
        [bytes.fromhex(h) for h in c["proof"]],
    )


def test_verify_refuses_what_is_not_a_ledger(tmp_path: Path) -> None:
    junk = tmp_path / "junk.txt"
    junk.write_text("hello")
    code, out = run("ledger", "verify", str(junk))
    assert code == 1
    code, out = run("ledger", "verify", str(tmp_path / "missing"))
    assert code == 1 and "neither a ledger export nor a database" in out


def test_verify_does_not_vouch_for_a_database_that_is_not_there(tmp_path: Path) -> None:
    """A typo in a sqlite:// URL must not create an empty ledger and call it ok."""
    missing = tmp_path / "typo" / "ledger.db"
    code, out = run("ledger", "verify", f"sqlite://{missing}")
    assert code == 1 and "no such ledger" in out, out
    assert not missing.exists() and not missing.parent.exists()


def _forged(export: Path) -> str:
    """The export with alice's vote (event 2) changed and its line's hash recomputed: only
    its signature gives it away."""
    import hashlib

    from plaza.atproto import cbor, datamodel

    lines = export.read_text().splitlines()
    obj = json.loads(lines[3])
    obj["event"]["payload"]["ballot"]["choice"] = "blue"
    obj["hash"] = hashlib.sha256(cbor.encode(datamodel.from_json(obj["event"]))).hexdigest()
    lines[3] = json.dumps(obj)
    return "\n".join(lines) + "\n"


def test_import_reads_its_input_once(data_dir: Path, tmp_path: Path) -> None:
    """A pipe that serves the genuine export to its first reader and a forged one to any
    later reader: an import that verified one reading and loaded another would store the
    forgery. It reads once, and stores the events it verified."""
    import errno
    import os
    import threading

    export = tmp_path / "l.jsonl"
    run("ledger", "export", "--data-dir", str(data_dir), "-o", str(export))
    contents = [export.read_text(), _forged(export)]
    fifo = tmp_path / "ledger.pipe"
    os.mkfifo(fifo)
    served: list[int] = []
    stop = threading.Event()

    def reader_gone() -> bool:
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # nobody has the pipe open for reading
                return True
            raise
        os.close(fd)
        return False

    def serve() -> None:
        for i, text in enumerate(contents):
            with fifo.open("w") as w:  # blocks until a reader opens the pipe
                w.write(text)
            served.append(i)
            while not reader_gone():  # the next reading is a new reader's
                if stop.wait(0.01):
                    return

    writer = threading.Thread(target=serve, daemon=True)
    writer.start()
    replica = tmp_path / "replica"
    try:
        code, out = run("ledger", "import", str(fifo), "--data-dir", str(replica))
        assert (code, out.strip()) == (0, "imported 4 events"), out
        assert served == [0]  # the forged reading was never asked for
    finally:
        stop.set()
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)  # releases a writer waiting to serve
        writer.join(10)
        os.close(fd)
    source = SqlEventStore.open(f"sqlite://{data_dir / 'ledger.db'}")
    copy = SqlEventStore.open(f"sqlite://{replica / 'ledger.db'}")
    assert copy.hashes() == source.hashes()
    code, out = run("ledger", "verify", str(replica / "ledger.db"))
    assert code == 0 and out.startswith("ok: 4 events"), out


def test_import_from_standard_input(data_dir: Path, tmp_path: Path) -> None:
    code, text = run("ledger", "export", "--data-dir", str(data_dir))
    assert code == 0
    replica = tmp_path / "replica"
    res = CliRunner().invoke(app, ["ledger", "import", "-", "--data-dir", str(replica)], input=text)
    assert (res.exit_code, res.output.strip()) == (0, "imported 4 events"), res.output
    res = CliRunner().invoke(
        app,
        ["ledger", "import", "-", "--data-dir", str(tmp_path / "other")],
        input=text.replace('"red"', '"blue"'),
    )
    assert res.exit_code == 1 and "nothing imported" in res.output, res.output
