"""Several processes append to one SQLite ledger at once, as the DAO service, the market,
the agents' loop and the entryway do under ``plaza up``: each lost race for the head is
retried after a sync, nothing is lost or written twice, and the log verifies."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from plaza.ledger import SqlEventStore, verify_log

WRITER = """
import sys
from plaza.ledger import Ledger, SqlEventStore
from plaza.ledger.keystore import Signer

url, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
signer = Signer.generate()
store = SqlEventStore.open(url)
ledger = Ledger(store)
for i in range(count):
    ledger.record(signer.key, author_did=signer.did, type="agent.action",
                  payload={"writer": name, "n": i}, time=1_900_000_000_000 + i)
store.close()
print("done", name, flush=True)
"""

WRITERS, EACH = 4, 40


def test_concurrent_writers_retry_lost_races_and_lose_nothing(tmp_path: Path) -> None:
    url = f"sqlite://{tmp_path / 'ledger.db'}"
    SqlEventStore.open(url).close()  # the schema exists before the race begins
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, url, f"w{n}", str(EACH)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for n in range(WRITERS)
    ]
    for p in procs:
        out, _ = p.communicate(timeout=240)
        assert p.returncode == 0, out
    store = SqlEventStore.open(url)
    try:
        events = list(store.read())
        report = verify_log(store.read_raw())
    finally:
        store.close()
    assert report.ok, report.problem
    assert [e.seq for e in events] == list(range(WRITERS * EACH))
    written = sorted((e.payload["writer"], e.payload["n"]) for e in events)
    assert written == sorted((f"w{n}", i) for n in range(WRITERS) for i in range(EACH))
    # Each writer's own events stay in its order.
    for n in range(WRITERS):
        mine = [e.payload["n"] for e in events if e.payload["writer"] == f"w{n}"]
        assert mine == list(range(EACH))
