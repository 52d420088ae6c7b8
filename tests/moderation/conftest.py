"""A classifier trained once per session on two of the shipped YouTube files."""

from __future__ import annotations

import functools
from pathlib import Path

import pytest

from plaza.moderation.classifier import Classifier
from plaza.moderation.dataset import Dataset, read_csv
from plaza.moderation.evaluate import train

LABEL_TEXT = Path(__file__).resolve().parents[2] / "data" / "spam" / "label-text"


def shipped(*names: str) -> Dataset:
    sets = [read_csv(LABEL_TEXT / name) for name in names]
    out = sets[0]
    for more in sets[1:]:
        out = out + more
    return out


@functools.cache
def trained() -> Classifier:
    """One classifier per test session, trained on two of the five videos."""
    return train(shipped("Youtube02-KatyPerry.csv", "Youtube04-Eminem.csv"))


@pytest.fixture(scope="session")
def model() -> Classifier:
    return trained()
