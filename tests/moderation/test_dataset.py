"""Reading label,text CSV files and converting the shipped YouTube files."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from plaza.moderation.dataset import MAX_TEXT, from_youtube, parse_csv, read_csv
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


def test_other_corpora_formats_are_read() -> None:
    data = parse_csv('\ufeffLabel,Text\r\nSPAM ,"two\r\nlines"\r\n\r\nham, unquoted, commas\r\n')
    assert data.texts == ("two\r\nlines", " unquoted, commas")
    assert data.spam == (True, False)


@pytest.mark.parametrize(
    ("bad", "says"),
    [
        ("text,label\nspam,x\n", "data:1: the header must be"),
        ("", "data:1: the header must be"),
        ("label,text\nspam,x\n\nmaybe,y\n", "data:4: the label must be spam or ham, not 'maybe'"),
        ('label,text\nspam,"x\ny"\nham,\n', "data:4: the text is empty"),
        ("label,text\nspam,x\nham,   \n", "data:3: the text is empty"),
        ("label,text\nspam,x\nham\n", "data:3: a row needs a label and a text"),
        ("label,text\nspam,x\n", "needs both spam and ham rows"),
        ("label,text\n", "needs both spam and ham rows"),
    ],
)
def test_bad_csv_is_refused_naming_the_line(bad: str, says: str) -> None:
    with pytest.raises(DatasetError, match=re.escape(says)):
        parse_csv(bad)


def test_too_long_text_is_refused() -> None:
    with pytest.raises(DatasetError, match="data:3: the text is longer"):
        parse_csv(f"label,text\nspam,x\nham,{'a' * (MAX_TEXT + 1)}\n")
    with pytest.raises(DatasetError, match="data:3: not valid CSV"):
        parse_csv(f"label,text\nspam,x\nham,{'a' * 200_000}\n")


def test_files_in_other_encodings(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_bytes(b"label,text\r\nspam,caf\xe9 \xa3100\r\nham,hi\r\n")
    assert read_csv(tmp_path / "x.csv").texts == ("caf\xe9 \xa3100", "hi")
    (tmp_path / "bom.csv").write_bytes(b"\xef\xbb\xbflabel,text\nspam,a\nham,b\n")
    assert len(read_csv(tmp_path / "bom.csv")) == 2


def test_unreadable_file(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_bytes(b"\xff\xfe")
    with pytest.raises(DatasetError):
        read_csv(tmp_path / "x.csv")
    with pytest.raises(DatasetError, match="cannot read"):
        read_csv(tmp_path / "missing.csv")
    with pytest.raises(DatasetError):
        from_youtube("a,b\n1,2\n")
