"""Moderation: the spam and scam classifier and the labeler service that applies it.

:mod:`~plaza.moderation.text` normalises a post's text and reads its scam signals,
:mod:`~plaza.moderation.classifier` is the n-gram TF-IDF linear model,
:mod:`~plaza.moderation.modelfile` stores it as JSON (no pickle),
:mod:`~plaza.moderation.evaluate` measures it and picks the auto-label threshold,
:mod:`~plaza.moderation.dataset` reads ``label,text`` CSV files.
:mod:`~plaza.moderation.commits` reads verified posts from firehose frames, which
:mod:`~plaza.moderation.firehose` (a WebSocket) and :mod:`~plaza.moderation.bus_worker`
(a share of the bus's partitions) feed to the moderator;
:mod:`~plaza.moderation.dao_sync` follows the DAO's mandate.
"""
