"""``plaza up``: a real supervisor process, one real process per service, the SDK
against them; a service killed alone, a clean stop, a restart with nothing lost, a
killed supervisor that leaves no orphans, and ``make up``'s port base."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from atproto_client.exceptions import BadRequestError

from atproto import Client, models
from plaza.cli.up import PORTS, SERVICES, Network, child_spec, endpoints, options, services
from plaza.services.supervisor import Child

ROOT = Path(__file__).resolve().parents[2]
ADMIN_PASSWORD = "an admin password for the test"
HEALTH = {s.name: s.health_path for s in SERVICES}
OFFSET = {s.name: s.offset for s in SERVICES}


# -- helpers -------------------------------------------------------------------------


def _free_base(count: int = PORTS) -> int:
    """A port base with ``count`` consecutive free ports on loopback, below the kernel's
    ephemeral range (so no outgoing connection takes one of them meanwhile)."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(100):
        base = random.randrange(10_000, max(10_001, low - count))
        socks: list[socket.socket] = []
        try:
            for p in range(base, base + count):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no {count} consecutive free ports")


def _poll(check: Callable[[], Any], what: str, timeout: float = 90.0) -> Any:
    """``check()``'s first truthy value, polled until ``timeout`` (another process's
    progress cannot be waited on any other way)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


class Up:
    """A ``plaza up`` process, its console output in a file."""

    def __init__(self, data_dir: Path, base: int) -> None:
        self.data_dir = data_dir
        self.console = data_dir.parent / f"console-{time.monotonic_ns()}.txt"
        with self.console.open("wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "plaza.cli", "up",
                 "--data-dir", str(data_dir), "--port-base", str(base)],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env={**os.environ, "PYTHONUNBUFFERED": "1",
                     "PLAZA_PDS_ADMIN_PASSWORD": ADMIN_PASSWORD},
            )  # fmt: skip

    def output(self) -> str:
        return self.console.read_text()

    def endpoints(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.data_dir / "endpoints.json").read_text())
        return data

    def wait_ready(self) -> dict[str, Any]:
        def ready() -> bool:
            assert self.proc.poll() is None, self.output()
            # Printed once endpoints.json is written (an old one may still be there).
            return "Ctrl-C stops the network." in self.output()

        _poll(ready, "plaza up to start every service")
        return self.endpoints()

    def stop(self, sig: signal.Signals) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=90)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def ups() -> Iterator[list[Up]]:
    """Every ``plaza up`` a test starts; any left running at the end is killed (its
    children get SIGTERM from the kernel)."""
    started: list[Up] = []
    yield started
    for up in started:
        up.kill()


def _urls(endpoints: dict[str, Any]) -> dict[str, str]:
    """Each HTTP service's URL by its name in endpoints.json's ``pids``."""
    urls = {name: endpoints[name] for name in endpoints["pids"] if name in endpoints}
    return urls | endpoints["hosts"]


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def _status(pid: int) -> dict[str, str]:
    """/proc/PID/status as a dict; empty once the process is gone."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return {}
    return dict(line.split(":\t", 1) for line in text.splitlines() if ":\t" in line)


def _alive(pid: int) -> bool:
    state = _status(pid).get("State", "")
    return bool(state) and not state.startswith(("Z", "X"))


def _all_gone(pids: Iterable[int]) -> bool:
    return not any(_alive(pid) for pid in pids)


def _sign_up(url: str, handle: str, text: str) -> tuple[Client, str]:
    client = Client(base_url=url)
    client.com.atproto.server.create_account(
        models.ComAtprotoServerCreateAccount.Data(handle=handle, password="a long pw")
    )
    client.login(handle, "a long pw")
    post = client.send_post(text)
    return client, post.uri.rsplit("/", 1)[1]


def _read_back(url: str, handle: str, rkey: str) -> str:
    client = Client(base_url=url)
    client.login(handle, "a long pw")
    text: str = client.get_post(rkey, client.me.did).value.text  # type: ignore[union-attr]
    return text


# -- the network as processes ----------------------------------------------------------


