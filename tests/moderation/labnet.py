"""A live network for the labeler's tests: a directory, one PDS, the labeler following
the PDS's firehose, and an app view following the PDS and accepting the labeler's
labels, each on its own loopback port (ServerThread), the atproto SDK as the client."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from plaza.moderation.classifier import Classifier
from plaza.moderation.service import LabelerSettings, RateLimit
from plaza.moderation.service import create_app as create_labeler
from plaza.services.appview import AppviewSettings
from plaza.services.appview import create_app as create_appview
from plaza.services.directory import DirectorySettings
from plaza.services.directory import create_app as create_directory
from plaza.services.pds import PdsSettings, create_app, service_did_for
from plaza.services.runner import ServedApp, ServerThread
from tests.services.appview.conftest import DEADLINE_S, Net, _free_port

ADMIN = "admin-token-for-tests"


@dataclass
class LabNet:
    net: Net
    labeler: str  # URL
    did: str
    pds_app: Any

    def until(self, what: Callable[[], Any], deadline_s: float = DEADLINE_S) -> Any:
        """Poll ``what`` until it returns something truthy, within the deadline."""
        end = time.monotonic() + deadline_s
        while not (found := what()):
            if time.monotonic() > end:
                raise AssertionError(f"not within {deadline_s}s")
            time.sleep(0.05)  # polling other servers: a short interval, bounded above
        return found

    def labeler_synced(self) -> None:
        want = self.pds_app.state.pds.sequencer.last_seq

        def done() -> bool:
            health = httpx.get(f"{self.labeler}/xrpc/_health", timeout=10).json()
            return bool(health["sources"][0]["seq"] >= want)

        self.until(done)

    def labels(self, uri: str) -> list[dict[str, Any]]:
        r = httpx.get(
            f"{self.labeler}/xrpc/com.atproto.label.queryLabels",
            params={"uriPatterns": uri},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        return list(r.json()["labels"])


# Tests poll queryLabels in tight loops from one address.
GENEROUS = {"query_rate": RateLimit(10_000.0, 10_000), "report_rate": RateLimit(100.0, 100)}


def lab_network(
    root: Path, model: Classifier, *, default_moderation: bool = True, **overrides: Any
) -> Iterator[LabNet]:
    """The lab network; ``default_moderation``: the PDS sends reports naming no target
    to the labeler; ``overrides``: :class:`LabelerSettings` fields."""
    dport, p1, av, lb = (_free_port() for _ in range(4))
    directory = f"http://127.0.0.1:{dport}"
    pds_url = f"http://127.0.0.1:{p1}"
    av_url = f"http://127.0.0.1:{av}"
    lb_url = f"http://127.0.0.1:{lb}"
    labeler = create_labeler(
        LabelerSettings(
            data_dir=root / "labeler",
            public_url=lb_url,
            directory_url=directory,
            classifier=model,
            relay_urls=(pds_url,),
            admin_token=ADMIN,
            **{**GENEROUS, **overrides},
        )
    )
    did = labeler.state.labeler.did
    pds = create_app(
        PdsSettings(
            data_dir=root / "pds",
            public_url=pds_url,
            directory_url=directory,
            appview_url=av_url,
            appview_did=service_did_for(av_url),
            proxy_allow_private=True,  # the labeler is on loopback
            moderation_did=did if default_moderation else None,
        )
    )
    appview = create_appview(
        AppviewSettings(
            data_dir=root / "appview",
            public_url=av_url,
            directory_url=directory,
            relay_urls=(pds_url,),
            labelers=(did,),
            remote_allow_private=True,
            remote_timeout_s=10.0,
        )
    )
    apps = [
        ServedApp(
            "directory", create_directory(DirectorySettings.for_data_dir(root / "d")), port=dport
        ),
        ServedApp("pds", pds, port=p1),
        ServedApp("labeler", labeler, port=lb),
        ServedApp("appview", appview, port=av),
    ]
    with ServerThread(apps) as urls:
        yield LabNet(Net(urls[0], [urls[1]], urls[3], [pds]), urls[2], did, pds)
