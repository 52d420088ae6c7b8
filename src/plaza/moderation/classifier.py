"""The spam and scam classifier: character and word n-gram TF-IDF, the scam signals of
:mod:`plaza.moderation.text`, and a logistic regression over all three.

:func:`fit` learns a :class:`Classifier` from a dataset; :meth:`Classifier.scores`
gives each text's spam probability in one vectorised pass (texts are normalised first).
A classifier is plain data (vocabularies, IDF weights, coefficients), so
:mod:`plaza.moderation.modelfile` stores it as JSON and rebuilds it without pickle.
``threshold`` is the score at and above which a text is labelled without review (chosen
by :func:`plaza.moderation.evaluate.auto_threshold`); below ``review_from`` nothing
happens, and in between a person decides.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
from scipy.sparse import csr_matrix, hstack
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from plaza.moderation.dataset import Dataset
from plaza.moderation.text import SIGNAL_NAMES, normalise, signals

CHAR_NGRAMS: Final = (1, 4)
WORD_NGRAMS: Final = (1, 2)
WORD_PATTERN: Final = r"(?u)\b\w+\b"
C: Final = 10.0
SIGNAL_WEIGHT: Final = 1.0


@dataclass(frozen=True)
class Vocabulary:
    """One TF-IDF vectoriser as data: its analyzer, n-gram range, terms and IDF."""

    analyzer: str  # "char_wb" or "word"
    ngrams: tuple[int, int]
    terms: tuple[str, ...]
    idf: tuple[float, ...]

    def vectoriser(self) -> TfidfVectorizer:
        vec = TfidfVectorizer(
            analyzer=self.analyzer,
            ngram_range=self.ngrams,
            sublinear_tf=True,
            lowercase=True,
            token_pattern=WORD_PATTERN,
            vocabulary={t: i for i, t in enumerate(self.terms)},
            dtype=np.float64,
        )
        vec.idf_ = np.asarray(self.idf, dtype=np.float64)
        return vec


def _vocabulary(analyzer: str, ngrams: tuple[int, int], vec: TfidfVectorizer) -> Vocabulary:
    terms = tuple(str(t) for t in vec.get_feature_names_out())
    return Vocabulary(analyzer, ngrams, terms, tuple(float(x) for x in vec.idf_))


@dataclass
class Classifier:
    """A trained model (see the module docstring)."""

    char: Vocabulary
    word: Vocabulary
    coef: np.ndarray[Any, np.dtype[np.float64]]
    intercept: float
    threshold: float = 0.9
    review_from: float = 0.5
    _vecs: tuple[TfidfVectorizer, TfidfVectorizer] | None = field(default=None, repr=False)

    @property
    def n_features(self) -> int:
        return len(self.char.terms) + len(self.word.terms) + len(SIGNAL_NAMES)

    def features(self, texts: Sequence[str]) -> tuple[csr_matrix, list[tuple[float, ...]]]:
        """The feature matrix of ``texts`` and each one's scam signals."""
        if self._vecs is None:
            self._vecs = (self.char.vectoriser(), self.word.vectoriser())
        return _features([normalise(t) for t in texts], *self._vecs)

    def scored(
        self, texts: Sequence[str]
    ) -> tuple[np.ndarray[Any, np.dtype[np.float64]], list[tuple[float, ...]]]:
        """Each text's spam probability, and its scam signals."""
        if not texts:
            return np.zeros(0), []
        x, sig = self.features(texts)
        z = x @ self.coef + self.intercept
        return np.asarray(1.0 / (1.0 + np.exp(-np.clip(z, -40, 40))), dtype=np.float64), sig

    def scores(self, texts: Sequence[str]) -> np.ndarray[Any, np.dtype[np.float64]]:
        """Each text's spam probability."""
        return self.scored(texts)[0]


def _features(
    norm: list[str], char: TfidfVectorizer, word: TfidfVectorizer
) -> tuple[csr_matrix, list[tuple[float, ...]]]:
    sig = [signals(t) for t in norm]
    extra = csr_matrix(np.array(sig, dtype=np.float64).reshape(len(norm), -1) * SIGNAL_WEIGHT)
    return hstack([char.transform(norm), word.transform(norm), extra], format="csr"), sig


def fit(data: Dataset, *, c: float = C) -> Classifier:
    """A classifier trained on ``data`` (threshold left at its default)."""
    norm = [normalise(t) for t in data.texts]
    char = TfidfVectorizer(
        analyzer="char_wb", ngram_range=CHAR_NGRAMS, sublinear_tf=True, min_df=2
    ).fit(norm)
    word = TfidfVectorizer(
        analyzer="word", ngram_range=WORD_NGRAMS, sublinear_tf=True, token_pattern=WORD_PATTERN
    ).fit(norm)
    x, _ = _features(norm, char, word)
    model = LogisticRegression(C=c, max_iter=5000, class_weight="balanced")
    model.fit(x, np.array(data.spam, dtype=np.int8))
    return Classifier(
        _vocabulary("char_wb", CHAR_NGRAMS, char),
        _vocabulary("word", WORD_NGRAMS, word),
        np.asarray(model.coef_[0], dtype=np.float64),
        float(model.intercept_[0]),
        _vecs=(char, word),
    )
