"""The supervisor: real child processes on real sockets, started in order, watched,
stopped gracefully or killed after the grace period."""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

import httpx
import pytest

from plaza.services.supervisor import (
    Backoff,
    Child,
    ChildSpec,
    StartupError,
    Supervisor,
    describe_exit,
)
from tests.services.archive.conftest import wait_for

# A small HTTP server that stops cleanly (status 0) on SIGTERM; or ignores it; or
# answers it by sending SIGTERM to its parent (a second stop request).
SERVER = """
import http.server, os, signal, sys, threading
port, on_term = int(sys.argv[1]), sys.argv[2]
srv = http.server.HTTPServer(("127.0.0.1", port), http.server.SimpleHTTPRequestHandler)
def term(*_):
    threading.Thread(target=srv.shutdown).start()
def forward(*_):
    os.kill(os.getppid(), signal.SIGTERM)
handler = {"stop": term, "ignore": signal.SIG_IGN, "forward": forward}[on_term]
signal.signal(signal.SIGTERM, handler)
print("serving on", port, flush=True)
srv.serve_forever()
print("stopped", flush=True)
"""


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server(tmp_path: Path, name: str, *, on_term: str = "stop") -> ChildSpec:
    port = _port()
    return ChildSpec(
        name=name,
        argv=(sys.executable, "-c", SERVER, str(port), on_term),
        health_url=f"http://127.0.0.1:{port}/",
        log_path=tmp_path / "logs" / f"{name}.log",
    )


def _answers(url: str) -> bool:
    try:
        return httpx.get(url).status_code == 200
    except httpx.HTTPError:
        return False


def _script(tmp_path: Path, name: str, code: str) -> ChildSpec:
    return ChildSpec(
        name=name,
        argv=(sys.executable, "-c", code),
        health_url=f"http://127.0.0.1:{_port()}/",
        log_path=tmp_path / "logs" / f"{name}.log",
    )


def test_children_start_in_order_each_in_its_own_process_and_stop_cleanly(
    tmp_path: Path,
) -> None:
    specs = [_server(tmp_path, "a"), _server(tmp_path, "b")]
    with Supervisor(specs, grace_seconds=30) as sup:
        assert sup.start()
        pids = {c.pid for c in sup.children}
        assert len(pids) == 2 and os.getpid() not in pids
        for spec in specs:
            assert httpx.get(spec.health_url).status_code == 200
        # Each child leads its own session, so a terminal's Ctrl-C reaches only us.
        assert all(os.getsid(c.pid) == c.pid for c in sup.children)
        sup.stop()
        assert sup.clean()
        assert [c.returncode for c in sup.children] == [0, 0]
    for spec in specs:
        log = spec.log_path.read_text()
        assert "serving on" in log and log.rstrip().endswith("stopped")


def test_a_child_that_dies_is_reported_and_the_others_keep_running(tmp_path: Path) -> None:
    specs = [_server(tmp_path, "a"), _server(tmp_path, "b")]
    reported: list[tuple[str, int | None]] = []

    def on_exit(child: Child) -> None:
        reported.append((child.name, child.returncode))
        os.kill(os.getpid(), signal.SIGTERM)  # our own stop request ends the watch

    with Supervisor(specs) as sup:
        assert sup.start()
        a, b = sup.children
        os.kill(a.pid, signal.SIGKILL)
        sup.watch(on_exit=on_exit)
        assert reported == [("a", -signal.SIGKILL)]
        assert sup.stop_requested
        assert [c.name for c in sup.running()] == ["b"]
        assert httpx.get(specs[1].health_url).status_code == 200
        assert [c.name for c in sup.died()] == ["a"]
        sup.stop()
        assert b.returncode == 0
        assert not sup.clean()  # a died on its own


def test_watch_returns_when_every_child_is_gone(tmp_path: Path) -> None:
    with Supervisor([_server(tmp_path, "a")]) as sup:
        assert sup.start()
        os.kill(sup.children[0].pid, signal.SIGKILL)
        seen: list[str] = []
        sup.watch(on_exit=lambda child: seen.append(child.name))
        assert seen == ["a"] and not sup.stop_requested and not sup.running()


def test_a_child_that_exits_while_starting_is_named_with_its_log(tmp_path: Path) -> None:
    later = _server(tmp_path, "later")
    specs = [
        _server(tmp_path, "first"),
        _script(tmp_path, "broken", "print('no config here'); raise SystemExit(3)"),
        later,
    ]
    with Supervisor(specs) as sup, pytest.raises(StartupError) as info:
        sup.start()
    assert info.value.name == "broken"
    assert "broken exited with status 3 while starting" in info.value.message
    assert "no config here" in info.value.message
    # The one started before it was stopped on leaving; the one after never started.
    assert [c.name for c in sup.children] == ["first", "broken"]
    assert sup.children[0].returncode == 0
    assert not later.log_path.exists()


