"""The table of the local network's processes: command lines, environments and stores
for each entry, and entries whose commands land later (the entryway, the provider
daemons) wired in by the options those commands take, left out while they are missing."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from plaza.cli.market_support import parse_prices
from plaza.dao.money import Currency
from plaza.network.genesis import MAX_ACCOUNT_PRICE
from plaza.network.layout import Timings
from plaza.network.processes import (
    SERVICES,
    Network,
    child_spec,
    service,
    services,
    web_workers,
)

# The commands and options of a plaza that has the entryway and the provider daemon.
LATER: dict[tuple[str, ...], set[str]] = {
    ("serve", "entryway"): {"--host", "--port", "--data-dir", "--governance", "--as",
                            "--directory", "--public-url", "--db", "--ledger-db"},
    ("serve", "provider"): {"--data-dir", "--as", "--market", "--pds", "--standby"},
    ("agents", "run"): {"--data-dir", "--db", "--as", "--interval", "--directory", "--archive",
                        "--grace", "--dead-after", "--entryway", "--capacity-floor",
                        "--capacity-max-price", "--assist"},
    ("serve", "web"): {"--host", "--port", "--data-dir", "--entryway", "--appview", "--dao",
                       "--market", "--labeler", "--workers"},
}  # fmt: skip


def _with_later(command: tuple[str, ...]) -> Collection[str] | None:
    if command in LATER:
        return LATER[command]
    return {"--db", "--appview", "--market"}  # every other command exists


def _without_later(command: tuple[str, ...]) -> Collection[str] | None:
    if command in (("serve", "entryway"), ("serve", "provider")):
        return None
    if command == ("agents", "run"):
        return LATER[command] - {"--entryway"}
    return {"--db"}


def _argv(net: Network, name: str, options: object = _with_later) -> list[str]:
    return list(child_spec(net, service(name), options).argv[3:])  # type: ignore[arg-type]


def test_commands_that_land_later_join_the_network_by_their_options() -> None:
    names = [s.name for s in services(_without_later)]
    assert "entryway" not in names and not [n for n in names if n.startswith("provider")]
    assert "--entryway" not in _argv(Network(Path("d"), "127.0.0.1", 4000), "agents",
                                     _without_later)  # fmt: skip
    names = [s.name for s in services(_with_later)]
    assert names[-10:] == [
        "provider1", "provider2", "provider3", "provider4", "prober1", "prober2", "prober3",
        "entryway", "agents", "web",
    ]  # fmt: skip
    net = Network(Path("d"), "127.0.0.1", 4000, Timings(epoch_s=60, probe_s=5, dead_after_s=15))
    assert _argv(net, "entryway") == [
        "serve", "entryway", "--host", "127.0.0.1", "--port", "4010", "--data-dir", "d/entryway",
        "--governance", "d/gov", "--as", "ops", "--directory", "http://127.0.0.1:4000",
        "--public-url", "http://127.0.0.1:4010",
    ]  # fmt: skip
    assert _argv(net, "provider1") == [
        "serve", "provider", "--data-dir", "d/provider1", "--as", "provider",
        "--market", "http://127.0.0.1:4009", "--pds", "http://127.0.0.1:4001",
    ]  # fmt: skip
    assert _argv(net, "provider4")[-3:] == ["--pds", "http://127.0.0.1:4007", "--standby"]
    agents = _argv(net, "agents")
    assert agents[agents.index("--dead-after") + 1] == "15"
    assert agents[agents.index("--grace") + 1] == "10"
    assert agents[agents.index("--entryway") + 1] == "http://127.0.0.1:4010"
    assert agents[agents.index("--capacity-floor") + 1] == "150"  # what genesis contracts
    offer = agents[agents.index("--capacity-max-price") + 1]
    assert parse_prices(Currency("EUR", 2), offer) == {"account": MAX_ACCOUNT_PRICE}
    assert _argv(net, "web") == [
        "serve", "web", "--host", "127.0.0.1", "--port", "4011", "--data-dir", "d/web",
        "--entryway", "http://127.0.0.1:4010", "--appview", "http://127.0.0.1:4005",
        "--dao", "http://127.0.0.1:4008", "--market", "http://127.0.0.1:4009",
        "--workers", str(web_workers()),
    ]  # fmt: skip
    prober = _argv(net, "prober3")
    assert prober[prober.index("--interval") + 1] == "5"
    assert agents[agents.index("--assist") + 1] == "auto"  # plaza up's default
    chosen = Network(Path("d"), "127.0.0.1", 4000, assist="none")
    assert _argv(chosen, "agents")[-2:] == ["--assist", "none"]

    def before_assist(command: tuple[str, ...]) -> Collection[str] | None:
        got = _with_later(command)
        return None if got is None else set(got) - {"--assist"}

    assert "--assist" not in _argv(chosen, "agents", before_assist)


def test_secrets_travel_in_the_environment_and_stores_move_to_postgres() -> None:
    net = Network(
        Path("d"), "127.0.0.1", 4000, postgres="postgresql://u@h:5432/db?schema=n1",
        secrets={"pds1": "pw1", "pds2": "pw2", "market": "tok"},
    )  # fmt: skip
    by_name = {s.name: child_spec(net, s, _with_later) for s in SERVICES}
    assert by_name["pds1"].env == {"PLAZA_PDS_ADMIN_PASSWORD": "pw1"}
    assert by_name["provider1"].env == {"PLAZA_PDS_ADMIN_PASSWORD": "pw1"}
    assert by_name["pds2"].env == {"PLAZA_PDS_ADMIN_PASSWORD": "pw2"}
    assert by_name["market"].env == {"PLAZA_MARKET_TOKEN": "tok"}
    assert by_name["pds3"].env == {}  # no secret made for it: none passed
    for spec in by_name.values():
        assert not {"pw1", "pw2", "tok"} & set(spec.argv)

    def opt(name: str, option: str = "--db") -> str | None:
        argv = list(by_name[name].argv)
        return argv[argv.index(option) + 1] if option in argv else None

    assert opt("pds1") == "postgresql://u@h:5432/db?schema=n1_pds1"
    assert opt("directory") == "postgresql://u@h:5432/db?schema=n1_directory"
    assert opt("entryway") == "postgresql://u@h:5432/db?schema=n1_entryway"
    assert opt("entryway", "--ledger-db") == "postgresql://u@h:5432/db?schema=n1_ledger"
    for name in ("dao", "market", "agents"):
        assert opt(name) == "postgresql://u@h:5432/db?schema=n1_ledger", name
    assert net.ledger == "postgresql://u@h:5432/db?schema=n1_ledger"
    assert opt("prober1") is None and opt("provider1") is None
    plain = Network(Path("d"), "127.0.0.1", 4000)
    assert plain.ledger == "d/gov/ledger.db" and plain.db("pds1") is None
    default = Network(Path("d"), "127.0.0.1", 4000, postgres="postgresql://u@h/db")
    assert default.db("relay") == "postgresql://u@h/db?schema=plaza_relay"


def test_on_the_bus_the_indexers_write_and_the_appview_only_serves() -> None:
    indexer_opts = {"--bus", "--db", "--directory", "--stream", "--worker-id"}
    worker_opts = {*indexer_opts, "--data-dir", "--model", "--dao"}

    def opts(command: tuple[str, ...]) -> Collection[str] | None:
        if command == ("serve", "appview-indexer"):
            return indexer_opts
        if command == ("serve", "labeler-worker"):
            return worker_opts
        if command == ("serve", "relay"):
            return {"--db", "--market", "--bus", "--bus-stream"}
        return _with_later(command)

    pg = "postgresql://u@h:5432/db?schema=n1"
    plain = Network(Path("d"), "127.0.0.1", 4000, postgres=pg)
    assert not [s for s in services(opts) if s.kind in ("appview-indexer", "labeler-worker")]
    assert "--bus" not in _argv(plain, "relay", opts)
    before = _argv(plain, "appview", opts)
    assert before[before.index("--relay") + 1] == "http://127.0.0.1:4003"

    net = Network(Path("d"), "127.0.0.1", 4000, postgres=pg, bus="nats://n:4222", indexers=3,
                  labeler_workers=2, bus_stream="T1")  # fmt: skip
    names = [s.name for s in services(opts, 3, 2)]
    at = names.index("appview")
    assert names[at + 1 : at + 4] == [f"appview-indexer-{n}" for n in (1, 2, 3)]
    at = names.index("labeler")
    assert names[at + 1 : at + 3] == ["labeler-worker-1", "labeler-worker-2"]
    # On the bus the workers label; the labeler follows no firehose and serves the store.
    labeler = _argv(net, "labeler", opts)
    assert "--relay" not in labeler
    assert labeler[labeler.index("--db") + 1] == "postgresql://u@h:5432/db?schema=n1_labeler"
    worker = child_spec(net, service("labeler-worker-2"), opts)
    assert list(worker.argv[3:]) == [
        "serve", "labeler-worker", "--data-dir", "d/labeler",
        "--db", "postgresql://u@h:5432/db?schema=n1_labeler",
        "--bus", "nats://n:4222", "--directory", "http://127.0.0.1:4000",
        "--model", "d/labeler/model.json", "--dao", "http://127.0.0.1:4008",
        "--worker-id", "labeler-worker-2", "--stream", "T1",
    ]  # fmt: skip
    assert worker.health_url is None and set(worker.after) == {"directory", "relay", "labeler"}
    relay = _argv(net, "relay", opts)
    assert relay[-4:] == ["--bus", "nats://n:4222", "--bus-stream", "T1"]
    appview = _argv(net, "appview", opts)
    assert "--relay" not in appview
    assert appview[appview.index("--db") + 1] == "postgresql://u@h:5432/db?schema=n1_appview"
    spec = child_spec(net, service("appview-indexer-2"), opts)
    assert list(spec.argv[3:]) == [
        "serve", "appview-indexer", "--db", "postgresql://u@h:5432/db?schema=n1_appview",
        "--bus", "nats://n:4222", "--directory", "http://127.0.0.1:4000",
        "--worker-id", "appview-indexer-2", "--stream", "T1",
    ]  # fmt: skip
    assert spec.health_url is None  # no port: started once it runs, like the agents
    assert set(spec.after) == {"directory", "relay", "appview"}
    assert spec.log_path == Path("d/logs/appview-indexer-2.log")
    for bad in ("appview-indexer-0", "appview-indexer-01", "appview-indexer-x", "nope",
                "labeler-worker-0", "labeler-worker-"):  # fmt: skip
        try:
            service(bad)
        except KeyError:
            continue
        raise AssertionError(bad)
