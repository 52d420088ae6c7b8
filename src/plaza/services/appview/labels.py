"""Labels from labelers: checked, stored, and attached to views.

A label (``com.atproto.label.defs#label``) says that a labeler (``src``, a DID) puts
a value (``val``) on a subject (``uri``: an AT-URI, or a DID for the account itself),
perhaps pinned to one version (``cid``), perhaps expiring (``exp``); ``neg`` takes an
earlier label back. Version 1 labels carry ``sig``: the labeler's signature over the
label's DAG-CBOR without ``sig``, by the key its DID document names as
``#atproto_label``.

The app view accepts labels only from the labeler DIDs of
``AppviewSettings.labelers``, each read from that labeler's own stream
(:mod:`plaza.services.appview.label_stream`): :meth:`Labels.ingest` checks every label's
shape (:func:`check_label`), that it comes from the labeler whose stream carried it,
and its signature against the key resolved from the directory (a signature that fails
resolves the key once more, for a key rotated since it was cached). A label that fails
is dropped and counted; the rest are stored, in one transaction with the stream's
cursor. The table keeps the current state only: a label replaces an earlier one with
the same ``(src, uri, val)``, and a negation deletes it.

Views show the labels of the labelers the caller accepts: the
``atproto-accept-labelers`` header (a comma-separated list of DIDs, each perhaps with
``;redact``) narrowed to the configured labelers, or all configured labelers when the
header is absent (:func:`accepted_labelers`, set per request by the dispatcher in
:data:`ACCEPTED`). Expired labels are not shown. Views carry labels without ``sig``
(the app view has checked it; common clients cannot read ``$bytes`` there); the
signature is kept in the table. A post labelled ``!takedown`` or ``!hide`` (on its URI
or its author's DID) by an accepted labeler is left out of every view (:func:`hides`):
feeds skip it, ``getPosts`` omits it, ``getPostThread`` answers ``NotFound`` for it
and shows it as not found as a parent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Final

from plaza.atproto import cbor
from plaza.atproto.cid import CID
from plaza.atproto.errors import AtprotoError
from plaza.atproto.textformats import parse_datetime
from plaza.errors import PlazaError
from plaza.services.appview.remote import Remote, RemoteError
from plaza.services.appview.store import AppviewStore

MAX_VAL_BYTES: Final = 128
MAX_URI: Final = 8192
LABEL_KEY: Final = "atproto_label"

ACCEPTED: ContextVar[tuple[str, ...] | None] = ContextVar("accepted_labelers", default=None)
"""The labeler DIDs the current request accepts (None: the configured default)."""


class LabelError(PlazaError):
    code = "InvalidLabel"
    status = 400


@dataclass(frozen=True)
class Label:
    """A checked label, as received (``raw`` is what was signed, plus ``sig``)."""

    src: str
    uri: str
    cid: CID | None
    val: str
    neg: bool
    cts: str
    exp: str | None
    sig: bytes
    raw: dict[str, Any]


def _datetime(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise LabelError(f"label {name} must be a datetime string")
    try:
        parse_datetime(value)
    except (AtprotoError, ValueError) as exc:
        raise LabelError(f"label {name} is not a datetime: {value[:40]!r}") from exc
    return value


def check_label(raw: Any) -> Label:
    """The label ``raw`` (a decoded DAG-CBOR map), or :class:`LabelError`."""
    if not isinstance(raw, dict):
        raise LabelError("a label must be a map")
    if raw.get("ver") != 1:
        raise LabelError("only version 1 labels are accepted")
    src, uri, val = raw.get("src"), raw.get("uri"), raw.get("val")
    if not isinstance(src, str) or not src.startswith("did:"):
        raise LabelError("label src must be a DID")
    if not isinstance(uri, str) or not (uri.startswith(("at://", "did:"))) or len(uri) > MAX_URI:
        raise LabelError("label uri must be an AT-URI or a DID")
    if not isinstance(val, str) or not val or len(val.encode()) > MAX_VAL_BYTES:
        raise LabelError(f"label val must be 1 to {MAX_VAL_BYTES} bytes")
    cid = None
    if "cid" in raw:
        if not isinstance(raw["cid"], str):
            raise LabelError("label cid must be a string")
        try:
            cid = CID.decode(raw["cid"])
        except AtprotoError as exc:
            raise LabelError("label cid is not a CID") from exc
    neg = raw.get("neg", False)
    if not isinstance(neg, bool):
        raise LabelError("label neg must be a boolean")
    cts = _datetime(raw.get("cts"), "cts")
    exp = _datetime(raw["exp"], "exp") if "exp" in raw else None
    sig = raw.get("sig")
    if not isinstance(sig, bytes) or len(sig) != 64:
        raise LabelError("label sig must be 64 bytes")
    return Label(src, uri, cid, val, neg, cts, exp, sig, raw)


def signing_bytes(raw: dict[str, Any]) -> bytes:
    """What a labeler signs: the label's DAG-CBOR without ``sig``."""
    return cbor.encode({k: v for k, v in raw.items() if k != "sig"})


