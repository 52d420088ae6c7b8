"""``plaza serve labeler``: the labeler as an HTTP service.

Theory of operation. At start the labeler makes sure the directory's document of its
DID names its label key and endpoint (:mod:`plaza.moderation.identity`), then follows
each source's firehose (:class:`~plaza.moderation.firehose.PostFeed`): every batch of
new posts is judged (:class:`~plaza.moderation.moderator.Moderator`) and its labels,
review items and cursor stored in one transaction (:class:`~plaza.moderation.labeler.
Labeler`). It serves:

- ``com.atproto.label.queryLabels`` and ``subscribeLabels`` (cursor replay, then live);
- ``com.atproto.moderation.createReport``, authenticated by an inter-service token
  (``aud`` the labeler's DID, ``lxm`` the method) from the reporter's PDS
  (``com.atproto.server.getServiceAuth``, or the PDS's ``atproto-proxy`` forwarding);
- ``com.atproto.repo.getRecord`` for its ``app.bsky.labeler.service`` record;
- the review queue for moderators, behind the admin token: ``plaza.labeler.listReviews``
  and ``plaza.labeler.resolveReview``;
- ``/xrpc/_health``: its DID, last label sequence number, firehose cursors, every
  cursor in the store (``cursors``: the bus partitions' of the labeler workers too),
  open reviews.

``queryLabels`` is limited per client address and ``createReport`` per reporting
account (token buckets, :class:`~plaza.services.buckets.TokenBuckets`): past the
allowance a caller gets ``429 RateLimitExceeded`` with ``Retry-After``.

With a DAO (``dao_url``) the labeler follows the DAO's mandate and its executed
moderation actions (``GET /dao/mandate`` and ``/dao/actions``, every ``dao_poll_s``
seconds, or at once on ``plaza.labeler.syncDao``): see :mod:`plaza.moderation.policy`
and :mod:`plaza.moderation.dao_sync`.

On PostgreSQL the store may be shared with the labeler workers on the bus
(:mod:`plaza.moderation.bus_worker`), and the server may follow no firehose (no
``relay_urls``): the labels a worker commits notify the store's channel, and the
server's ``subscribeLabels`` streams wake on it (:func:`plaza.db.listen`).
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import logging
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from plaza.atproto import cbor
from plaza.atproto.datamodel import to_json
from plaza.db import listen, private_file
from plaza.errors import InvalidInputError, PlazaError
from plaza.moderation.dao_sync import DaoSync
from plaza.moderation.firehose import PostFeed
from plaza.moderation.identity import labeler_did, load_keys, register
from plaza.moderation.labeler import LABEL_VALUES, Labeler
from plaza.moderation.labels import iso_time
from plaza.moderation.moderator import Moderator, Post
from plaza.moderation.policy import Policy
from plaza.moderation.store import REVIEW_STATUSES, LabelerStore
from plaza.services.buckets import TokenBuckets, address_key
from plaza.services.errors import RateLimitedError
from plaza.services.identities import Identities
from plaza.services.service_jwt import ReplayGuard, parse, verify_service_jwt

log = logging.getLogger("plaza.labeler")

if TYPE_CHECKING:
    from plaza.moderation.classifier import Classifier

REPORT = "com.atproto.moderation.createReport"
ADMIN_TOKEN_FILE = "admin.token"
MAX_QUERY = 250


@dataclass(frozen=True)
class RateLimit:
    """A steady ``per_s`` with room for a ``burst``."""

    per_s: float
    burst: int


@dataclass(frozen=True)
class LabelerSettings:
    data_dir: Path
    public_url: str
    directory_url: str
    classifier: Classifier | None = None
    load_classifier: Callable[[], Classifier] | None = None
    """How to load (or train) the classifier when ``classifier`` is not given: the
    labeler then serves at once and follows the firehoses once it is ready
    (``_health``'s ``model``); the classifier's code (scikit-learn) is not even imported
    before."""
    relay_urls: tuple[str, ...] = ()
    db: str | None = None
    handle: str = "labeler.plaza.test"
    admin_token: str | None = None
    account_strikes: int = 3
    follow: bool = True
    dao_url: str | None = None
    dao_poll_s: float = 5.0
    query_rate: RateLimit = RateLimit(20.0, 100)
    report_rate: RateLimit = RateLimit(0.2, 10)


def admin_token(settings: LabelerSettings) -> str:
    """The admin token: the configured one, else one kept in DATA_DIR/admin.token."""
    if settings.admin_token:
        return settings.admin_token
    path = settings.data_dir / ADMIN_TOKEN_FILE
    if not path.exists() or not path.read_text().strip():
        private_file(path)
        path.write_text(secrets.token_urlsafe(32) + "\n")
    return path.read_text().strip()


def service_record(labeler: Labeler) -> dict[str, Any]:
    """The ``app.bsky.labeler.service`` record declaring the label values."""
    defs = [
        {
            "identifier": v,
            "severity": "alert" if v == "scam" else "inform",
            "blurs": "content",
            "defaultSetting": "warn",
            "adultOnly": False,
            "locales": [
                {
                    "lang": "en",
                    "name": v.title(),
                    "description": f"Posts and accounts labelled {v} by the classifier "
                    "or a moderator.",
                }
            ],
        }
        for v in ("spam", "scam")
    ]
    return {
        "$type": "app.bsky.labeler.service",
        "policies": {"labelValues": list(LABEL_VALUES), "labelValueDefinitions": defs},
        "createdAt": iso_time(0),
    }


def _json(body: Any, status: int = 200) -> Response:
    return JSONResponse(to_json(body), status_code=status)


def _error(exc: PlazaError) -> Response:
    response = JSONResponse(exc.to_dict(), status_code=exc.status)
    if isinstance(exc, RateLimitedError):
        response.headers["Retry-After"] = str(max(1, round(exc.retry_after_s)))
    return response


def _limit(buckets: TokenBuckets, key: str, what: str) -> None:
    wait = buckets.take(key)
    if wait > 0:
        raise RateLimitedError(
            f"too many {what}; try again in {max(1, round(wait))} s", retry_after_s=wait
        )


def create_app(settings: LabelerSettings) -> Starlette:
    keys = load_keys(settings.data_dir)
    did = labeler_did(settings.data_dir, keys, settings.public_url, settings.handle)
    store = LabelerStore.for_data_dir(settings.data_dir, settings.db)
    policy = Policy(did)
    labeler = Labeler(
        store, did, keys.label, account_strikes=settings.account_strikes, policy=policy
    )
    query_limit = TokenBuckets(settings.query_rate.per_s, settings.query_rate.burst)
    report_limit = TokenBuckets(settings.report_rate.per_s, settings.report_rate.burst)
    if settings.classifier is None and settings.load_classifier is None:
        raise InvalidInputError("the labeler needs a classifier or a way to load one")
    # The moderator, once the classifier is ready.
    moderators = [Moderator(settings.classifier)] if settings.classifier is not None else []
    model_state: dict[str, Any] = {"model": "ready" if moderators else "loading"}
    token = admin_token(settings)
    replay = ReplayGuard()
    http = httpx.AsyncClient(timeout=10)
    identities = Identities(settings.directory_url, http)
    dao = DaoSync(labeler, http, settings.dao_url, issue=True)
    latencies: list[float] = []

    async def on_posts(posts: list[Post], seq: int, source: str) -> None:
        start = time.time()
        decisions = moderators[0].judge(posts, start)
        with store.db.transaction():
            labeler.apply(decisions)
            store.set_cursor(source, seq)
        if posts:
            latencies.append(time.time() - start)
            del latencies[:-1000]

    def feed(url: str) -> PostFeed:
        async def handle(posts: list[Post], seq: int) -> None:
            await on_posts(posts, seq, f"firehose:{url}")

        return PostFeed(url, identities, handle, cursor=store.cursor(f"firehose:{url}"))

    feeds = [feed(url) for url in settings.relay_urls]

    async def health(request: Request) -> Response:
        return _json(
            {
                "did": did,
                "seq": store.last_seq(),
                "issued": labeler.issued,
                "open_reviews": len(store.reviews("open", 10_000)),
                "waiting_reviews": len(store.reviews("waiting", 10_000)),
                "mandate": {
                    "version": policy.mandate.version,
                    "from_dao": dao.synced,
                    "error": dao.error,
                },
                "sources": [{"url": f.url, "seq": f.seq, "dropped": f.dropped} for f in feeds],
                "cursors": store.cursors(),
                **model_state,
            }
        )

    async def query_labels(request: Request) -> Response:
        client = request.client
        try:
            _limit(query_limit, address_key(client.host) if client else "unknown", "queries")
        except RateLimitedError as exc:
            return _error(exc)
        q = request.query_params
        patterns = q.getlist("uriPatterns")
        sources = q.getlist("sources")
        try:
            limit = int(q.get("limit", "50"))
            cursor = int(q.get("cursor", "0"))
        except ValueError:
            return _error(InvalidInputError("limit and cursor must be integers"))
        if not patterns or not 1 <= limit <= MAX_QUERY or cursor < 0:
            return _error(InvalidInputError(f"uriPatterns needed; limit 1 to {MAX_QUERY}"))
        if any("*" in p[:-1] for p in patterns):
            return _error(InvalidInputError("only a trailing * is allowed in uriPatterns"))
        if sources and did not in sources:
            return _json({"labels": []})
        rows = store.query_labels(patterns, cursor, limit)
        out: dict[str, Any] = {"labels": [label for _, label in rows]}
        if len(rows) == limit:
            out["cursor"] = str(rows[-1][0])
        return _json(out)

    def woken() -> None:
        labeler.changed.set()

    async def subscribe(ws: WebSocket) -> None:
        raw = ws.query_params.get("cursor")
        await ws.accept()
        try:
            cursor = int(raw) if raw is not None else store.last_seq()
            if cursor > store.last_seq():
                await ws.send_bytes(
                    cbor.encode({"op": -1})
                    + cbor.encode(
                        {"error": "FutureCursor", "message": "cursor is ahead of the stream"}
                    )
                )
                await ws.close()
                return
            header = cbor.encode({"op": 1, "t": "#labels"})
            while True:
                labeler.changed.clear()
                rows = store.labels_after(cursor)
                for seq, label in rows:
                    await ws.send_bytes(header + cbor.encode({"seq": seq, "labels": [label]}))
                    cursor = seq
                if not rows:
                    waiter = asyncio.ensure_future(labeler.changed.wait())
                    gone = asyncio.ensure_future(ws.receive())
                    done, _ = await asyncio.wait(
                        {waiter, gone}, return_when=asyncio.FIRST_COMPLETED
                    )
                    waiter.cancel()
                    if gone in done:
                        return
                    gone.cancel()
        except (WebSocketDisconnect, ValueError, RuntimeError):
            return

    async def create_report(request: Request) -> Response:
        try:
            header = request.headers.get("authorization", "")
            if not header.startswith("Bearer "):
                raise InvalidInputError(
                    "a service token is needed", code="AuthRequired", status=401
                )
            jwt = parse(header.removeprefix("Bearer "))
            iss = jwt.payload.get("iss")
            if not isinstance(iss, str):
                raise InvalidInputError("token has no iss", code="AuthRequired", status=401)
            ident = await identities.get(iss.split("#", 1)[0])
            if ident.key is None:
                raise InvalidInputError("issuer has no key", code="AuthRequired", status=401)
            payload = verify_service_jwt(jwt, ident.key, aud=did, lxm=REPORT, now=time.time())
            replay.use(iss, str(payload.get("jti", "")), exp=float(payload["exp"]), now=time.time())
            _limit(report_limit, iss.split("#", 1)[0], "reports from this account")
            body = await request.json()
            if not isinstance(body, dict) or not isinstance(body.get("subject"), dict):
                raise InvalidInputError("body must hold reasonType and subject")
            reason_type = body.get("reasonType")
            reason = body.get("reason", "")
            if not isinstance(reason_type, str) or not isinstance(reason, str):
                raise InvalidInputError("reasonType and reason must be strings")
            reporter = iss.split("#", 1)[0]
            review_id = labeler.report(reporter, body["subject"], reason_type, reason)
        except PlazaError as exc:
            return _error(exc)
        except ValueError:
            return _error(InvalidInputError("body must be JSON"))
        item = store.review(review_id)
        assert item is not None
        return _json(
            {
                "id": review_id,
                "reasonType": reason_type,
                "reason": reason,
                "subject": body["subject"],
                "reportedBy": reporter,
                "createdAt": item.created_at,
            }
        )

    async def get_record(request: Request) -> Response:
        q = request.query_params
        if (q.get("repo"), q.get("collection"), q.get("rkey")) != (
            did,
            "app.bsky.labeler.service",
            "self",
        ):
            return JSONResponse({"error": "RecordNotFound", "message": "no such record"}, 404)
        return _json(
            {"uri": f"at://{did}/app.bsky.labeler.service/self", "value": service_record(labeler)}
        )

    def _admin(request: Request) -> None:
        given = request.headers.get("authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(given.encode(), token.encode()):
            raise InvalidInputError("the admin token is needed", code="AuthRequired", status=401)

    async def list_reviews(request: Request) -> Response:
        try:
            _admin(request)
            status = request.query_params.get("status", "open")
            if status not in REVIEW_STATUSES:
                raise InvalidInputError(f"status must be one of {', '.join(REVIEW_STATUSES)}")
        except PlazaError as exc:
            return _error(exc)
        return _json({"reviews": [r.to_json() for r in store.reviews(status)]})

    async def resolve_review(request: Request) -> Response:
        try:
            _admin(request)
            body = await request.json()
            if not isinstance(body, dict) or type(body.get("id")) is not int:
                raise InvalidInputError("body must hold id (integer) and action")
            val = body.get("val")
            item = labeler.resolve(
                body["id"], str(body.get("action")), val if isinstance(val, str) else None
            )
        except PlazaError as exc:
            return _error(exc)
        except ValueError:
            return _error(InvalidInputError("body must be JSON"))
        return _json(item.to_json())

    async def sync_dao_now(request: Request) -> Response:
        try:
            _admin(request)
        except PlazaError as exc:
            return _error(exc)
        issued = await dao.sync()
        return _json({"issued": issued, "synced": dao.synced, "error": dao.error})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await register(
            http,
            directory=settings.directory_url,
            data_dir=settings.data_dir,
            keys=keys,
            endpoint=settings.public_url,
            handle=settings.handle,
        )

        async def follow() -> None:
            await dao.sync()  # the mandate before the first label (not before serving)
            if not moderators:
                assert settings.load_classifier is not None
                try:
                    loaded = await asyncio.to_thread(settings.load_classifier)
                except PlazaError as exc:
                    model_state.update(model="failed", model_error=exc.message)
                    log.error("the classifier cannot be loaded: %s", exc.message)
                    return
                moderators.append(Moderator(loaded))
                model_state["model"] = "ready"
            if settings.follow:
                await asyncio.gather(*(f.run() for f in feeds))

        tasks = [asyncio.create_task(follow())]
        if settings.dao_url is not None:
            tasks.append(asyncio.create_task(dao.follow(settings.dao_poll_s)))
        if store.db.dialect == "postgresql":
            # labels other processes (the workers on the bus) add wake the streams too
            tasks.append(asyncio.create_task(listen(store.db.url, store.channel, woken)))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await http.aclose()
            store.close()

    app = Starlette(
        routes=[
            Route("/xrpc/_health", health),
            Route("/xrpc/com.atproto.label.queryLabels", query_labels),
            WebSocketRoute("/xrpc/com.atproto.label.subscribeLabels", subscribe),
            Route(f"/xrpc/{REPORT}", create_report, methods=["POST"]),
            Route("/xrpc/com.atproto.repo.getRecord", get_record),
            Route("/xrpc/plaza.labeler.listReviews", list_reviews),
            Route("/xrpc/plaza.labeler.resolveReview", resolve_review, methods=["POST"]),
            Route("/xrpc/plaza.labeler.syncDao", sync_dao_now, methods=["POST"]),
        ],
        lifespan=lifespan,
    )
    app.state.labeler = labeler
    app.state.latencies = latencies
    app.state.policy = policy
    return app
