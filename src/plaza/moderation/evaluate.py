"""How good a classifier is, and the auto-label threshold.

:func:`auto_threshold` picks the lowest score at which a held-out set's precision is at
least ``target`` for every higher threshold too (so one lucky point does not set it);
the held-out scores come from k-fold cross-validation on the training data
(:func:`out_of_fold`), never from the test set. :func:`train` fits on all the data and
sets the threshold that way; :func:`report` measures a trained classifier on test data:
F1, precision and recall at 0.5, and precision and recall at the auto-label threshold.
"""

from __future__ import annotations

from typing import Any, Final

import numpy as np

from plaza.moderation.classifier import Classifier, fit
from plaza.moderation.dataset import Dataset

TARGET_PRECISION: Final = 0.999
FOLDS: Final = 5
NEVER: Final = 1.01  # above every score: nothing is labelled without review


def out_of_fold(data: Dataset, *, folds: int = FOLDS, seed: int = 0) -> np.ndarray[Any, Any]:
    """Each training text's score from a model that did not see it (stratified folds)."""
    y = np.array(data.spam)
    rng = np.random.default_rng(seed)
    fold = np.empty(len(y), dtype=np.int64)
    for cls in (False, True):
        idx = np.flatnonzero(y == cls)
        fold[rng.permutation(idx)] = np.arange(len(idx)) % folds
    out = np.zeros(len(y))
    for k in range(folds):
        train = np.flatnonzero(fold != k)
        held = np.flatnonzero(fold == k)
        part = Dataset(tuple(data.texts[i] for i in train), tuple(bool(y[i]) for i in train))
        out[held] = fit(part).scores([data.texts[i] for i in held])
    return out


def auto_threshold(
    scores: np.ndarray[Any, Any], spam: np.ndarray[Any, Any], target: float = TARGET_PRECISION
) -> float:
    """The lowest threshold whose precision, and every higher one's, is >= ``target``."""
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], spam[order].astype(np.float64)
    precision = np.cumsum(y) / np.arange(1, len(y) + 1)
    # precision when cutting after position i; only cut where the score changes
    cut = np.r_[s[1:] != s[:-1], True]
    ok = (precision >= target) | ~cut
    bad = np.flatnonzero(~ok)
    last = len(s) - 1 if len(bad) == 0 else int(bad[0]) - 1
    while last >= 0 and not cut[last]:
        last -= 1
    return NEVER if last < 0 else float(s[last])


def train(data: Dataset, *, target: float = TARGET_PRECISION) -> Classifier:
    """A classifier fitted on ``data`` with its auto-label threshold set."""
    threshold = auto_threshold(out_of_fold(data), np.array(data.spam), target)
    model = fit(data)
    model.threshold = threshold
    return model


def _prf(pred: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> tuple[float, float, float]:
    tp = float(np.sum(pred & y))
    precision = tp / max(1.0, float(np.sum(pred)))
    recall = tp / max(1.0, float(np.sum(y)))
    f1 = 0.0 if tp == 0 else 2 * precision * recall / (precision + recall)
    return f1, precision, recall


def report(model: Classifier, test: Dataset) -> dict[str, Any]:
    """The ``plaza labeler eval`` numbers for ``model`` on ``test``."""
    scores = model.scores(test.texts)
    y = np.array(test.spam)
    f1, precision, recall = _prf(scores >= 0.5, y)
    _, auto_p, auto_r = _prf(scores >= model.threshold, y)
    return {
        "f1": round(f1, 4),
        "precision": round(precision, 4),
        "recall": round(recall, 4),
        "auto_label": {
            "threshold": round(model.threshold, 4),
            "precision": round(auto_p, 4),
            "recall": round(auto_r, 4),
        },
        "test_size": len(test),
        "test_spam": int(y.sum()),
    }