def accepted_labelers(header: str | None, configured: Sequence[str]) -> tuple[str, ...]:
    """The labelers a request accepts (see the module docstring)."""
    if header is None:
        return tuple(configured)
    wanted = [part.split(";", 1)[0].strip() for part in header.split(",")]
    return tuple(d for d in dict.fromkeys(wanted) if d in configured)


class Labels:
    """The labels store (see the module docstring)."""

    def __init__(
        self,
        store: AppviewStore,
        remote: Remote,
        labelers: Sequence[str],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.remote = remote
        self.labelers = tuple(labelers)
        self.clock = clock
        self.dropped = 0

    async def check(self, labeler: str, raws: Iterable[Any]) -> list[Label]:
        """The labels among ``raws`` that ``labeler`` signed; the rest are dropped."""
        if labeler not in self.labelers:
            raise LabelError(f"{labeler[:80]} is not an accepted labeler")
        out: list[Label] = []
        fresh = False
        for raw in raws:
            try:
                label = check_label(raw)
                if label.src != labeler:
                    raise LabelError("a label from another labeler's stream")
                data = signing_bytes(label.raw)
                doc = await self.remote.did_document(labeler)
                key = doc.keys.get(LABEL_KEY)
                if (key is None or not key.verify(data, label.sig)) and not fresh:
                    fresh = True  # resolve once more per batch: the key may have rotated
                    doc = await self.remote.did_document(labeler, fresh=True)
                    key = doc.keys.get(LABEL_KEY)
                if key is None or not key.verify(data, label.sig):
                    raise LabelError("label signature does not verify")
            except (LabelError, RemoteError):
                self.dropped += 1
                continue
            out.append(label)
        return out

    def store_labels(self, labels: Iterable[Label]) -> None:
        """Apply checked labels (inside the caller's transaction)."""
        db = self.store.db
        for label in labels:
            src = self.store.actor_id(label.src)
            db.execute(
                "DELETE FROM labels WHERE uri = ? AND src = ? AND val = ?",
                (label.uri, src, label.val),
            )
            if label.neg:
                continue
            db.execute(
                "INSERT INTO labels (src, uri, cid, val, neg, cts, exp, sig) "
                "VALUES (?, ?, ?, ?, 0, ?, ?, ?)",
                (
                    src,
                    label.uri,
                    None if label.cid is None else label.cid.raw,
                    label.val,
                    label.cts,
                    label.exp,
                    label.sig,
                ),
            )

    def for_subjects(
        self, uris: Iterable[str], labelers: Sequence[str] | None = None
    ) -> dict[str, list[dict[str, Any]]]:
        """The shown labels of each subject (``labelers``: the request's accepted set)."""
        accepted = self.labelers if labelers is None else labelers
        srcs = {i: d for d in accepted if (i := self.store.find_actor(d)) is not None}
        wanted = list(set(uris))
        out: dict[str, list[dict[str, Any]]] = {}
        if not srcs or not wanted:
            return out
        now = self.clock()
        src_marks = ",".join("?" * len(srcs))
        for i in range(0, len(wanted), 500):
            chunk = wanted[i : i + 500]
            rows = self.store.db.query(
                "SELECT src, uri, cid, val, cts, exp FROM labels "
                f"WHERE uri IN ({','.join('?' * len(chunk))}) AND src IN ({src_marks}) "
                "ORDER BY id",
                (*chunk, *srcs),
            )
            for src, uri, cid, val, cts, exp in rows:
                if exp is not None and parse_datetime(str(exp)).timestamp() <= now:
                    continue
                label: dict[str, Any] = {"ver": 1, "src": srcs[int(src)], "uri": str(uri)}
                if cid is not None:
                    label["cid"] = str(CID(bytes(cid)))
                label.update(val=str(val), cts=str(cts))
                if exp is not None:
                    label["exp"] = str(exp)
                out.setdefault(str(uri), []).append(label)
        return out

    def attach(
        self, views: Iterable[dict[str, Any]], subjects: Callable[[dict[str, Any]], list[str]]
    ) -> None:
        """Set each view's ``labels`` to the shown labels of its ``subjects``."""
        items = list(views)
        if not items or not self.labelers:
            return
        labelers = ACCEPTED.get()
        found = self.for_subjects((s for v in items for s in subjects(v)), labelers)
        if not found:
            return
        for view in items:
            view["labels"] = [label for s in subjects(view) for label in found.get(s, [])]


def profile_subjects(view: dict[str, Any]) -> list[str]:
    """A profile's labels are on its DID and on its profile record."""
    did = view["did"]
    return [did, f"at://{did}/app.bsky.actor.profile/self"]


def post_subjects(view: dict[str, Any]) -> list[str]:
    return [view["uri"]]


HIDING: Final = frozenset({"!takedown", "!hide"})
"""Label values that hide a post (on the post itself or on its author) from every view;
the rest (``spam``, ``scam``, ...) are shown for the client to warn with."""


def hides(view: dict[str, Any]) -> bool:
    """Whether a post view carries a hiding label, on the post or on its author."""
    author = view.get("author") or {}
    labels = [*view.get("labels", ()), *author.get("labels", ())]
    return any(label.get("val") in HIDING for label in labels)