def test_each_service_is_its_own_process_restarted_unless_killed_on_purpose(
    tmp_path: Path, ups: list[Up]
) -> None:
    data_dir = tmp_path / "plaza"
    base = _free_base()
    up = Up(data_dir, base)
    ups.append(up)
    endpoints = up.wait_ready()
    assert endpoints["directory"] == f"http://127.0.0.1:{base}"
    # The three hosts under contract since genesis; the fourth stands by.
    assert endpoints["pds"] == [f"http://127.0.0.1:{base + o}" for o in (1, 2, 6)]
    assert endpoints["hosts"]["pds4"] == f"http://127.0.0.1:{base + 7}"
    assert endpoints["ledger"] == str(data_dir / "gov" / "ledger.db")
    pids: dict[str, int] = endpoints["pids"]
    assert list(pids) == [s.name for s in services()]
    assert list(pids)[:5] == ["directory", "pds1", "pds2", "pds3", "pds4"]
    assert {"dao", "market", "prober1", "prober2", "prober3", "agents"} <= set(pids)
    urls = _urls(endpoints)
    for name, url in urls.items():
        assert url == f"http://127.0.0.1:{base + (OFFSET[name] or 0)}"
        assert _answers(url + (HEALTH[name] or "")), name
    # One OS process per service, each a child of the supervisor.
    assert len(set(pids.values())) == len(pids) and up.proc.pid not in pids.values()
    for pid in pids.values():
        assert _status(pid)["PPid"] == str(up.proc.pid)
    out = up.output()
    for name, pid in pids.items():
        assert f"log: {data_dir / 'logs' / name}.log, pid {pid}" in out

    _, alice_post = _sign_up(urls["pds1"], "alice.test", "hello from pds1")
    bob, bob_post = _sign_up(urls["pds2"], "bob.test", "hello from pds2")
    # The PDSs are independent processes with one handle authority: the directory.
    other = httpx.get(
        f"{urls['pds2']}/xrpc/com.atproto.identity.resolveHandle", params={"handle": "alice.test"}
    )
    assert other.status_code == 200 and other.json()["did"].startswith("did:plc:")
    # The app view follows the network; bob reads alice's post through his own PDS.
    assert "appview" in urls

    def alice_feed() -> list[Any]:
        try:
            return list(bob.get_author_feed("alice.test").feed)
        except BadRequestError:  # "Profile not found" until the app view has indexed her
            return []

    feed = _poll(alice_feed, "the app view to index alice")
    assert feed[0].post.record.text == "hello from pds1"  # type: ignore[attr-defined]

    # A service that crashes is started again by the supervisor.
    os.kill(pids["pds3"], signal.SIGKILL)
    _poll(lambda: "pds3 restarted" in up.output(), "the supervisor to restart pds3")
    assert "pds3 (pid " in up.output() and "restarting it in 1 s" in up.output()
    assert up.endpoints()["pids"]["pds3"] != pids["pds3"]
    _poll(lambda: _answers(urls["pds3"] + "/xrpc/_health"), "pds3 to answer again")

    # One killed on purpose stays down.
    chaos = subprocess.run(
        [sys.executable, "-m", "plaza.cli", "chaos", "kill", "pds1", "--data-dir", str(data_dir)],
        check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert f"killed pds1 (pid {pids['pds1']}) with SIGKILL" in chaos.stdout
    report = f"pds1 (pid {pids['pds1']}) killed by SIGKILL; the other services keep running"
    _poll(lambda: report in up.output(), "the supervisor to report the death")
    dead = _poll(lambda: up.endpoints().get("exited"), "endpoints.json to mark pds1")
    assert dead == {"pds1": {"returncode": -9, "status": "killed by SIGKILL"}}
    assert up.endpoints()["pids"]["pds1"] == pids["pds1"]  # the dead one keeps its pid
    assert urls["pds1"] not in up.endpoints()["pds"]
    assert up.proc.poll() is None
    pids = up.endpoints()["pids"]
    for name, url in urls.items():
        assert _answers(url + (HEALTH[name] or "")) == (name != "pds1"), name
    for name, pid in pids.items():
        assert _alive(pid) == (name != "pds1"), name
    for _ in range(20):  # metered requests, counted in memory until the stop flushes them
        bob.get_post(bob_post, bob.me.did)  # type: ignore[union-attr]

    # SIGTERM: every child stops gracefully; a service was killed meanwhile, so exit 1.
    assert up.stop(signal.SIGTERM) == 1
    assert _all_gone(pids.values())
    out = up.output()
    assert "stopped; everything is saved under" in out
    for name in pids:
        if name != "pds1":
            assert (data_dir / "logs" / f"{name}.log").read_text().rstrip().endswith("stopped")
    final = up.endpoints()["exited"]
    assert {name: final[name]["returncode"] for name in pids} == {
        name: -9 if name == "pds1" else 0 for name in pids
    }

    # Started again on the same data (the kill marker healed): everything acknowledged
    # is there, genesis is not run twice, and a clean Ctrl-C exits 0.
    subprocess.run(
        [sys.executable, "-m", "plaza.cli", "chaos", "heal", "pds1", "--data-dir", str(data_dir)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    again = Up(data_dir, base)
    ups.append(again)
    restarted = again.wait_ready()
    assert "founded the network" not in again.output()
    assert set(restarted["pids"].values()).isdisjoint(pids.values())
    assert _read_back(urls["pds2"], "bob.test", bob_post) == "hello from pds2"
    assert _read_back(urls["pds1"], "alice.test", alice_post) == "hello from pds1"
    usage = httpx.get(
        f"{urls['pds2']}/xrpc/social.plaza.provider.getUsage",
        params={"did": bob.me.did},  # type: ignore[union-attr]
        auth=("admin", ADMIN_PASSWORD),  # reached the PDS through the environment
    )
    assert usage.status_code == 200, usage.text
    (row,) = usage.json()["accounts"]
    assert row["requests"] >= 20
    assert again.stop(signal.SIGINT) == 0, again.output()
    assert _all_gone(restarted["pids"].values())
    assert "stopped; everything is saved under" in again.output()


def test_a_killed_supervisor_leaves_no_orphans(tmp_path: Path, ups: list[Up]) -> None:
    data_dir = tmp_path / "plaza"
    up = Up(data_dir, _free_base())
    ups.append(up)
    pids: dict[str, int] = up.wait_ready()["pids"]

    def workers_at_work() -> bool:
        # A worker (no health URL) takes SIGTERM gracefully once it has set up: it has
        # then written past its log's first line.
        logs = [data_dir / "logs" / f"{n}.log" for n in pids if HEALTH[n] is None]
        return all(len(log.read_text().splitlines()) > 1 for log in logs)

    _poll(workers_at_work, "the workers to start working")
    up.kill()
    # The kernel sends each child SIGTERM (PR_SET_PDEATHSIG): they stop gracefully.
    _poll(lambda: _all_gone(pids.values()), "the children of a killed supervisor to exit")
    for name in pids:
        assert (data_dir / "logs" / f"{name}.log").read_text().rstrip().endswith("stopped")


def test_a_service_that_cannot_start_is_named_and_the_started_ones_stop(tmp_path: Path) -> None:
    data_dir = tmp_path / "plaza"
    base = _free_base()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", base + 1))
        taken.listen()
        run = subprocess.run(
            [sys.executable, "-m", "plaza.cli", "up",
             "--data-dir", str(data_dir), "--port-base", str(base)],
            check=False, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
        )  # fmt: skip
    assert run.returncode == 1, run.stdout + run.stderr
    assert "error: pds1 exited with status 1 while starting" in run.stderr
    assert f"cannot listen on http://127.0.0.1:{base + 1}" in run.stderr  # pds1's log
    assert not (data_dir / "endpoints.json").exists()
    assert (data_dir / "logs" / "directory.log").read_text().rstrip().endswith("stopped")
    # What needs pds1 never started.
    assert not (data_dir / "logs" / "relay.log").exists()


# -- the table ---------------------------------------------------------------------------


def test_a_service_runs_only_when_its_serve_command_and_prerequisites_exist() -> None:
    names = lambda commands: [s.name for s in services(commands)]  # noqa: E731
    pdss = ["pds1", "pds2", "pds3", "pds4"]
    gov = ["dao", "market"]
    probers = ["prober1", "prober2", "prober3"]
    assert names({"directory", "pds"}) == ["directory", *pdss, "dao"]
    assert names({"directory", "pds", "market"}) == ["directory", *pdss, *gov]
    assert names({"directory", "pds", "market", "prober"}) == ["directory", *pdss, *gov, *probers]
    # The agents need the archive to restore from; the archive needs the relay.
    assert names({"directory", "pds", "market", "archive"}) == ["directory", *pdss, *gov]
    every = ["directory", *pdss, *gov, "relay", "archive", "agents"]
    assert names({"directory", "pds", "market", "relay", "archive"}) == every
    assert names({"pds", "relay", "archive"}) == []
    assert names({"directory", "pds", "appview"}) == ["directory", *pdss, "dao", "appview"]
    assert names({"directory", "pds", "market", "provider"}) == [
        "directory", *pdss, *gov, "provider1", "provider2", "provider3", "provider4"
    ]  # fmt: skip
    assert names({"directory", "pds", "entryway"}) == ["directory", *pdss, "dao", "entryway"]
    assert names(None)[:7] == ["directory", *pdss, *gov]


def _argv(net: Network, name: str) -> list[str]:
    return list(child_spec(net, next(s for s in SERVICES if s.name == name)).argv[1:])


def test_ports_and_command_lines_follow_the_agreed_layout() -> None:
    net = Network(Path("d"), "127.0.0.1", 4000)
    assert _argv(net, "directory") == [
        "-m", "plaza.cli", "serve", "directory",
        "--host", "127.0.0.1", "--port", "4000", "--data-dir", "d/directory",
    ]  # fmt: skip
    appview = ["--appview", "http://127.0.0.1:4005"] if options(("serve", "appview")) else []
    assert _argv(net, "pds2")[3:] == [
        "pds", "--host", "127.0.0.1", "--port", "4002", "--data-dir", "d/pds2",
        "--directory", "http://127.0.0.1:4000", "--public-url", "http://127.0.0.1:4002",
        *appview, "--allow-private-proxy",
    ]  # fmt: skip
    assert _argv(net, "pds4")[6:10] == ["--port", "4007", "--data-dir", "d/pds4"]
    assert _argv(net, "relay")[3:] == [
        "relay", "--host", "127.0.0.1", "--port", "4003", "--data-dir", "d/relay",
        "--directory", "http://127.0.0.1:4000",
        "--crawl", "http://127.0.0.1:4001", "--crawl", "http://127.0.0.1:4002",
        "--crawl", "http://127.0.0.1:4006", "--crawl", "http://127.0.0.1:4007",
        "--market", "http://127.0.0.1:4009",
    ]  # fmt: skip
    assert _argv(net, "archive")[3:] == [
        "archive", "--host", "127.0.0.1", "--port", "4004", "--data-dir", "d/archive",
        "--relay", "http://127.0.0.1:4003", "--directory", "http://127.0.0.1:4000",
    ]  # fmt: skip
    assert _argv(net, "appview")[3:] == [
        "appview", "--host", "127.0.0.1", "--port", "4005", "--data-dir", "d/appview",
        "--relay", "http://127.0.0.1:4003", "--directory", "http://127.0.0.1:4000",
        "--public-url", "http://127.0.0.1:4005",
    ]  # fmt: skip
    assert _argv(net, "dao")[2:] == [
        "dao", "serve", "--host", "127.0.0.1", "--port", "4008", "--data-dir", "d/gov",
        "--directory", "http://127.0.0.1:4000",
    ]  # fmt: skip
    assert _argv(net, "market")[2:] == [
        "serve", "market", "--host", "127.0.0.1", "--port", "4009", "--data-dir", "d/gov",
        "--operator", "ops",
    ]  # fmt: skip
    assert _argv(net, "prober2")[2:] == [
        "serve", "prober", "--data-dir", "d/prober2", "--as", "prober",
        "--market", "http://127.0.0.1:4009", "--interval", "10",
    ]  # fmt: skip
    assert _argv(net, "agents")[2:12] == [
        "agents", "run", "--data-dir", "d/gov", "--as", "ops", "--interval", "3",
        "--directory", "http://127.0.0.1:4000",
    ]  # fmt: skip
    assert _argv(net, "agents")[12:18] == [
        "--archive", "http://127.0.0.1:4004", "--grace", "20", "--dead-after", "30",
    ]  # fmt: skip
    # Off loopback the PDSs keep forwarded calls off private addresses.
    public = Network(Path("d"), "0.0.0.0", 4000)  # only formatted, never bound
    assert "--allow-private-proxy" not in child_spec(public, SERVICES[1]).argv
    spec = child_spec(net, SERVICES[1])
    assert spec.health_url == "http://127.0.0.1:4001/xrpc/_health"
    assert spec.log_path == Path("d/logs/pds1.log")
    assert spec.after == ("directory",)
    # Workers without a port count as started once they run.
    assert child_spec(net, next(s for s in SERVICES if s.name == "agents")).health_url is None


def test_every_option_up_passes_is_one_its_command_takes() -> None:
    net = Network(Path("d"), "127.0.0.1", 4000, postgres="postgresql://u@h/db")
    for service in services():
        takes = options(service.command)
        assert takes is not None
        passed = {arg for arg in child_spec(net, service).argv if arg.startswith("--")}
        assert passed <= takes, (service.name, passed - takes)
    bus = Network(Path("d"), "127.0.0.1", 4000, postgres="postgresql://u@h/db",
                  bus="nats://127.0.0.1:4222", indexers=2, labeler_workers=2,
                  bus_stream="S")  # fmt: skip
    chosen = services(indexers=2, labeler_workers=2)
    assert [s.name for s in chosen if s.kind == "appview-indexer"] == [
        "appview-indexer-1", "appview-indexer-2"
    ]  # fmt: skip
    assert [s.name for s in chosen if s.kind == "labeler-worker"] == [
        "labeler-worker-1", "labeler-worker-2"
    ]  # fmt: skip
    for service in chosen:
        takes = options(service.command)
        assert takes is not None
        passed = {arg for arg in child_spec(bus, service).argv if arg.startswith("--")}
        assert passed <= takes, (service.name, passed - takes)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--bus", "nats://127.0.0.1:4222"], "--bus needs --postgres"),
        (["--indexers", "3"], "--indexers needs --bus"),
        (["--labeler-workers", "2"], "--labeler-workers needs --bus"),
        (["--bus", "http://x", "--postgres", "postgresql://u@h/db"], "nats://"),
        (["--bus", "nats://h", "--postgres", "postgresql://u@h", "--indexers", "0"], "--indexers"),
    ],
)
def test_the_bus_needs_postgres_and_indexers_need_the_bus(
    tmp_path: Path, args: list[str], says: str
) -> None:
    from typer.testing import CliRunner

    from plaza.cli import app

    data = tmp_path / "plaza"
    result = CliRunner().invoke(app, ["up", "--data-dir", str(data), *args])
    assert result.exit_code == 2, result.output
    assert says in result.output
    assert not data.exists()  # refused before anything was made


# -- make up -----------------------------------------------------------------------------


def _make_up(*args: str) -> str:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    run = subprocess.run(
        ["make", "-n", "--no-print-directory", "-C", str(ROOT), "up", *args],
        check=True, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    return run.stdout.strip().splitlines()[-1]


def test_make_up_passes_the_port_base() -> None:
    assert _make_up("PORT_BASE=8000").endswith("plaza up --port-base 8000")


def test_make_up_without_a_port_base_uses_the_default() -> None:
    assert _make_up().endswith("plaza up")


def test_the_labeler_runs_with_the_network_under_its_did() -> None:
    did = "did:plc:" + "a" * 24
    net = Network(Path("d"), "127.0.0.1", 4000, labeler_did=did)
    assert OFFSET["labeler"] == 12 and PORTS == 13
    assert _argv(net, "labeler")[3:] == [
        "labeler", "--host", "127.0.0.1", "--port", "4012", "--data-dir", "d/labeler",
        "--relay", "http://127.0.0.1:4003", "--directory", "http://127.0.0.1:4000",
        "--public-url", "http://127.0.0.1:4012", "--model", "d/labeler/model.json",
        "--dao", "http://127.0.0.1:4008",
    ]  # fmt: skip
    assert child_spec(net, next(s for s in SERVICES if s.name == "labeler")).health_url == (
        "http://127.0.0.1:4012/xrpc/_health"
    )
    # the app view applies its labels; the PDSs send it the reports naming no labeler
    assert _argv(net, "appview")[-3:] == ["--labeler", did, "--remote-allow-private"]
    assert _argv(net, "pds3")[-2:] == ["--moderation", did]
    assert _argv(net, "web")[-2:] == ["--labeler", did]  # its Report buttons name it
    # its market identity reports the accounts the relay lists, for its labeler contract
    assert _argv(net, "labeler-provider")[2:] == [
        "serve", "provider", "--data-dir", "d/labeler", "--as", "provider",
        "--market", "http://127.0.0.1:4009", "--pds", "http://127.0.0.1:4003",
        "--service", "labeler",
    ]  # fmt: skip
    names = [s.name for s in services()]
    assert names.index("relay") < names.index("labeler") < names.index("appview")
    for service in services():
        passed = {arg for arg in child_spec(net, service).argv if arg.startswith("--")}
        assert passed <= (options(service.command) or set()), service.name
    # without a labeler DID (a plaza without the labeler) nobody names one
    bare = Network(Path("d"), "127.0.0.1", 4000)
    assert "--labeler" not in _argv(bare, "appview") and "--moderation" not in _argv(bare, "pds1")
    assert "--labeler" not in _argv(bare, "web")


def test_endpoints_name_the_labeler_and_its_did() -> None:
    did = "did:plc:" + "b" * 24
    net = Network(Path("d"), "127.0.0.1", 4000, labeler_did=did)
    spec = child_spec(net, next(s for s in SERVICES if s.name == "labeler"))
    proc = subprocess.Popen([sys.executable, "-c", ""])
    proc.wait(timeout=60)
    out = endpoints(net, [Child(spec, proc, 0)])
    assert (out["labeler"], out["labeler_did"]) == ("http://127.0.0.1:4012", did)
    assert out["pids"] == {"labeler": proc.pid} and "labeler" in out["exited"]
