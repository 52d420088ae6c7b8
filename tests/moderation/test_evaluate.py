"""The auto-label threshold and the eval report, on held-out YouTube comments."""

from __future__ import annotations

import numpy as np

from plaza.moderation.classifier import Classifier
from plaza.moderation.evaluate import NEVER, auto_threshold, report
from tests.moderation.conftest import shipped


def test_auto_threshold_keeps_precision_above_it() -> None:
    scores = np.array([0.99, 0.95, 0.9, 0.8, 0.7, 0.6])
    spam = np.array([1, 1, 1, 0, 1, 0], dtype=bool)
    assert auto_threshold(scores, spam, 0.99) == 0.9
    assert auto_threshold(scores, spam, 0.75) == 0.7
    # tied scores are one cut: both items count
    assert auto_threshold(np.array([0.9, 0.9]), np.array([True, False]), 0.9) == NEVER
    assert auto_threshold(np.array([0.9, 0.5]), np.array([False, True]), 0.9) == NEVER


def test_held_out_video(model: Classifier) -> None:
    result = report(model, shipped("Youtube05-Shakira.csv"))
    assert result["f1"] >= 0.85
    assert result["auto_label"]["precision"] >= 0.95
    assert 0.5 < result["auto_label"]["threshold"] < 1
    scam = "CONGRATULATIONS! You WON a $1000 gift card, claim now at http://prize.example"
    calm = "the chorus of this song is stuck in my head all day"
    spam_score, ham_score = model.scores([scam, calm])
    assert spam_score >= model.threshold > ham_score
