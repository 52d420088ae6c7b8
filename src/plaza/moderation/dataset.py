"""Labelled texts read from a ``label,text`` CSV file (labels ``spam`` and ``ham``).

:func:`read_csv` checks the header, every label and every text and raises
:class:`~plaza.moderation.errors.DatasetError` naming the first bad row. The files the
project ships (``data/spam/label-text/``) are the YouTube Spam Collection in this form;
:func:`from_youtube` converts one of its original files.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from plaza.moderation.errors import DatasetError

LABELS: Final = ("ham", "spam")
MAX_TEXT: Final = 100_000
MAX_ROWS: Final = 5_000_000


@dataclass(frozen=True)
class Dataset:
    texts: tuple[str, ...]
    spam: tuple[bool, ...]

    def __len__(self) -> int:
        return len(self.texts)

    def __add__(self, other: Dataset) -> Dataset:
        return Dataset(self.texts + other.texts, self.spam + other.spam)


def parse_csv(data: str, name: str = "data") -> Dataset:
    """The dataset in ``data`` (``label,text`` CSV text)."""
    reader = csv.reader(io.StringIO(data, newline=""))
    header = next(reader, None)
    if header != ["label", "text"]:
        raise DatasetError(f"{name}: the header must be 'label,text', not {header!r:.80}")
    texts: list[str] = []
    spam: list[bool] = []
    for n, row in enumerate(reader, start=2):
        if len(row) != 2:
            raise DatasetError(f"{name}:{n}: a row must have 2 fields, not {len(row)}")
        label, text = row
        if label not in LABELS:
            raise DatasetError(f"{name}:{n}: the label must be spam or ham, not {label[:20]!r}")
        if not text.strip() or len(text) > MAX_TEXT:
            raise DatasetError(f"{name}:{n}: the text must be 1 to {MAX_TEXT} characters")
        if len(texts) >= MAX_ROWS:
            raise DatasetError(f"{name}: more than {MAX_ROWS} rows")
        texts.append(text)
        spam.append(label == "spam")
    if not texts or len(set(spam)) != 2:
        raise DatasetError(f"{name}: needs both spam and ham rows")
    return Dataset(tuple(texts), tuple(spam))


def read_csv(path: Path) -> Dataset:
    try:
        data = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc
    return parse_csv(data, str(path))


def from_youtube(data: str) -> str:
    """A YouTube Spam Collection file (``COMMENT_ID,AUTHOR,DATE,CONTENT,CLASS``) as
    ``label,text`` CSV: the comment text only, no author, date or id."""
    rows = list(csv.DictReader(io.StringIO(data, newline="")))
    if not rows or not {"CONTENT", "CLASS"} <= set(rows[0]):
        raise DatasetError("not a YouTube Spam Collection file (CONTENT, CLASS columns)")
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["label", "text"])
    for row in rows:
        if row["CLASS"] not in ("0", "1"):
            raise DatasetError(f"CLASS must be 0 or 1, not {row['CLASS'][:10]!r}")
        writer.writerow(["spam" if row["CLASS"] == "1" else "ham", row["CONTENT"]])
    return out.getvalue()
