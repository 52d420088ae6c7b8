"""The labeler's first classifier: the shipped data found by the package's path (not the
working directory), trained once, kept in a cache keyed by the data and the code, and a
bad cached file trained over."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from plaza.moderation.modelfile import load
from plaza.moderation.shipped import SHIPPED_DATA, load_or_train, model_key, shipped_files


def test_the_shipped_data_is_found_from_the_package_not_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert SHIPPED_DATA.is_absolute()
    names = [f.name for f in shipped_files()]
    assert "Youtube01-Psy.csv" in names and len(names) == 5


def _small(tmp_path: Path) -> Path:
    """A copy of one shipped file (a few hundred texts: enough for a threshold above
    review_from, which a model file must have)."""
    out = tmp_path / "small.csv"
    out.write_bytes((SHIPPED_DATA / "Youtube02-KatyPerry.csv").read_bytes())
    return out


def test_trained_once_then_copied_from_the_cache(tmp_path: Path) -> None:
    data, cache = _small(tmp_path), tmp_path / "cache"
    said: list[str] = []
    first = load_or_train(tmp_path / "a" / "model.json", [data], say=said.append, cache=cache)
    assert said and said[0].startswith("training the classifier on 350 texts from 1 files")
    cached = cache / f"spam-{model_key([data])}.json"
    assert cached.exists()
    said.clear()
    second = load_or_train(tmp_path / "b" / "model.json", [data], say=said.append, cache=cache)
    assert said == [f"classifier copied from the cache ({cached})"]
    assert second.threshold == first.threshold and list(second.coef) == list(first.coef)
    # an existing model file is loaded as it is
    said.clear()
    load_or_train(tmp_path / "b" / "model.json", [data], say=said.append, cache=cache)
    assert said == []
    assert load(tmp_path / "b" / "model.json").threshold == first.threshold


def test_other_data_is_another_key_and_a_bad_cached_model_is_trained_over(
    tmp_path: Path,
) -> None:
    data, cache = _small(tmp_path), tmp_path / "cache"
    other = tmp_path / "other.csv"
    other.write_text(data.read_text(encoding="utf-8").replace("\n", "\r\n"), encoding="utf-8")
    assert model_key([data]) != model_key([other])
    cached = cache / f"spam-{model_key([data])}.json"
    cache.mkdir()
    cached.write_text('{"format": "something else"}')
    said: list[str] = []
    load_or_train(tmp_path / "m.json", [data], say=said.append, cache=cache)
    assert said[0].startswith("training")
    assert load(cached).threshold == load(tmp_path / "m.json").threshold
    assert not [p for p in os.listdir(cache) if p.endswith(".tmp")]
