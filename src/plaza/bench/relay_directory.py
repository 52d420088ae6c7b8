"""The directory of ``plaza bench relay``: the real directory service in its own process.

``python -m plaza.bench.relay_directory DATA_DIR DIDS`` serves
:mod:`plaza.services.directory` on a free loopback port, with SQLite in DATA_DIR, and
prints ``{"url": ...}`` once it listens. Its settings let one client register ``DIDS``
new DIDs at once (``genesis_burst``; the default allows 100, then one a second, for
a whole PDS's sign-ups), since the bench registers every simulated account from one
address. Every other setting is the service's default.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from plaza.services.directory import DirectorySettings, create_app
from plaza.services.runner import ServedApp, run


def main(argv: list[str]) -> None:
    data_dir, dids = Path(argv[0]), int(argv[1])
    base = DirectorySettings.for_data_dir(data_dir)
    settings = DirectorySettings(db_url=base.db_url, genesis_burst=dids, genesis_per_s=dids)
    served = ServedApp("directory", create_app(settings), "127.0.0.1", 0)
    run([served], on_ready=lambda urls: print(json.dumps({"url": urls[0]}), flush=True))


if __name__ == "__main__":
    main(sys.argv[1:])
