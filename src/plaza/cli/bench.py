"""``plaza bench ...``: speed measurements that print JSON (medians of several runs).

Each sub-command is a thin shell over one ``plaza.bench`` module's ``run``.
"""

from __future__ import annotations

import json

import typer

app = typer.Typer(
    name="bench",
    help="Measure Plaza's speed; every command prints JSON with medians of several runs.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command("repo")
def repo(
    runs: int = typer.Option(3, "--runs", min=1, help="Repetitions of each measurement."),
    keys: int = typer.Option(100_000, "--keys", min=1, help="Keys for the MST insert test."),
    records: int = typer.Option(
        20_000, "--records", min=1, help="Records in the repository for the CAR tests."
    ),
) -> None:
    """Benchmark the repository core: MST inserts, commit signing, CAR export and import.

    Prints MST inserts/s (incremental puts of --keys keys), MST node encode and
    validated decode beside libipld, the per-write put+root path, commits signed and
    verified per second, whole one-write commits per second on a --records repository,
    and CAR export and import-and-verify MB/s on it, each beside libipld's raw call
    where one exists, as medians of --runs.

    Example:

    \b
        plaza bench repo
        plaza bench repo --runs 5 --keys 100000 --records 20000
    """
    from plaza.bench.repo import run

    typer.echo(json.dumps(run(runs=runs, keys=keys, records=records), indent=2))


@app.command("dao")
def dao(
    runs: int = typer.Option(3, "--runs", min=1, help="Repetitions of each measurement."),
    events: int = typer.Option(5_000, "--events", min=1, help="Ledger events to append."),
    ballots: int = typer.Option(1_000_000, "--ballots", min=1, help="IRV ballots."),
    candidates: int = typer.Option(10, "--candidates", min=2, help="IRV candidates."),
    members: int = typer.Option(1_000_000, "--members", min=1, help="Members to resolve."),
) -> None:
    """Benchmark the ledger and the DAO: appends, verification, IRV, delegation.

    Prints ledger appends/s (sign, check, store; memory and SQLite), verification
    events/s (bytes, chain, signatures, Merkle), DAO replay with its rules, IRV over
    --ballots random partial rankings of --candidates, and delegation resolution over
    --members, each the median of --runs.

    Example:

    \b
        plaza bench dao
        plaza bench dao --runs 5 --ballots 1000000 --members 1000000
    """
    from plaza.bench.dao import run

    result = run(runs=runs, events=events, ballots=ballots, candidates=candidates, members=members)
    typer.echo(json.dumps(result, indent=2))


@app.command("agents")
def agents(
    runs: int = typer.Option(3, "--runs", min=1, help="Repetitions of each measurement."),
) -> None:
    """Benchmark the agents: placement of 1M accounts over 1k providers and 10M over 10k,
    and one capacity decision over 10k providers.

    Prints seconds (median of --runs) and accounts placed per second, with the largest
    provider share the placement produced.

    Example:

    \b
        plaza bench agents
        plaza bench agents --runs 5
    """
    from plaza.bench.agents import run

    typer.echo(json.dumps(run(runs=runs), indent=2))


@app.command("market")
def market(
    runs: int = typer.Option(3, "--runs", min=1, help="Repetitions of each measurement."),
    providers: int = typer.Option(10_000, "--providers", min=1, help="Contracted providers."),
) -> None:
    """Benchmark market settlement: one epoch over --providers providers, timed.

    Builds an in-memory market where every provider holds a contract won through bids
    and awards, files one epoch of signed evidence (3 probers x 288 windows per
    provider, a usage report and an observation per contract), settles the epoch
    (invoice, close, penalties, payment per contract) and replays the ledger. Prints
    seconds per phase and events/s, medians of --runs.

    Example:

    \b
        plaza bench market
        plaza bench market --runs 1 --providers 1000
    """
    from plaza.bench.market import run

    typer.echo(json.dumps(run(runs=runs, providers=providers), indent=2))


@app.command("appview")
def appview(
    *,
    accounts: int = typer.Option(100_000, "--accounts", min=2, help="Accounts in the network."),
    posts: int = typer.Option(1_000_000, "--posts", min=1, help="Posts in the network."),
    follows: int = typer.Option(1_000, "--follows", min=1, help="Accounts the viewer follows."),
    live: int = typer.Option(
        20_000, "--live", min=1, help="Posts indexed one by one as live events (after backfill)."
    ),
    calls: int = typer.Option(200, "--calls", min=2, help="getTimeline calls timed."),
    db: str | None = typer.Option(
        None, "--db", help="PostgreSQL URL (a fresh schema, dropped after); SQLite if omitted."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one line of JSON."),
) -> None:
    """Benchmark the app view on a synthetic network: backfill, live indexing,
    getTimeline over HTTP, and the index's size.

    Builds --accounts accounts and --posts posts (one like per 4 posts), the viewer
    following --follows accounts; backfills every repository (one transaction each),
    indexes the last --live posts one by one as the firehose follower does, then serves
    the app view and times --calls getTimeline calls with service auth. Prints
    index_records_per_s, backfill_records_per_s, timeline_p95_ms, posts_indexed and
    bytes_per_record.

    Example:

    \b
        plaza bench appview --json
        plaza bench appview --accounts 2000 --posts 20000 --follows 500 --json
        plaza bench appview --db postgresql://postgres@127.0.0.1:5432/test --json
    """
    from plaza.bench.appview import run

    result = run(
        accounts=accounts, posts=posts, follows=follows, live=live, timeline_calls=calls, db=db
    )
    typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))
