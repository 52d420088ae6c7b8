"""A post's text made ready for the classifier, and the scam signals read from it.

:func:`normalise` turns comment markup into plain text (HTML entities decoded, tags
dropped, link targets kept as text, invisible characters removed). :func:`signals`
counts what scams carry: links, phone numbers, money words, prize words, calls to act
and shouting; :data:`SIGNAL_NAMES` orders them as the model's extra features, each
squashed into ``[0, 1]``. Pure functions: no I/O, no state.
"""

from __future__ import annotations

import html
import re
from typing import Final

_HREF = re.compile(r"<a\s[^>]*?href\s*=\s*\"([^\"]*)\"[^>]*>", re.IGNORECASE)
_TAG = re.compile(r"<[^>]{0,200}>")
_INVISIBLE = re.compile("[\u200b-\u200f\u2060\ufeff]")
_SPACE = re.compile(r"\s+")

LINK = re.compile(
    r"(?:https?://|www\.)\S+|\b[a-z0-9-]{2,63}\.(?:com|net|org|io|ly|me|co|tk|info|biz|xyz|gl)\b",
    re.IGNORECASE,
)
PHONE = re.compile(r"(?<!\w)(?:\+?\d[\d\s().-]{7,}\d)(?!\w)")
MONEY = re.compile(
    r"[$€£₿]\s?\d|\b\d[\d,.]*\s?(?:usd|dollars?|euros?|btc|eth|usdt)\b|"
    r"\b(?:money|cash|earn|income|profit|invest(?:ment|ing)?|crypto|bitcoin|paypal|"
    r"wallet|loan|payout|salary|rich)\b",
    re.IGNORECASE,
)
PRIZE = re.compile(
    r"\b(?:free|win(?:ner|ning)?|won|prize|gift\s?card|giveaway|reward|bonus|claim|"
    r"lottery|congratulations|selected|jackpot)\b",
    re.IGNORECASE,
)
CALL = re.compile(
    r"\b(?:click|subscribe|check\s+(?:out\s+)?my|visit|sign\s?up|dm\s+me|whats?app|"
    r"telegram|limited\s+time|act\s+now|hurry|verify\s+your)\b",
    re.IGNORECASE,
)

SIGNAL_NAMES: Final = ("links", "phones", "money", "prize", "call", "shouting")


def normalise(text: str) -> str:
    """Plain text from a comment or post (see the module docstring)."""
    text = _HREF.sub(lambda m: f" {m.group(1)} ", text)
    text = _TAG.sub(" ", text)
    text = _INVISIBLE.sub("", html.unescape(text)).replace("\xa0", " ")
    return _SPACE.sub(" ", text).strip()


def _squash(count: int, scale: float = 1.0) -> float:
    return count / (count + scale)


def signals(text: str) -> tuple[float, ...]:
    """The scam signals of normalised ``text``, in :data:`SIGNAL_NAMES` order."""
    letters = [c for c in text if c.isalpha()]
    upper = sum(c.isupper() for c in letters)
    shouting = upper / len(letters) if len(letters) >= 12 else 0.0
    return (
        _squash(len(LINK.findall(text))),
        _squash(len(PHONE.findall(text))),
        _squash(len(MONEY.findall(text))),
        _squash(len(PRIZE.findall(text))),
        _squash(len(CALL.findall(text))),
        shouting,
    )
