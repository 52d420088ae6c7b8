"""Reading label,text CSV files and converting the shipped YouTube files."""

from __future__ import annotations

from pathlib import Path

import pytest

from plaza.moderation.dataset import from_youtube, parse_csv, read_csv
from plaza.moderation.errors import DatasetError

DATA = Path(__file__).resolve().parents[2] / "data" / "spam"


def test_shipped_label_text_files_match_the_originals() -> None:
    for original in sorted(DATA.glob("Youtube0*.csv")):
        converted = DATA / "label-text" / original.name
        assert converted.read_text(encoding="utf-8") == from_youtube(
            original.read_text(encoding="utf-8")
        )
    psy = read_csv(DATA / "label-text" / "Youtube01-Psy.csv")
    assert len(psy) == 350 and sum(psy.spam) == 175


@pytest.mark.parametrize(
    "bad",
    [
        "text,label\nspam,x\n",
        "label,text\nspam,x\nmaybe,y\n",
        "label,text\nspam,x\nham,\n",
        "label,text\nspam,x,extra\n",
        "label,text\nspam,x\n",  # one class only
        "label,text\n",
    ],
)
def test_bad_csv_is_refused(bad: str) -> None:
    with pytest.raises(DatasetError):
        parse_csv(bad)


def test_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_bytes(b"\xff\xfe")
    with pytest.raises(DatasetError):
        read_csv(tmp_path / "x.csv")
    with pytest.raises(DatasetError):
        from_youtube("a,b\n1,2\n")
