"""The auto-label threshold and the eval report, on held-out YouTube comments."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from plaza.moderation.classifier import Classifier
from plaza.moderation.evaluate import NEVER, auto_threshold, report, train
from tests.moderation.conftest import LABEL_TEXT, shipped


def test_auto_threshold_keeps_precision_above_it() -> None:
    scores = np.array([0.99, 0.95, 0.9, 0.8, 0.7, 0.6])
    spam = np.array([1, 1, 1, 0, 1, 0], dtype=bool)
    assert auto_threshold(scores, spam, 0.99) == 0.9
    assert auto_threshold(scores, spam, 0.75) == 0.7
    # tied scores are one cut: both items count
    assert auto_threshold(np.array([0.9, 0.9]), np.array([True, False]), 0.9) == NEVER
    assert auto_threshold(np.array([0.9, 0.5]), np.array([False, True]), 0.9) == NEVER


def test_one_odd_text_at_the_top_does_not_set_the_threshold() -> None:
    # 300 spam above 300 ham, but one ham scores second highest
    scores = np.r_[np.linspace(1.0, 0.6, 300), np.linspace(0.5, 0.0, 300)]
    spam = np.r_[np.ones(300, dtype=bool), np.zeros(300, dtype=bool)]
    spam[1] = False
    # precision 0.5 after two texts, but >= 0.995 from 200 texts down: the cut goes low
    assert auto_threshold(scores, spam, 0.995) == scores[299]
    # a cut labelling 200 or more texts is held to the target: ham at 250 stops it there
    spam[250] = False
    assert auto_threshold(scores, spam, 0.995) == scores[249]


def test_held_out_video(model: Classifier) -> None:
    result = report(model, shipped("Youtube05-Shakira.csv"))
    assert result["f1"] >= 0.85
    assert result["auto_label"]["precision"] >= 0.95
    assert 0.5 < result["auto_label"]["threshold"] < 1
    scam = "CONGRATULATIONS! You WON a $1000 gift card, claim now at http://prize.example"
    calm = "the chorus of this song is stuck in my head all day"
    spam_score, ham_score = model.scores([scam, calm])
    assert spam_score >= model.threshold > ham_score


@pytest.mark.slow
@pytest.mark.timeout(1800)  # 30 fits: about a minute of CPU, far more on a loaded machine
def test_leave_one_video_out_meets_the_targets_pooled() -> None:
    """Train on four videos, test on the fifth, five ways; pool the predictions."""
    names = [f.name for f in sorted(LABEL_TEXT.glob("Youtube0*.csv"))]
    assert len(names) == 5
    scores, thresholds, spam = [], [], []
    for held in names:
        model = train(shipped(*(n for n in names if n != held)))
        test = shipped(held)
        scores.append(model.scores(test.texts))
        thresholds.append(np.full(len(test), model.threshold))
        spam.append(np.array(test.spam))
    s, t, y = np.concatenate(scores), np.concatenate(thresholds), np.concatenate(spam)

    def prf(pred: np.ndarray) -> tuple[float, float, float]:
        tp = float(np.sum(pred & y))
        p, r = tp / float(pred.sum()), tp / float(y.sum())
        return 2 * p * r / (p + r), p, r

    f1, _, _ = prf(s >= 0.5)
    _, auto_precision, auto_recall = prf(s >= t)
    assert f1 >= 0.94
    assert auto_precision >= 0.98
    assert auto_recall >= 0.75


def test_a_low_threshold_pulls_review_down_with_it_and_the_file_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from plaza.moderation import evaluate
    from plaza.moderation.dataset import Dataset
    from plaza.moderation.modelfile import load, save

    # little training data can put the auto-label cut below the default review score
    monkeypatch.setattr(evaluate, "auto_threshold", lambda *_: 0.3)
    spam = [f"WIN a free prize {i} call now http://win{i}.example" for i in range(40)]
    ham = [f"lovely song number {i}, I listen every day" for i in range(40)]
    model = train(Dataset(tuple(spam + ham), (True,) * 40 + (False,) * 40))
    assert (model.threshold, model.review_from) == (0.3, 0.3)
    save(model, tmp_path / "m.json")
    again = load(tmp_path / "m.json")
    assert (again.threshold, again.review_from) == (0.3, 0.3)
