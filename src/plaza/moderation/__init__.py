"""Moderation: the spam and scam classifier and the labeler service that applies it.

:mod:`~plaza.moderation.text` normalises a post's text and reads its scam signals,
:mod:`~plaza.moderation.classifier` is the n-gram TF-IDF linear model,
:mod:`~plaza.moderation.modelfile` stores it as JSON (no pickle),
:mod:`~plaza.moderation.evaluate` measures it and picks the auto-label threshold,
:mod:`~plaza.moderation.dataset` reads ``label,text`` CSV files.
"""
