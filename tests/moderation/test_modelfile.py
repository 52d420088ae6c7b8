"""The JSON model file: a round trip gives the same scores; a bad file is refused."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from plaza.moderation.classifier import Classifier
from plaza.moderation.errors import ModelFileError
from plaza.moderation.modelfile import from_json, load, save, to_json

TEXTS = ["check out my channel http://x.example", "lovely song", "win a free iphone now"]


def test_round_trip(model: Classifier, tmp_path: Path) -> None:
    save(model, tmp_path / "m.json")
    again = load(tmp_path / "m.json")
    assert np.allclose(again.scores(TEXTS), model.scores(TEXTS))
    assert again.threshold == model.threshold


def _broken(good: dict[str, Any]) -> list[Any]:
    char = good["char"]
    return [
        [],
        {**good, "format": "pickle"},
        {**good, "version": 2},
        {**good, "signals": ["links"]},
        {**good, "coef": good["coef"][:-1]},
        {**good, "coef": [*good["coef"][:-1], "1"]},
        {**good, "coef": [*good["coef"][:-1], True]},
        {**good, "intercept": float("nan")},
        {**good, "threshold": 2.0},
        {**good, "review_from": 1.0, "threshold": 0.5},
        {**good, "char": {**char, "analyzer": "word"}},
        {**good, "char": {**char, "ngrams": [1, 99]}},
        {**good, "char": {**char, "terms": [*char["terms"][:-1], char["terms"][0]]}},
        {**good, "char": {**char, "terms": [*char["terms"][:-1], 7]}},
        {**good, "char": {**char, "idf": [*char["idf"][:-1], -1.0]}},
    ]


def test_bad_files_are_refused(model: Classifier, tmp_path: Path) -> None:
    good = to_json(model)
    for bad in _broken(good):
        with pytest.raises(ModelFileError):
            from_json(bad)
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(ModelFileError):
        load(tmp_path / "x.json")
    with pytest.raises(ModelFileError):
        load(tmp_path / "missing.json")
    assert json.loads(json.dumps(good)) == good
