"""Normalising comment markup and reading scam signals."""

from __future__ import annotations

from plaza.moderation.text import SIGNAL_NAMES, normalise, signals


def test_normalise_drops_markup_and_keeps_link_targets() -> None:
    raw = '\ufeffWin &amp; <a href="http://x.example/a">here</a><br />now\xa0!'
    assert normalise(raw) == "Win & http://x.example/a here now !"


def test_scam_signals() -> None:
    named = dict(
        zip(
            SIGNAL_NAMES,
            signals(
                normalise(
                    "CONGRATULATIONS you WON a $500 gift card! Claim at http://win.example or call "
                    "+1 (555) 123-4567"
                )
            ),
            strict=True,
        )
    )
    assert named["links"] > 0 and named["phones"] > 0
    assert named["money"] > 0 and named["prize"] > 0 and named["shouting"] > 0
    calm = signals("had a lovely walk by the river with the dog today")
    assert calm == (0.0,) * len(SIGNAL_NAMES)
