"""The graph, notifications, likes, quotes and search driven by the official TypeScript
client, ``@atproto/api`` (pinned in tests/js/package.json; ``make test`` installs it),
which checks every answer against its Lexicon: four accounts on two PDSs, each through
its own PDS."""

from __future__ import annotations

import json
import shutil
import subprocess

from tests.services.appview.conftest import Net
from tests.services.appview.test_atproto_api import JS


def test_atproto_api_reads_the_graph_notifications_and_search(net: Net) -> None:
    node = shutil.which("node")
    assert node is not None, "node is needed for the @atproto/api check"
    assert (JS / "node_modules" / "@atproto" / "api").is_dir(), (
        "@atproto/api is not installed: run `make js` (npm ci --prefix tests/js)"
    )
    run = subprocess.run(
        [node, str(JS / "appview_graph_check.mjs"), *net.pds],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout.strip().splitlines()[-1])
    d = out["dids"]
    assert out["reasons"] == ["quote", "reply", "repost", "like", "follow"]
    assert out["unread"] == 5 and out["unreadAfter"] == 0 and out["allRead"]
    assert out["mutes"] == [d["bob"]] and out["mutesAfter"] == 0
    assert out["follows"] == [d["carol"], d["bob"]]
    assert out["followers"] == [d["carol"], d["bob"]]
    assert out["blocks"] == [d["dave"]]
    assert out["lists"] == [[out["listUri"], "JS list", 1]]
    assert out["listItems"] == [d["bob"]]
    assert out["rels"] == [
        [d["bob"], True, True, None, False],
        [d["dave"], False, False, out["blockUri"], False],
        ["nobody.test", False, False, None, True],
    ]
    assert out["likes"] == [d["alice"]] and out["reposts"] == [d["alice"]]
    assert out["quotes"] == [out["quoteUri"]]
    assert out["actorLikes"] == [out["postUri"]]
    assert out["searchPosts"] == [out["quoteUri"], out["postUri"]]
    assert out["searchActors"] == [d["carol"]] and d["carol"] in out["typeahead"]
    assert d["dave"] not in out["suggestions"] and d["alice"] not in out["suggestions"]
