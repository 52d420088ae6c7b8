"""``plaza serve relay`` as a real process, killed with SIGKILL mid-stream and started
again: it resumes each host from its stored cursor, and its own sequence has no gap and
no duplicate while every event of every host comes out exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from plaza.services.directory import DirectorySettings
from plaza.services.directory import create_app as create_directory
from plaza.services.relay.frames import Frame, decode_frame
from plaza.services.runner import ServedApp, ServerThread
from tests.conftest import pg_schema
from tests.services.relay.conftest import firehose, free_port
from tests.services.relay.hostile import FakeAccount, FakeHost, commit_body

ACCOUNTS_PER_HOST = 3
COMMITS_PER_ACCOUNT = 50


@pytest.fixture(params=["sqlite", "postgresql"])
def relay_db(request: pytest.FixtureRequest) -> Iterator[str | None]:
    """None for SQLite in the data dir, else a fresh PostgreSQL schema's URL."""
    if request.param == "sqlite":
        yield None
        return
    with pg_schema("relay") as url:
        yield url


def _start(args: list[str]) -> subprocess.Popen[str]:
    exe = Path(sys.executable).with_name("plaza")
    return subprocess.Popen(
        [str(exe), "serve", "relay", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def _wait_ready(proc: subprocess.Popen[str], url: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
        try:
            if httpx.get(f"{url}/_health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)  # another process: poll its health with a deadline
    raise AssertionError("the relay did not become ready")


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if stat.rsplit(")", 1)[1].split()[1] == str(pid):
                out.append(int(entry.name))
    return out


def _wait_gone(pids: list[int]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        alive = [p for p in pids if Path(f"/proc/{p}").exists() and not _zombie(p)]
        if not alive:
            return
        time.sleep(0.1)  # other processes: poll with a deadline
    raise AssertionError(f"processes {alive} outlived their relay")


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _read_from(url: str, cursor: int, until_seq: int | None, quiet_s: float) -> list[Frame]:
    """Frames from ``cursor`` on, until ``until_seq`` (or ``quiet_s`` of silence)."""
    out: list[Frame] = []
    with firehose(url, cursor) as ws:
        while True:
            try:
                frame = decode_frame(ws.recv(timeout=quiet_s))
            except TimeoutError:
                return out
            out.append(frame)
            if until_seq is not None and frame.body["seq"] >= until_seq:
                return out


@pytest.mark.parametrize("workers", [0, 1], ids=["inline", "worker"])
def test_sigkill_mid_stream_loses_and_repeats_nothing(
    tmp_path: Path, relay_db: str | None, workers: int
) -> None:
    dport = free_port()
    fakes = [FakeHost(), FakeHost()]
    ports = [free_port() for _ in fakes]
    apps = [
        ServedApp(
            "directory",
            create_directory(DirectorySettings.for_data_dir(tmp_path / "dir")),
            port=dport,
        )
    ]
    apps += [
        ServedApp(f"fake{i}", f.app(), port=p)
        for i, (f, p) in enumerate(zip(fakes, ports, strict=True))
    ]
    with ServerThread(apps) as urls:
        directory = urls[0]
        expected: set[tuple[str, str]] = set()
        for fake, url in zip(fakes, urls[1:], strict=True):
            fake.url = url
            accounts = [FakeAccount(directory, url).register() for _ in range(ACCOUNTS_PER_HOST)]
            for _ in range(COMMITS_PER_ACCOUNT):
                for acct in accounts:
                    result = acct.next_commit()
                    fake.push("#commit", commit_body(result))
                    expected.add((acct.did, result.rev))
        rport = free_port()
        relay = f"http://127.0.0.1:{rport}"
        args = [
            "--port",
            str(rport),
            "--data-dir",
            str(tmp_path / "relay"),
            "--directory",
            directory,
        ]
        args += [a for url in urls[1:] for a in ("--crawl", url)]
        args += ["--host-rate", "100", "--host-burst", "10"]  # slow enough to kill mid-stream
        if relay_db is not None:
            args += ["--db", relay_db]
        args += ["--verify-workers", str(workers)]
        proc = _start(args)
        try:
            _wait_ready(proc, relay)
            _read_from(relay, 0, until_seq=60, quiet_s=20)
            at_kill = httpx.get(f"{relay}/_metrics", timeout=10).json()["seq"]
            children = _children(proc.pid)
            assert len(children) >= workers
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
            _wait_gone(children)  # SIGKILL stops no children: the workers must go alone
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        assert 60 <= at_kill < len(expected) - 50, "not killed mid-stream"
        proc = _start(args)
        try:
            _wait_ready(proc, relay)
            everything = _read_from(relay, 0, until_seq=None, quiet_s=3)
            while len(everything) < len(expected):
                more = _read_from(relay, everything[-1].body["seq"], until_seq=None, quiet_s=3)
                assert more, f"stalled at {len(everything)} of {len(expected)}"
                everything += more
        finally:
            proc.send_signal(signal.SIGINT)
            out, _ = proc.communicate(timeout=30)
    seqs = [f.body["seq"] for f in everything]
    assert seqs == list(range(1, len(seqs) + 1)), "a gap or a duplicate in the relay's sequence"
    commits = [(f.body["repo"], f.body["rev"]) for f in everything if f.kind == "#commit"]
    assert len(commits) == len(set(commits)) == len(expected)
    assert set(commits) == expected
    assert "Traceback" not in out, out
