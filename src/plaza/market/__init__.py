"""The market: providers, requests for bids, awards, contracts with SLAs, metering,
probes, settlement, disputes and penalties — every step a ledger event.

:class:`Market` is the command API (check, record, apply) over any ledger store;
:class:`MarketState` is the projection that replays ``market.*`` events. Documents that
providers and probers sign are built with :func:`sign_doc`; see ``docs/market.md``.
"""

from plaza.market.authority import Pending
from plaza.market.award import AwardLine, AwardPlan, Score, plan_award, score_bid
from plaza.market.bidding import validate_bid
from plaza.market.bids import Bid, bid_id
from plaza.market.contracts import Contract
from plaza.market.dao_port import DaoPort
from plaza.market.disputes import Dispute, Evidence
from plaza.market.errors import (
    BadSignatureError,
    BondTooSmallError,
    ClosedError,
    EpochOpenError,
    ExpiredError,
    IdentityProofError,
    MandateDeniedError,
    MarketError,
    MarketInputError,
    MarketRejectedError,
    NotApprovedError,
    NotFoundInMarketError,
    NotIndependentError,
    NotOperatorError,
    OverMaxPriceError,
    ProviderNotEligibleError,
    ReplayError,
    TreasuryPortError,
    UnknownProviderError,
    UnsignedError,
    WeakSlaError,
    WrongMarketError,
    WrongRegionError,
    WrongServiceError,
)
from plaza.market.invoicing import billable, invoice_id, make_invoice, outstanding
from plaza.market.journal import Journal, JournalEntry
from plaza.market.market import Market
from plaza.market.metering import UsageReport, Verified, cross_check
from plaza.market.params import DEFAULT_LADDER, PPM, PRICE_SCALE, SERVICES, UNITS, MarketParams
from plaza.market.probes import ProbeBook, WindowVerdicts, encode_series
from plaza.market.registry import Provider, StatusChange
from plaza.market.rfb import Rfb, Sla
from plaza.market.settle import SettlementResult, funding_action, status_action
from plaza.market.settlement import Invoice, compute_invoice, ladder_credit, pro_rata
from plaza.market.signed import doc_digest, sign_doc
from plaza.market.state import MarketState, Need

__all__ = [
    "DEFAULT_LADDER",
    "PPM",
    "PRICE_SCALE",
    "SERVICES",
    "UNITS",
    "AwardLine",
    "AwardPlan",
    "BadSignatureError",
    "Bid",
    "BondTooSmallError",
    "ClosedError",
    "Contract",
    "DaoPort",
    "Dispute",
    "EpochOpenError",
    "Evidence",
    "ExpiredError",
    "IdentityProofError",
    "Invoice",
    "Journal",
    "JournalEntry",
    "MandateDeniedError",
    "Market",
    "MarketError",
    "MarketInputError",
    "MarketParams",
    "MarketRejectedError",
    "MarketState",
    "Need",
    "NotApprovedError",
    "NotFoundInMarketError",
    "NotIndependentError",
    "NotOperatorError",
    "OverMaxPriceError",
    "Pending",
    "ProbeBook",
    "Provider",
    "ProviderNotEligibleError",
    "ReplayError",
    "Rfb",
    "Score",
    "SettlementResult",
    "Sla",
    "StatusChange",
    "TreasuryPortError",
    "UnknownProviderError",
    "UnsignedError",
    "UsageReport",
    "Verified",
    "WeakSlaError",
    "WindowVerdicts",
    "WrongMarketError",
    "WrongRegionError",
    "WrongServiceError",
    "bid_id",
    "billable",
    "compute_invoice",
    "cross_check",
    "doc_digest",
    "encode_series",
    "funding_action",
    "invoice_id",
    "ladder_credit",
    "make_invoice",
    "outstanding",
    "plan_award",
    "pro_rata",
    "score_bid",
    "sign_doc",
    "status_action",
    "validate_bid",
]
