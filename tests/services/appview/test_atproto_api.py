"""The same network driven by the official TypeScript client, ``@atproto/api`` (pinned in
tests/js/package.json; ``make test`` installs it with ``npm ci``): three accounts on two
PDSs, each through its own PDS, reading timelines, profiles, threads and author feeds
that the app view answers."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

from tests.services.appview.conftest import Net

JS = Path(__file__).resolve().parents[2] / "js"


def test_atproto_api_reads_what_the_app_view_indexed(net: Net) -> None:
    node = shutil.which("node")
    assert node is not None, "node is needed for the @atproto/api check"
    assert (JS / "node_modules" / "@atproto" / "api").is_dir(), (
        "@atproto/api is not installed: run `make js` (npm ci --prefix tests/js)"
    )
    run = subprocess.run(
        [node, str(JS / "appview_check.mjs"), *net.pds],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    assert out["timeline"][:4] == out["expected"]
    assert out["carolLikes"] == 1 and out["carolReplies"] == 1 and out["viewerLike"]
    assert out["profileFollowers"] == 1 and out["profileHandle"] == out["carolHandle"]
    assert out["threadReplies"] == [out["replyUri"]]
    assert out["authorFeed"] == [[out["firstUri"], "app.bsky.feed.defs#reasonRepost"]]
