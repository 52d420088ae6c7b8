"""Where the archive looks for its source, its store and its blobs."""

from __future__ import annotations

from pathlib import Path

import pytest

from plaza.services.archive import ArchiveSettings

SUB = "/xrpc/com.atproto.sync.subscribeRepos"


@pytest.mark.parametrize(
    ("given", "firehose", "http"),
    [
        ("http://127.0.0.1:2585", "ws://127.0.0.1:2585" + SUB, "http://127.0.0.1:2585"),
        ("https://relay.example/", "wss://relay.example" + SUB, "https://relay.example"),
        ("wss://relay.example" + SUB, "wss://relay.example" + SUB, "https://relay.example"),
        ("ws://127.0.0.1:1", "ws://127.0.0.1:1" + SUB, "http://127.0.0.1:1"),
    ],
)
def test_source_urls(given: str, firehose: str, http: str) -> None:
    s = ArchiveSettings(data_dir=Path("d"), relay_url=given, directory_url="http://dir")
    assert s.firehose_url == firehose
    assert s.source_http_url == http


def test_store_and_blobs_live_in_the_data_dir_unless_a_url_is_given(tmp_path: Path) -> None:
    s = ArchiveSettings(data_dir=tmp_path, relay_url="http://r", directory_url="http://d")
    assert s.database_url == f"sqlite://{tmp_path.resolve() / 'archive.db'}"
    assert s.blob_dir == tmp_path / "blobs"
    pg = ArchiveSettings(
        data_dir=tmp_path, relay_url="http://r", directory_url="http://d", db="postgresql://x/y"
    )
    assert pg.database_url == "postgresql://x/y"
