"""``plaza ledger ...``: export, import, verify, checkpoint and prove the ledger.

Settings come from flags, then the environment (``PLAZA_DATA``, ``PLAZA_DB``), then
defaults: the data directory is ``./.plaza`` and the ledger is the SQLite file
``ledger.db`` inside it, unless ``--db`` names another file or a ``postgresql://`` URL.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from plaza.errors import PlazaError

app = typer.Typer(
    name="ledger",
    help="Export, import, verify and checkpoint the signed event ledger.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

DATA_DIR = Path(".plaza")
F = TypeVar("F", bound=Callable[..., Any])


DataDir = Annotated[
    Path,
    typer.Option("--data-dir", envvar="PLAZA_DATA", help="Data directory (keys, SQLite files)."),
]
Db = Annotated[
    str | None,
    typer.Option(
        "--db",
        envvar="PLAZA_DB",
        help="Ledger database: a SQLite path or postgresql:// URL (default DATA/ledger.db).",
    ),
]


def resolve_db(data_dir: Path, db: str | None) -> str:
    return db if db else f"sqlite://{data_dir / 'ledger.db'}"


@contextmanager
def reporting() -> Iterator[None]:
    """Turn a :class:`PlazaError` into ``error: Code: message`` on stderr and exit 1."""
    try:
        yield
    except PlazaError as exc:
        typer.echo(f"error: {exc.code}: {exc.message}", err=True)
        raise typer.Exit(1) from exc


def read_export(path: str) -> Any:
    """The export at ``path`` (``-``: standard input), read once, as an
    :class:`~plaza.ledger.Archive`; None if ``path`` is not one (a database, say).

    The first byte, read to tell an export (``{``) from a database, is kept: the file is
    opened and read once, so a pipe works and nothing can change between two reads.
    """
    from plaza.ledger import load_archive
    from plaza.ledger.errors import ArchiveError

    if path == "-":
        return load_archive(sys.stdin.buffer, "standard input")
    p = Path(path)
    if not (p.is_file() or p.is_fifo()):
        return None
    try:
        with p.open("rb") as f:
            first = f.read(1)
            if first != b"{":
                return None
            return load_archive(f, path, prefix=first)
    except OSError as exc:
        raise ArchiveError(f"cannot read {path}: {exc}") from exc


def full_projection() -> Any:
    """Every plane's state over one ledger: the DAO's, the market's when installed, and
    the agents' records judged by the DAO's mandate (:mod:`plaza.agents.audit`)."""
    from plaza.dao.state import DaoState
    from plaza.ledger import Combined

    dao = DaoState()
    parts: list[Any] = [dao]
    try:
        from plaza.market.state import MarketState
    except ImportError:  # the market plane is optional for a DAO-only ledger
        pass
    else:
        parts.append(MarketState())
    try:
        from plaza.agents.audit import AgentActions
    except ImportError:
        pass
    else:
        parts.append(AgentActions(dao=dao))
    return Combined(*parts)


def verify_path(path: str) -> dict[str, Any]:
    """Verify an export file or a database; return the report as a dict."""
    from plaza.ledger import SqlEventStore, verify_log

    projection = full_projection()
    archive = read_export(path)
    if archive is not None:
        report = verify_log(archive.raw_events(), archive.checkpoints, projection=projection)
    else:
        from plaza.ledger.errors import ArchiveError

        if not (
            path.startswith(("postgresql://", "postgres://", "sqlite://")) or Path(path).is_file()
        ):
            raise ArchiveError(f"{path} is neither a ledger export nor a database")
        # Opening a SQLite URL creates the file: a typo would verify as an empty ledger.
        sqlite_file = path.removeprefix("sqlite://") if path.startswith("sqlite://") else None
        if sqlite_file not in (None, ":memory:") and not Path(str(sqlite_file)).is_file():
            raise ArchiveError(f"no such ledger: {path}")
        store = SqlEventStore.open(path)
        try:
            report = verify_log(store.read_raw(), store.checkpoints(), projection=projection)
        finally:
            store.close()
    return report.to_dict()


@app.command("verify")
def verify(
    path: str = typer.Argument(..., help="A .jsonl export, a SQLite file, or a postgresql:// URL."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """Re-check every hash, signature and checkpoint, and re-derive the DAO state.

    Walks the log in order: canonical bytes, sequence, hash chain, time, each
    signature against the author's keys as of that point, the DAO's rules for each
    event, and every checkpoint (signer is a ledger key, head and Merkle root match).
    On the first problem it names the event (seq) and the reason and exits 1.

    Example:

    \b
        plaza ledger verify ledger.jsonl
        plaza ledger verify .plaza/ledger.db --json
    """
    with reporting():
        report = verify_path(path)
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    elif report["ok"]:
        typer.echo(
            f"ok: {report['events']} events, {report['checkpoints']} checkpoints, "
            f"root {report['root']}, state {report['state']}"
        )
    else:
        p = report["problem"]
        where = f"event {p['seq']}" if p["seq"] is not None else f"checkpoint {p['checkpoint']}"
        typer.echo(f"BAD {where}: {p['code']}: {p['reason']}")
    if not report["ok"]:
        raise typer.Exit(1)


@app.command("export")
def export(
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="File to write (default stdout).")
    ] = None,
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
) -> None:
    """Export the whole ledger as JSON lines (header, events, checkpoints).

    Each event line holds the event in atproto JSON and the hex SHA-256 of its bytes;
    the file re-verifies on its own with ``plaza ledger verify``.

    Example:

    \b
        plaza ledger export -o ledger.jsonl
    """
    from plaza.ledger import SqlEventStore, export_jsonl

    with reporting():
        store = SqlEventStore.open(resolve_db(data_dir, db))
        try:
            if output is None:
                n, c = export_jsonl(store, sys.stdout)
            else:
                with output.open("w", encoding="utf-8") as f:
                    n, c = export_jsonl(store, f)
        finally:
            store.close()
    if output is not None:
        typer.echo(f"exported {n} events and {c} checkpoints to {output}")


@app.command("import")
def import_(
    path: Annotated[
        str, typer.Argument(help="A .jsonl file written by 'plaza ledger export' (- for stdin).")
    ],
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
) -> None:
    """Verify an export, then append the events the local ledger lacks.

    Nothing is imported unless the whole file verifies; the local ledger must hold a
    prefix of the file (a replica catching up). The file is read once and the events
    stored are the very bytes verified, so it may be a pipe (or - for standard input).

    Example:

    \b
        plaza ledger import ledger.jsonl --db replica.db
        plaza ledger export | plaza ledger import - --db replica.db
    """
    from plaza.ledger import SqlEventStore, import_verified, verify_archive
    from plaza.ledger.errors import ArchiveError

    with reporting():
        archive = read_export(path)
        if archive is None:
            raise ArchiveError(f"{path} is not a ledger export")
        verified = verify_archive(archive, projection=full_projection())
        if not verified.report.ok:
            p = verified.report.problem
            assert p is not None
            where = f"event {p.seq}" if p.seq is not None else f"checkpoint {p.checkpoint_size}"
            typer.echo(f"BAD {where}: {p.code}: {p.reason}; nothing imported")
            raise typer.Exit(1)
        store = SqlEventStore.open(resolve_db(data_dir, db))
        try:
            added = import_verified(verified, store)
        finally:
            store.close()
    typer.echo(f"imported {added} events")


@app.command("checkpoint")
def checkpoint(
    signer: str = typer.Option("ledger", "--as", envvar="PLAZA_AS", help="Keystore identity."),
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
) -> None:
    """Sign a checkpoint (RFC 6962 Merkle root and head) over the whole ledger.

    The signing key must be one of the constitution's ledger keys for verification to
    accept it; ``plaza dao init`` creates the identity ``ledger`` for this.

    Example:

    \b
        plaza ledger checkpoint
    """
    import time

    from plaza.dao.service import Dao
    from plaza.ledger import SqlEventStore
    from plaza.ledger.keystore import Keystore

    with reporting():
        key = Keystore(data_dir / "keys.json").get(signer)
        dao = Dao(SqlEventStore.open(resolve_db(data_dir, db)))
        cp = dao.checkpoint(key, int(time.time() * 1000))
    typer.echo(
        json.dumps(
            {"size": cp.size, "root": cp.root.hex(), "head": cp.head.hex(), "signer": cp.signer}
        )
    )


@app.command("proof")
def proof(
    seq: int = typer.Argument(..., min=0, help="The event to prove."),
    size: int | None = typer.Option(None, "--size", help="Tree size (default: whole log)."),
    old: int | None = typer.Option(None, "--consistency-from", help="Prove consistency instead."),
    data_dir: DataDir = DATA_DIR,
    db: Db = None,
) -> None:
    """Print an RFC 6962 inclusion proof for an event (or a consistency proof) as JSON.

    Example:

    \b
        plaza ledger proof 12
        plaza ledger proof 0 --consistency-from 10
    """
    from plaza.ledger import Ledger, SqlEventStore, event_leaf

    with reporting():
        ledger = Ledger(SqlEventStore.open(resolve_db(data_dir, db)))
        n = size if size is not None else len(ledger)
        if old is not None:
            out = {
                "old": old,
                "new": n,
                "old_root": ledger.root(old).hex(),
                "new_root": ledger.root(n).hex(),
                "proof": [h.hex() for h in ledger.consistency_proof(old, n)],
            }
        else:
            out = {
                "seq": seq,
                "size": n,
                "leaf": event_leaf(ledger.get(seq)).hex(),
                "root": ledger.root(n).hex(),
                "proof": [h.hex() for h in ledger.inclusion_proof(seq, n)],
            }
    typer.echo(json.dumps(out, indent=2))
