"""A classifier stored as JSON and rebuilt from it: nothing in the file is executed.

The file is one JSON object: ``format`` (``plaza-spam-model``), ``version`` (1),
``signals`` (the scam signal names, which must match this code's), ``char`` and
``word`` (each ``{"analyzer", "ngrams", "terms", "idf"}``), ``coef`` (one weight per
character term, word term and signal, in that order), ``intercept``, ``threshold`` and
``review_from``. :func:`load` checks every field's type, range and length and raises
:class:`~plaza.moderation.errors.ModelFileError` on the first that is wrong, so a file
from anywhere can only ever yield a well-formed linear model.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Final

import numpy as np

from plaza.moderation.classifier import Classifier, Vocabulary
from plaza.moderation.errors import ModelFileError
from plaza.moderation.text import SIGNAL_NAMES

FORMAT: Final = "plaza-spam-model"
VERSION: Final = 1
MAX_BYTES: Final = 64 * 1024 * 1024
MAX_TERMS: Final = 2_000_000
MAX_TERM_CHARS: Final = 4000
ANALYZERS: Final = {"char_wb": (1, 8), "word": (1, 4)}


def to_json(model: Classifier) -> dict[str, Any]:
    def vocab(v: Vocabulary) -> dict[str, Any]:
        return {
            "analyzer": v.analyzer,
            "ngrams": list(v.ngrams),
            "terms": list(v.terms),
            "idf": list(v.idf),
        }

    return {
        "format": FORMAT,
        "version": VERSION,
        "signals": list(SIGNAL_NAMES),
        "char": vocab(model.char),
        "word": vocab(model.word),
        "coef": [float(x) for x in model.coef],
        "intercept": model.intercept,
        "threshold": model.threshold,
        "review_from": model.review_from,
    }


def save(model: Classifier, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(to_json(model), separators=(",", ":")), encoding="utf-8")
    tmp.replace(path)


def _number(value: Any, name: str, low: float = -math.inf, high: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ModelFileError(f"{name} must be a number")
    if not math.isfinite(value) or not low <= value <= high:
        raise ModelFileError(f"{name} must be a finite number in [{low}, {high}]")
    return float(value)


def _floats(value: Any, name: str, n: int, low: float = -math.inf) -> tuple[float, ...]:
    if not isinstance(value, list) or len(value) != n:
        raise ModelFileError(f"{name} must be a list of {n} numbers")
    arr = np.asarray(value, dtype=object)
    if not all(isinstance(x, int | float) and not isinstance(x, bool) for x in arr):
        raise ModelFileError(f"{name} must hold numbers only")
    out = np.asarray(value, dtype=np.float64)
    if not np.all(np.isfinite(out)) or np.any(out < low):
        raise ModelFileError(f"{name} must hold finite numbers >= {low}")
    return tuple(float(x) for x in out)


def _vocabulary(raw: Any, name: str, analyzer: str) -> Vocabulary:
    if not isinstance(raw, dict) or raw.get("analyzer") != analyzer:
        raise ModelFileError(f"{name} must be a {analyzer} vocabulary")
    ngrams = raw.get("ngrams")
    low, high = ANALYZERS[analyzer]
    if (
        not isinstance(ngrams, list)
        or len(ngrams) != 2
        or not all(type(x) is int for x in ngrams)
        or not low <= ngrams[0] <= ngrams[1] <= high
    ):
        raise ModelFileError(f"{name}.ngrams must be [min, max] within [{low}, {high}]")
    terms = raw.get("terms")
    if not isinstance(terms, list) or len(terms) > MAX_TERMS:
        raise ModelFileError(f"{name}.terms must be a list of at most {MAX_TERMS} strings")
    if not all(isinstance(t, str) and 0 < len(t) <= MAX_TERM_CHARS for t in terms):
        raise ModelFileError(f"{name}.terms must be strings of 1 to {MAX_TERM_CHARS} chars")
    if len(set(terms)) != len(terms):
        raise ModelFileError(f"{name}.terms must not repeat")
    idf = _floats(raw.get("idf"), f"{name}.idf", len(terms), low=1.0)
    return Vocabulary(analyzer, (ngrams[0], ngrams[1]), tuple(terms), idf)


def from_json(raw: Any) -> Classifier:
    """The classifier ``raw`` describes (see the module docstring)."""
    if not isinstance(raw, dict) or raw.get("format") != FORMAT:
        raise ModelFileError(f"not a {FORMAT} file")
    if raw.get("version") != VERSION:
        raise ModelFileError(f"unsupported model version {raw.get('version')!r:.20}")
    if raw.get("signals") != list(SIGNAL_NAMES):
        raise ModelFileError("the model's scam signals differ from this version's")
    char = _vocabulary(raw.get("char"), "char", "char_wb")
    word = _vocabulary(raw.get("word"), "word", "word")
    n = len(char.terms) + len(word.terms) + len(SIGNAL_NAMES)
    coef = np.asarray(_floats(raw.get("coef"), "coef", n), dtype=np.float64)
    threshold = _number(raw.get("threshold"), "threshold", 0.0, 1.01)
    review_from = _number(raw.get("review_from"), "review_from", 0.0, 1.01)
    if review_from > threshold:
        raise ModelFileError("review_from must not exceed threshold")
    intercept = _number(raw.get("intercept"), "intercept")
    return Classifier(char, word, coef, intercept, threshold, review_from)


def load(path: Path) -> Classifier:
    """The classifier stored at ``path``."""
    try:
        if path.stat().st_size > MAX_BYTES:
            raise ModelFileError(f"{path} is larger than {MAX_BYTES} bytes")
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise ModelFileError(f"cannot read the model {path}: {exc}") from exc
    return from_json(raw)
