"""The DAO's HTTP API (FastAPI; the OpenAPI document is at ``/openapi.json``).

Reads are open: the DAO's state is public by design. The one write is ``POST
/ledger/events``: a client builds the next event (``GET /ledger/head`` gives ``seq``,
``prev`` and the time floor), signs it with its key, and posts it in atproto JSON. The
signature *is* the authentication; the server checks the event's time against its own
clock (within ``ApiSettings.max_skew_ms``), the signature against the author's keys,
then the DAO's rules, and appends. A stale position answers 409 and the client rebuilds.
Errors have Plaza's HTTP shape (:mod:`plaza.asgi`): ``{"error": code, "message": ...}``
with the error's HTTP status, a failure of the server itself answered without its
internals (a reference to the server's log line instead).

Request bodies are read as a stream and refused (413) past :data:`MAX_BODY` bytes,
whether or not the client declared a length. A ``dao.identity.registered`` event binds a
did:plc with the DID's own proof (checked by the DAO's rules); when the API is given
``ApiSettings.identity_head`` (``plaza dao serve --directory``), the proof must also end
at the DID's *current* head in that directory, so a proof the DID has since superseded
is refused (409) before it reaches the ledger.

Handlers are synchronous and share one :class:`~plaza.dao.service.Dao` behind a lock, so
requests never interleave inside a command; each handler parses, calls the library and
renders.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from plaza.asgi import has_lone_surrogate, install_docs_page, install_json_errors, read_body
from plaza.atproto import datamodel
from plaza.atproto.plc.proof import chain_from_value
from plaza.dao.beancount import to_beancount
from plaza.dao.errors import (
    EventTimeError,
    NotFoundInStateError,
    PayloadTooLargeError,
    StaleProofError,
)
from plaza.dao.proposals import outcome
from plaza.dao.service import Dao
from plaza.dao.tally import tally_file
from plaza.errors import InvalidInputError, PlazaError
from plaza.ledger import merkle
from plaza.ledger.event import Event
from plaza.ledger.sqlstore import SqlEventStore

MAX_PAGE = 1000
MAX_BODY = 512 * 1024  # an event is at most 256 KiB of DAG-CBOR; JSON is larger


@dataclass(frozen=True)
class ApiSettings:
    """Where the ledger lives (a database URL or SQLite path), and optionally how to
    learn a did:plc's current head operation (CID) from a directory."""

    db_url: str
    title: str = "Plaza DAO"
    identity_head: Callable[[str], str] | None = None
    clock: Callable[[], int] = lambda: int(time.time() * 1000)
    max_skew_ms: int = 5 * 60 * 1000


def check_time(ev: Event, now_ms: int, max_skew_ms: int) -> None:
    """Refuse an event whose time is not within ``max_skew_ms`` of the server's clock.

    An event's time is its author's claim, and every window of the DAO (votes, vetoes,
    delegations, vouching suspensions) is measured in it; ledger time never runs
    backwards, so one event stamped far ahead would close every open window at once, and
    one stamped in the past (but after the head) would vote after a deadline.
    """
    if not now_ms - max_skew_ms <= ev.time <= now_ms + max_skew_ms:
        raise EventTimeError(
            f"event time {ev.time} is more than {max_skew_ms} ms from the server's clock "
            f"({now_ms}): sign it with the current time"
        )


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"a request body is at most {limit} bytes")


async def read_json(request: Request, limit: int = MAX_BODY) -> Any:
    """The JSON body, read as a stream and refused past ``limit`` bytes
    (:func:`plaza.asgi.read_body`)."""
    raw = await read_body(request, limit, _too_large)
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise InvalidInputError("the request body is not JSON") from exc
    if has_lone_surrogate(value):
        raise InvalidInputError("the request body holds invalid Unicode (a lone surrogate)")
    return value


def check_fresh(ev: Event, identity_head: Callable[[str], str] | None) -> None:
    """Refuse an identity binding whose proof does not end at the DID's current head."""
    if identity_head is None or ev.type != "dao.identity.registered":
        return
    did, proof = ev.payload.get("did"), ev.payload.get("proof")
    if not isinstance(did, str) or proof is None:
        return  # a did:key registering itself, or a malformed event the rules refuse
    head = chain_from_value(did, proof).head_cid
    if head != identity_head(did):
        raise StaleProofError(
            f"the proof for {did} ends at {head}, not at the DID's current operation: "
            "fetch its log again"
        )


class Posted(BaseModel):
    """The answer to an accepted event."""

    seq: int
    hash: str
    type: str


def _event_json(ev: Event) -> dict[str, Any]:
    out: dict[str, Any] = datamodel.to_json(ev.to_map())
    out["hash"] = ev.hash.hex()
    return out


