"""The moderator's decisions and the cross-post signals, on a fixed clock."""

from __future__ import annotations

from plaza.moderation.classifier import Classifier
from plaza.moderation.moderator import LABEL, NONE, REVIEW, Moderator, Post
from plaza.moderation.signals import BURST_S, WINDOW_S, Crowd


def post(i: int, text: str, did: str = "did:plc:a") -> Post:
    return Post(f"at://{did}/app.bsky.feed.post/{i}", None, did, text)


def test_decisions(model: Classifier) -> None:
    mod = Moderator(model)
    scam, calm = mod.judge(
        [post(1, "You WON a $500 gift card, claim at http://prize.example"),
         post(2, "dinner with my sister tonight, she made soup")],
        now=1000.0,
    )  # fmt: skip
    assert (scam.action, scam.val) == (LABEL, "scam")
    assert calm.action == NONE
    # between review_from and threshold: a person decides
    unsure = model.threshold - 0.01
    model_copy = Classifier(model.char, model.word, model.coef, model.intercept, 1.01, 0.0)
    (d,) = Moderator(model_copy).judge([post(3, "check out my channel")], now=1000.0)
    assert d.action == REVIEW and unsure < 1


def test_same_text_from_many_new_accounts_is_labelled(model: Classifier) -> None:
    mod = Moderator(model, same_text_accounts=3)
    text = "hello friends, lovely weather today"
    first = [mod.judge([post(i, text, f"did:plc:n{i}")], now=10.0 + i)[0] for i in range(3)]
    assert [d.action for d in first] == [NONE, NONE, LABEL]
    assert "3 new accounts" in first[2].reason


def test_crowd_window_and_burst() -> None:
    crowd = Crowd()
    for i in range(5):
        seen = crowd.observe("did:plc:b", f"post {i}", now=100.0 + i)
    assert seen.burst == 5
    later = crowd.observe("did:plc:b", "post 0", now=100.0 + BURST_S + 10)
    assert later.burst == 1 and later.same_text_new_accounts == 1
    crowd = Crowd()
    crowd.observe("did:plc:c", "same", now=0.0)
    assert crowd.observe("did:plc:d", "SAME ", now=10.0).same_text_new_accounts == 2
    assert crowd.observe("did:plc:e", "same", now=WINDOW_S + 5).same_text_new_accounts == 2
    assert crowd.observe("did:plc:f", "same", now=WINDOW_S + 20).same_text_new_accounts == 2