def test_a_command_that_cannot_run_is_named(tmp_path: Path) -> None:
    missing = ChildSpec(
        "ghost", (str(tmp_path / "no-such-program"),), "http://127.0.0.1:1/", tmp_path / "ghost.log"
    )
    with (
        Supervisor([_server(tmp_path, "first"), missing]) as sup,
        pytest.raises(StartupError) as info,
    ):
        sup.start()
    assert info.value.name == "ghost" and "ghost could not be started" in info.value.message
    assert [c.name for c in sup.children] == ["first"]


def test_a_child_that_never_answers_misses_the_startup_deadline(tmp_path: Path) -> None:
    code = "import time; print('thinking', flush=True); time.sleep(600)"
    silent = _script(tmp_path, "silent", code)
    with Supervisor([silent], startup_seconds=2) as sup, pytest.raises(StartupError) as info:
        sup.start()
    assert "silent did not answer" in info.value.message and "thinking" in info.value.message
    assert sup.children[0].returncode == -signal.SIGTERM


def test_a_child_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    with Supervisor([_server(tmp_path, "stubborn", on_term="ignore")], grace_seconds=0.5) as sup:
        assert sup.start()
        sup.stop()
        (child,) = sup.children
        assert child.killed and child.returncode == -signal.SIGKILL
        assert not sup.clean()


def test_a_second_stop_request_kills_without_waiting_for_the_grace(tmp_path: Path) -> None:
    grace = 120.0
    with Supervisor([_server(tmp_path, "stubborn", on_term="forward")], grace_seconds=grace) as sup:
        assert sup.start()
        began = time.monotonic()
        sup.stop()  # the child's answer to SIGTERM is our second stop request
        assert time.monotonic() - began < grace
        (child,) = sup.children
        assert sup.stop_requested and child.killed and child.returncode == -signal.SIGKILL


def test_signal_handlers_are_restored_on_leaving(tmp_path: Path) -> None:
    before = signal.getsignal(signal.SIGTERM)
    with Supervisor([]) as sup:
        assert sup.start()
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize(
    ("code", "text"),
    [(0, "exited with status 0"), (2, "exited with status 2"), (-9, "killed by SIGKILL")],
)
def test_exit_statuses_read_as_people_say_them(code: int, text: str) -> None:
    assert describe_exit(code) == text


# -- restarts ----------------------------------------------------------------------------


def test_backoff_doubles_to_its_cap_and_resets_after_a_healthy_run() -> None:
    b = Backoff(first_s=1, max_s=30, reset_after_s=60)
    delays = [b.next_delay(None, 0.5)]
    for _ in range(6):
        delays.append(b.next_delay(delays[-1], 0.5))
    assert delays == [1, 2, 4, 8, 16, 30, 30]
    assert b.next_delay(30, 61) == 1


def test_a_crashed_child_restarts_after_its_backoff_and_a_held_one_waits_for_release(
    tmp_path: Path,
) -> None:
    a, b = _server(tmp_path, "a"), _server(tmp_path, "b")
    held = {"b"}
    events: list[tuple[str, str, bool]] = []

    def on_exit(child: Child) -> None:
        events.append(("exit", child.name, child.name in held))

    def on_restart(child: Child) -> None:
        events.append(("restart", child.name, child.name in held))
        if child.name == "a":
            # b stayed down while held; released, it starts again.
            assert sup.children[1].returncode == -signal.SIGKILL
            assert sup.pending_restart(sup.children[1]) is None
            held.discard("b")
        else:
            os.kill(os.getpid(), signal.SIGTERM)  # ends the watch

    backoff = Backoff(first_s=0.2, max_s=1, reset_after_s=60)
    with Supervisor([a, b], restart=backoff, held=held.__contains__) as sup:
        assert sup.start()
        first_a, first_b = (c.pid for c in sup.children)
        os.kill(first_b, signal.SIGKILL)
        os.kill(first_a, signal.SIGKILL)
        began = time.monotonic()
        sup.watch(on_exit=on_exit, on_restart=on_restart)
        assert time.monotonic() - began >= 0.2
        assert [e for e in events if e[0] == "restart"] == [
            ("restart", "a", False),
            ("restart", "b", False),
        ]
        child_a, child_b = sup.children
        assert child_a.pid != first_a and child_a.restarts == 1
        assert child_b.pid != first_b and child_b.restarts == 1
        for spec in (a, b):
            wait_for("the restarted server", lambda spec=spec: _answers(spec.health_url or ""))
        sup.stop()
        assert child_a.returncode == 0 and child_b.returncode == 0
    assert a.log_path.read_text().count("started:") == 2


def test_a_child_without_a_health_url_counts_as_started_once_it_runs(tmp_path: Path) -> None:
    worker = ChildSpec(
        name="worker",
        argv=(sys.executable, "-c", "import time, os; print(os.environ['WHO'], flush=True); "
              "time.sleep(600)"),
        health_url=None,
        log_path=tmp_path / "logs" / "worker.log",
        env={"WHO": "the worker's own variable"},
    )  # fmt: skip
    with Supervisor([worker]) as sup:
        assert sup.start()
        assert sup.running() == sup.children
        wait_for("the worker's output", lambda: "own variable" in worker.log_path.read_text())
        sup.stop()