def create_app(settings: ApiSettings, dao: Dao | None = None) -> FastAPI:
    """Build the API over the ledger at ``settings.db_url`` (or over ``dao``)."""
    state: dict[str, Dao] = {}
    lock = threading.RLock()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        state["dao"] = dao if dao is not None else Dao(SqlEventStore.open(settings.db_url))
        yield
        if dao is None:
            state["dao"].store.close()

    app = FastAPI(
        title=settings.title, version="1", lifespan=lifespan, docs_url=None, redoc_url=None
    )
    install_docs_page(app)

    def current() -> Dao:
        d = state["dao"]
        d.sync()
        return d

    install_json_errors(app, "dao")

    @app.get("/dao")
    def summary() -> dict[str, Any]:
        with lock:
            d = current()
            st = d.state
            head = d.ledger.head()
            return {
                "name": st.constitution.name,
                "ledger_id": st.ledger_id,
                "events": head.size,
                "members": len(st.active_members()),
                "proposals": len(st.proposals),
                "open_motions": sum(1 for m in st.motions.values() if m.status == "open"),
                "lapsed_motions": sum(1 for m in st.motions.values() if m.status == "lapsed"),
                "mandate_version": st.mandate.version,
                "currency": st.constitution.currency,
                "treasury": st.books.balance("Assets:Treasury"),
            }

    @app.get("/dao/members")
    def members() -> list[dict[str, Any]]:
        with lock:
            return [m.to_map() for _, m in sorted(current().state.member_records.items())]

    @app.get("/dao/proposals")
    def proposals(at: int | None = None) -> list[dict[str, Any]]:
        with lock:
            d = current()
            now = at if at is not None else d.state.now_ms
            return [
                {**_proposal_head(p.to_map()), "status": outcome(d.state, pid, now).status}
                for pid, p in sorted(d.state.proposals.items())
            ]

    @app.get("/dao/proposals/{pid}")
    def proposal(pid: int, at: int | None = None) -> dict[str, Any]:
        with lock:
            d = current()
            p = d.state.proposals.get(pid)
            if p is None:
                raise NotFoundInStateError(f"no proposal {pid}")
            now = at if at is not None else d.state.now_ms
            body: dict[str, Any] = datamodel.to_json(p.to_map())
            body["outcome"] = outcome(d.state, pid, now).to_dict()
            return body

    @app.get("/dao/motions")
    def motions() -> list[dict[str, Any]]:
        with lock:
            return [
                datamodel.to_json(m.to_map()) for _, m in sorted(current().state.motions.items())
            ]

    @app.get("/dao/actions")
    def actions() -> list[dict[str, Any]]:
        with lock:
            return [a.to_map() for a in current().state.actions]

    @app.get("/dao/accounts")
    def accounts() -> dict[str, int]:
        """The accounts the agents have placed with each provider."""
        with lock:
            return dict(current().state.accounts)

    @app.get("/dao/mandate")
    def mandate(version: int | None = None) -> dict[str, Any]:
        with lock:
            st = current().state
            if version is None:
                return st.mandate.to_map()
            for _, m in st.mandates:
                if m.version == version:
                    return m.to_map()
            raise NotFoundInStateError(f"no mandate version {version}")

    @app.get("/dao/constitution")
    def constitution() -> dict[str, Any]:
        with lock:
            return current().state.constitution.to_map()

    @app.get("/dao/legal")
    def legal() -> list[dict[str, Any]]:
        with lock:
            return [
                {"seq": v.seq, "time": v.time_ms, "record": v.record.to_map()}
                for v in current().state.legal
            ]

    @app.get("/dao/books", response_model=None)
    def books(format: str = "json") -> Any:
        with lock:
            st = current().state
            if format == "beancount":
                text = to_beancount(st.books, title=st.constitution.name)
                return PlainTextResponse(text)
            if format != "json":
                raise InvalidInputError("format is json or beancount")
            return st.books.to_map()

    @app.post("/dao/tally")
    async def tally(request: Request) -> dict[str, Any]:
        body = await read_json(request)
        return (await run_in_threadpool(tally_file, body)).to_dict()

    @app.get("/ledger/head")
    def head() -> dict[str, Any]:
        with lock:
            h = current().ledger.head()
            return {"size": h.size, "next_seq": h.size, "prev": h.hash.hex(), "time": h.time}

    @app.get("/ledger/events")
    def events(start: int = Query(0, ge=0), limit: int = Query(100, ge=1, le=MAX_PAGE)) -> Any:
        with lock:
            return [_event_json(e) for e in current().ledger.read(start, start + limit)]

    @app.post("/ledger/events")
    async def post_event(request: Request) -> Posted:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise InvalidInputError("not a ledger event: the body must be a JSON object")
        body = {k: v for k, v in body.items() if k != "hash"}
        try:
            ev = Event.from_map(datamodel.from_json(body))
        except PlazaError as exc:
            raise InvalidInputError(f"not a ledger event: {exc.message}") from exc

        check_time(ev, settings.clock(), settings.max_skew_ms)

        def submit() -> None:
            check_fresh(ev, settings.identity_head)  # network: before taking the lock
            with lock:
                current().submit(ev)

        await run_in_threadpool(submit)
        return Posted(seq=ev.seq, hash=ev.hash.hex(), type=ev.type)

    @app.get("/ledger/checkpoints")
    def checkpoints() -> list[dict[str, Any]]:
        with lock:
            return [datamodel.to_json(c.to_map()) for c in current().store.checkpoints()]

    @app.get("/ledger/proofs/inclusion")
    def inclusion(seq: int = Query(ge=0), size: int | None = None) -> dict[str, Any]:
        with lock:
            led = current().ledger
            n = size if size is not None else len(led)
            proof = led.inclusion_proof(seq, n)
            leaf = merkle.leaf_hash(led.get(seq).hash)
            return {
                "seq": seq,
                "size": n,
                "leaf": leaf.hex(),
                "root": led.root(n).hex(),
                "proof": [p.hex() for p in proof],
            }

    @app.get("/ledger/proofs/consistency")
    def consistency(old: int = Query(ge=1), new: int | None = None) -> dict[str, Any]:
        with lock:
            led = current().ledger
            n = new if new is not None else len(led)
            proof = led.consistency_proof(old, n)
            return {
                "old": old,
                "new": n,
                "old_root": led.root(old).hex(),
                "new_root": led.root(n).hex(),
                "proof": [p.hex() for p in proof],
            }

    return app


def _proposal_head(p: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "type", "author", "title", "method", "created", "end")
    return {k: p[k] for k in keys}
