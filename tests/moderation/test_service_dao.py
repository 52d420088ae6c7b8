"""The labeler under a DAO and under load: it reads the DAO's mandate from the DAO's HTTP
API, holds an account takedown until members have voted it through (then issues it),
and answers callers past their allowance of queryLabels (per address) and createReport
(per account) with 429. Real parts on real sockets: directory, PDS, labeler, app view
and the DAO's API over a SQLite ledger."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from plaza.dao.api import ApiSettings
from plaza.dao.api import create_app as create_dao_api
from plaza.dao.service import Dao
from plaza.ledger import SqlEventStore
from plaza.moderation.classifier import Classifier
from plaza.moderation.policy import action_for
from plaza.moderation.service import RateLimit
from plaza.services.runner import ServedApp, ServerThread
from tests.moderation.labnet import LabNet, lab_network
from tests.moderation.test_service import admin, report
from tests.network.livenet import AGENT, MEMBERS, _dao_market, port

QUERY_BURST, REPORT_BURST = 4, 2


@dataclass
class Governed:
    lab: LabNet
    ledger: Path
    dao_url: str


@pytest.fixture(scope="module")
def gov(tmp_path_factory: pytest.TempPathFactory, model: Classifier) -> Iterator[Governed]:
    root = tmp_path_factory.mktemp("labdao")
    ledger = root / "ledger.db"
    dao, _ = _dao_market(ledger)
    dao.store.close()
    dport = port()
    api = create_dao_api(ApiSettings(db_url=f"sqlite://{ledger}"))
    with ServerThread([ServedApp("dao", api, port=dport)]) as urls:
        yield from (
            Governed(lab, ledger, urls[0])
            for lab in lab_network(
                root / "net",
                model,
                dao_url=urls[0],
                dao_poll_s=3600.0,  # the test asks for each sync (plaza.labeler.syncDao)
                query_rate=RateLimit(0.001, QUERY_BURST),
                report_rate=RateLimit(0.001, REPORT_BURST),
            )
        )


def _health(lab: LabNet) -> dict[str, Any]:
    return dict(httpx.get(f"{lab.labeler}/xrpc/_health", timeout=10).json())


def test_account_takedown_waits_for_the_members_vote(gov: Governed) -> None:
    lab = gov.lab
    # the labeler reads the DAO's mandate in the background once it serves
    health = lab.until(lambda: (h := _health(lab))["mandate"]["from_dao"] and h)
    assert health["mandate"]["error"] is None and health["mandate"]["version"] == 1
    reporter, _ = lab.net.client(0, "watchdog")
    _, target = lab.net.client(0, "scamring")
    r = report(lab, reporter, {
        "reasonType": "com.atproto.moderation.defs#reasonMisleading",
        "subject": {"$type": "com.atproto.admin.defs#repoRef", "did": target["did"]},
        "reason": "runs a scam ring",
    })  # fmt: skip
    assert r.status_code == 200, r.text
    rid = r.json()["id"]
    out = admin(lab, "plaza.labeler.resolveReview",
                json={"id": rid, "action": "label", "val": "!takedown"}).json()  # fmt: skip
    assert out["status"] == "waiting" and "moderation.takedown" in out["resolution"]
    issued = _health(lab)["issued"]
    # a sync before the vote changes nothing
    assert admin(lab, "plaza.labeler.syncDao", json={}).json()["issued"] == 0

    store = SqlEventStore.open(f"sqlite://{gov.ledger}")
    try:
        dao = Dao(store)
        t = dao.state.now_ms + 1
        done = dao.act(AGENT, action_for(lab.did, target["did"], "!takedown"), "scam ring", t)
        assert done.proposal is not None
        assert admin(lab, "plaza.labeler.syncDao", json={}).json()["issued"] == 0  # filed only
        dao.vote(MEMBERS[0], done.proposal, {"choice": "yes"}, t + 1)
        dao.vote(MEMBERS[1], done.proposal, {"choice": "yes"}, t + 2)
        dao.execute(MEMBERS[0], done.proposal, t + 3)
    finally:
        store.close()
    assert admin(lab, "plaza.labeler.syncDao", json={}).json() == {
        "issued": 1, "synced": True, "error": None
    }  # fmt: skip
    assert _health(lab)["issued"] == issued + 1
    done_items = admin(lab, "plaza.labeler.listReviews", params={"status": "labelled"}).json()
    (item,) = [x for x in done_items["reviews"] if x["id"] == rid]
    assert f"proposal:{done.proposal}" in item["resolution"]


def test_create_report_is_limited_per_account(gov: Governed) -> None:
    lab = gov.lab
    noisy, _ = lab.net.client(0, "noisy")
    calm, _ = lab.net.client(0, "calm")
    _, target = lab.net.client(0, "victim")
    body = {
        "reasonType": "com.atproto.moderation.defs#reasonRude",
        "subject": {"$type": "com.atproto.admin.defs#repoRef", "did": target["did"]},
    }
    for _ in range(REPORT_BURST):
        assert report(lab, noisy, body).status_code == 200
    refused = report(lab, noisy, body)
    assert refused.status_code == 429
    assert refused.json()["error"] == "RateLimitExceeded"
    assert int(refused.headers["Retry-After"]) >= 1
    assert report(lab, calm, body).status_code == 200  # another account's allowance


def test_query_labels_is_limited_per_address(gov: Governed) -> None:
    lab = gov.lab
    url = f"{lab.labeler}/xrpc/com.atproto.label.queryLabels"
    answers = [
        httpx.get(url, params={"uriPatterns": "did:*"}, timeout=10) for _ in range(QUERY_BURST + 1)
    ]
    assert [a.status_code for a in answers[:-1]] == [200] * QUERY_BURST
    last = answers[-1]
    assert last.status_code == 429 and last.json()["error"] == "RateLimitExceeded"
    assert "try again" in last.json()["message"] and int(last.headers["Retry-After"]) >= 1
