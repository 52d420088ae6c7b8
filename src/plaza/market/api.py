"""The market's HTTP API (FastAPI; the OpenAPI document is at ``/openapi.json``).

Reads are open: the market is public by design. Writes are of two kinds:

* **signed documents** (registration, bid, contract terms, usage, observation, probe
  samples, dispute) are posted as atproto JSON (byte strings as ``{"$bytes": ...}``).
  The signature *is* the authentication: the market checks it against the signer's
  registered key, then the market rules, and the operator records it;
* **operator commands** (record a bond payment's receipt, open a request, award,
  approve, settle, fund escrow, resolve a dispute) need ``Authorization: Bearer <admin
  token>``, the token the operator started the service with.

Errors have Plaza's HTTP shape (:mod:`plaza.asgi`): ``{"error": code, "message": ...}``
with the error's status, a server failure answered without its internals; a rejected
document changes nothing. Request bodies are read before any handler runs and refused
(413 ``PayloadTooLarge``) past :data:`MAX_BODY` bytes, whether or not the client
declared a length. Handlers share one
:class:`~plaza.market.Market` behind a lock and each parses, calls the library, and
renders.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import Body, FastAPI, Header
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from plaza.asgi import BodyLimit, install_docs_page, install_json_errors
from plaza.atproto import datamodel
from plaza.atproto.crypto import PrivateKey
from plaza.atproto.errors import AtprotoError
from plaza.dao import Mandate
from plaza.dao.money import currency_for
from plaza.ledger import EventStore, Ledger, MemoryEventStore, SqlEventStore
from plaza.market.books import to_beancount
from plaza.market.dao_port import DaoLink
from plaza.market.errors import (
    MarketError,
    MarketInputError,
    NotFoundInMarketError,
    PayloadTooLargeError,
)
from plaza.market.invoicing import outstanding
from plaza.market.market import Market

MAX_BODY = 512 * 1024  # a signed document is at most 200 KiB of DAG-CBOR; JSON is larger
DOC_BODY = Body(..., description="A signed document in atproto JSON (sig as {'$bytes': ...})")


class AuthError(MarketError):
    """An operator command without the right bearer token."""

    code = "AuthRequired"
    status = 401


@dataclass(frozen=True)
class MarketSettings:
    """Where the ledger lives, who operates the market, and the admin token.

    ``ledger_url`` is a database URL or SQLite path, or ``memory:`` for an in-memory
    ledger. ``clock`` returns Unix ms (tests and the simulator pass their own).
    """

    ledger_url: str
    operator_did: str
    operator_key: PrivateKey | None
    mandate: Mandate
    admin_token: str = field(repr=False, default="")
    title: str = "Plaza market"
    clock: Callable[[], int] = field(default=lambda: int(time.time() * 1000))


class RfbSpec(BaseModel):
    """A request for bids (see ``plaza.market.rfb``)."""

    service: str
    quantity: int = Field(gt=0)
    region: str
    start_ms: int
    term_s: int = Field(gt=0)
    max_prices: dict[str, int]
    sla: dict[str, int] = {}
    max_bids: int | None = None
    deadline_ms: int
    min_bond: int = 0
    profile: dict[str, int] = {}
    credit_ladder: list[list[int]] | None = None
    latency_credit_ppm: int | None = None
    notice_s: int | None = None
    exit_fee: int | None = None


class SettleRequest(BaseModel):
    epoch: int = Field(ge=0)


class FundRequest(BaseModel):
    amount: int = Field(gt=0)
    memo: str = ""


class ResolveRequest(BaseModel):
    outcome: str = ""
    amount: int | None = None


class BondReceipt(BaseModel):
    amount: int = Field(gt=0)
    reference: str = Field(min_length=1, max_length=200)


class ApproveRequest(BaseModel):
    proposal: int = 0


def _too_large(limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(f"a request body is at most {limit} bytes")


def open_store(url: str) -> EventStore:
    return MemoryEventStore() if url in ("memory:", "memory://") else SqlEventStore.open(url)


def _doc(value: Any) -> dict[str, Any]:
    try:
        out = datamodel.from_json(value)
    except AtprotoError as exc:
        raise MarketInputError(f"not an atproto JSON document: {exc}") from exc
    assert isinstance(out, dict)
    return out


def create_app(settings: MarketSettings, market: Market | None = None) -> FastAPI:
    """Build the API over the ledger at ``settings.ledger_url`` (or over ``market``)."""
    holder: dict[str, Market] = {}
    lock = threading.RLock()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if market is not None:
            holder["m"] = market
            yield
            return
        store = open_store(settings.ledger_url)
        holder["m"] = Market(
            Ledger(store),
            operator_did=settings.operator_did,
            operator_key=settings.operator_key,
            mandate=settings.mandate,
        )
        try:
            yield
        finally:
            store.close()

    app = FastAPI(
        title=settings.title, version="1", lifespan=lifespan, docs_url=None, redoc_url=None
    )
    install_docs_page(app)

    def current() -> Market:
        m = holder["m"]
        m.sync()
        return m

    def admin(authorization: str | None) -> None:
        want = f"Bearer {settings.admin_token}"
        if not settings.admin_token or not hmac.compare_digest(authorization or "", want):
            raise AuthError("this command needs the operator's bearer token")

    app.add_middleware(BodyLimit, limit=MAX_BODY, too_large=_too_large)
    install_json_errors(app, "market")  # outermost: it also covers BodyLimit

    @app.get("/_health")
    def health() -> dict[str, Any]:
        with lock:
            m = current()
            return {"status": "ok", "events": len(m.ledger), "open": m.state.is_open}

    @app.get("/market")
    def summary() -> dict[str, Any]:
        with lock:
            m = current()
            st = m.state
            return {
                "operator": st.operator,
                "params": st.params.to_map() if st.is_open else None,
                "currency": st.currency,
                "minorDigits": currency_for(
                    st.currency or m.mandate.currency,
                    m.dao.dao.state.constitution if isinstance(m.dao, DaoLink) else None,
                ).minor_digits,
                "providers": len(st.providers),
                "rfbs": len(st.rfbs),
                "contracts": len(st.contracts),
                "settledEpochs": sorted(st.settled_epochs),
                "escrow": st.journal.balance("Assets:Escrow:Market"),
                "now": settings.clock(),
            }

    # -- providers ---------------------------------------------------------------------
    @app.get("/market/providers")
    def providers(status: str | None = None, service: str | None = None) -> list[dict[str, Any]]:
        with lock:
            out = []
            for _, p in sorted(current().state.providers.items()):
                if (status is None or p.status == status) and (
                    service is None or service in p.services
                ):
                    out.append(p.to_json())
            return out

    @app.get("/market/providers/{did}")
    def provider(did: str) -> dict[str, Any]:
        with lock:
            p = current().state.providers.get(did)
            if p is None:
                raise NotFoundInMarketError(f"no provider {did}")
            return p.to_json()

    @app.post("/market/providers")
    def register(doc: dict[str, Any] = DOC_BODY) -> dict[str, Any]:
        with lock:
            m = current()
            did = m.register_provider(_doc(doc), settings.clock())
            return m.state.providers[did].to_json()

    @app.post("/market/providers/{did}/bond")
    def bond_received(
        did: str, body: BondReceipt, authorization: str | None = Header(None)
    ) -> dict[str, Any]:
        admin(authorization)
        with lock:
            m = current()
            return m.receive_bond(did, body.amount, body.reference, settings.clock()).to_json()

    # -- procurement -------------------------------------------------------------------
    @app.get("/market/rfbs")
    def rfbs() -> list[dict[str, Any]]:
        with lock:
            return [r.to_json() for _, r in sorted(current().state.rfbs.items())]

    @app.get("/market/rfbs/{rid}")
    def rfb(rid: str) -> dict[str, Any]:
        with lock:
            m = current()
            r = m.state.rfbs.get(rid)
            if r is None:
                raise NotFoundInMarketError(f"no request for bids {rid}")
            out = r.to_json()
            out["award"] = m.state.awards.get(rid)
            return out

    @app.post("/market/rfbs")
    def create_rfb(spec: RfbSpec, authorization: str | None = Header(None)) -> dict[str, Any]:
        admin(authorization)
        with lock:
            body = spec.model_dump(exclude_none=True)
            return current().create_rfb(body, settings.clock()).to_json()

    @app.post("/market/bids")
    def bid(doc: dict[str, Any] = DOC_BODY) -> dict[str, Any]:
        with lock:
            return current().submit_bid(_doc(doc), settings.clock()).to_json()

    @app.get("/market/bids/{bid_id}")
    def get_bid(bid_id: str) -> dict[str, Any]:
        with lock:
            b = current().state.bids.get(bid_id)
            if b is None:
                raise NotFoundInMarketError(f"no bid {bid_id}")
            return b.to_json()

    @app.post("/market/rfbs/{rid}/award")
    def award(rid: str, authorization: str | None = Header(None)) -> dict[str, Any]:
        admin(authorization)
        with lock:
            plan, contracts = current().award(rid, settings.clock())
            return {**plan.to_payload(), "contracts": [c.id for c in contracts]}

    # -- contracts ---------------------------------------------------------------------
    @app.get("/market/contracts")
    def contracts(status: str | None = None) -> list[dict[str, Any]]:
        with lock:
            return [
                c.to_json()
                for _, c in sorted(current().state.contracts.items())
                if status is None or c.status == status
            ]

    @app.get("/market/contracts/{cid}")
    def contract(cid: str) -> dict[str, Any]:
        with lock:
            c = current().state.contracts.get(cid)
            if c is None:
                raise NotFoundInMarketError(f"no contract {cid}")
            return c.to_json()

    @app.post("/market/contracts/{cid}/sign")
    def sign(cid: str, doc: dict[str, Any] = DOC_BODY) -> dict[str, Any]:
        with lock:
            d = _doc(doc)
            if d.get("contract") != cid:
                raise MarketInputError(f"the signed terms are for {d.get('contract')}, not {cid}")
            return current().sign_contract(d, settings.clock()).to_json()

    @app.post("/market/contracts/{cid}/approve")
    def approve(
        cid: str, body: ApproveRequest | None = None, authorization: str | None = Header(None)
    ) -> dict[str, Any]:
        admin(authorization)
        with lock:
            proposal = body.proposal if body else 0
            return current().approve_contract(cid, settings.clock(), proposal=proposal).to_json()

    # -- evidence ----------------------------------------------------------------------
    @app.post("/market/usage")
    def usage(doc: dict[str, Any] = DOC_BODY) -> dict[str, str]:
        with lock:
            current().report_usage(_doc(doc), settings.clock())
            return {"status": "recorded"}

    @app.post("/market/observations")
    def observation(doc: dict[str, Any] = DOC_BODY) -> dict[str, str]:
        with lock:
            current().report_observation(_doc(doc), settings.clock())
            return {"status": "recorded"}

    @app.post("/market/probes")
    def probes(doc: dict[str, Any] = DOC_BODY) -> dict[str, str]:
        with lock:
            current().report_probes(_doc(doc), settings.clock())
            return {"status": "recorded"}

    # -- money -------------------------------------------------------------------------
    @app.post("/market/escrow")
    def fund(body: FundRequest, authorization: str | None = Header(None)) -> dict[str, int]:
        admin(authorization)
        with lock:
            m = current()
            m.fund_escrow(body.amount, settings.clock(), body.memo)
            return {"escrow": m.state.journal.balance("Assets:Escrow:Market")}

    @app.post("/market/settle")
    def settle(body: SettleRequest, authorization: str | None = Header(None)) -> dict[str, Any]:
        admin(authorization)
        with lock:
            return current().settle(body.epoch, settings.clock()).to_json()

    @app.get("/market/invoices")
    def invoices(provider: str | None = None) -> list[dict[str, Any]]:
        with lock:
            m = current()
            return [
                _invoice_json(m, i)
                for i in sorted(m.state.invoices)
                if provider is None or m.state.invoices[i].provider == provider
            ]

    @app.get("/market/invoices/{iid}")
    def invoice(iid: str) -> dict[str, Any]:
        with lock:
            m = current()
            if iid not in m.state.invoices:
                raise NotFoundInMarketError(f"no invoice {iid}")
            return _invoice_json(m, iid)

    @app.get("/market/books", response_class=PlainTextResponse)
    def books() -> str:
        with lock:
            m = current()
            return to_beancount(m.state, title=settings.title)

    @app.get("/market/needs")
    def needs() -> list[dict[str, Any]]:
        with lock:
            return [n.to_json() for n in current().state.needs]

    # -- disputes ----------------------------------------------------------------------
    @app.post("/market/disputes")
    def open_dispute(doc: dict[str, Any] = DOC_BODY) -> dict[str, Any]:
        with lock:
            return current().open_dispute(_doc(doc), settings.clock()).to_json()

    @app.get("/market/disputes/{did}")
    def dispute(did: str) -> dict[str, Any]:
        with lock:
            d = current().state.disputes.get(did)
            if d is None:
                raise NotFoundInMarketError(f"no dispute {did}")
            return d.to_json()

    @app.post("/market/disputes/{did}/resolve")
    def resolve(
        did: str, body: ResolveRequest, authorization: str | None = Header(None)
    ) -> dict[str, Any]:
        admin(authorization)
        with lock:
            d = current().resolve_dispute(
                did, settings.clock(), outcome=body.outcome, amount=body.amount
            )
            return d.to_json()

    return app


def _invoice_json(m: Market, iid: str) -> dict[str, Any]:
    out = m.state.invoices[iid].to_map()
    out["paid"] = m.state.invoice_paid.get(iid, 0)
    out["extra"] = m.state.invoice_extra.get(iid, 0)
    out["outstanding"] = outstanding(m.state, iid)
    out["issued_ms"] = m.state.invoice_time.get(iid, 0)
    return out
