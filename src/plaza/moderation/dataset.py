"""Labelled texts read from a ``label,text`` CSV file (labels ``spam`` and ``ham``).

:func:`read_csv` checks the header, every label and every text and raises
:class:`~plaza.moderation.errors.DatasetError` naming the file and the line of the first
bad row (a row whose label is not ``spam``/``ham``, whose text is empty or too long, or
that is not valid CSV). It takes files as other corpora come: a UTF-8 byte-order mark,
CRLF or LF line ends, quoted texts spanning lines, blank lines (skipped), labels and
header in any case with surrounding spaces, a row whose unquoted text holds commas (the
fields after the label are joined back with commas), and files that are not UTF-8
(read as Latin-1, which decodes any bytes). The files the
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
    """The dataset in ``data`` (``label,text`` CSV text; see the module docstring)."""
    if data.startswith("\ufeff"):
        data = data[1:]
    reader = csv.reader(io.StringIO(data, newline=""))
    texts: list[str] = []
    spam: list[bool] = []
    try:
        header = next(reader, None)
        if header is None or [h.strip().lower() for h in header] != ["label", "text"]:
            raise DatasetError(f"{name}:1: the header must be 'label,text', not {header!r:.80}")
        line = reader.line_num + 1
        for row in reader:
            at, line = line, reader.line_num + 1
            if not row or row == [""]:
                continue  # a blank line
            if len(row) < 2:
                raise DatasetError(f"{name}:{at}: a row needs a label and a text, got {row!r:.80}")
            label, text = row[0].strip().lower(), ",".join(row[1:])
            if label not in LABELS:
                raise DatasetError(
                    f"{name}:{at}: the label must be spam or ham, not {row[0][:20]!r}"
                )
            if not text.strip():
                raise DatasetError(f"{name}:{at}: the text is empty")
            if len(text) > MAX_TEXT:
                raise DatasetError(f"{name}:{at}: the text is longer than {MAX_TEXT} characters")
            if len(texts) >= MAX_ROWS:
                raise DatasetError(f"{name}: more than {MAX_ROWS} rows")
            texts.append(text)
            spam.append(label == "spam")
    except csv.Error as exc:
        raise DatasetError(f"{name}:{reader.line_num}: not valid CSV: {exc}") from exc
    if len(set(spam)) != 2:
        raise DatasetError(f"{name}: needs both spam and ham rows")
    return Dataset(tuple(texts), tuple(spam))


def read_csv(path: Path) -> Dataset:
    """The dataset in the file at ``path`` (UTF-8, else Latin-1; see the module docstring)."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from exc
    try:
        data = raw.decode("utf-8")
    except UnicodeDecodeError:
        data = raw.decode("latin-1")
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
