"""The Network page: the providers, their share of accounts, their SLA over time and
their invoices, and how concentrated the network is.

Providers, contracts and invoices come from the market's API; the accounts each
hosting provider holds come from the DAO's (``/dao/accounts``: the placements its
agents made), or, without a DAO, from the accounts the latest invoices verified.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from starlette.responses import Response

from plaza.web.concentration import bar_chart, concentration
from plaza.web.context import Page
from plaza.web.errors import NotConfiguredError

_MARKET_READS = ("/providers", "/contracts", "/invoices", "")


def short(did: str) -> str:
    return did if len(did) <= 28 else f"{did[:18]}…{did[-6:]}"


def _invoiced_accounts(invoices: list[dict[str, Any]]) -> dict[str, int]:
    latest: dict[str, int] = {}
    epoch_of: dict[str, int] = {}
    for inv in invoices:
        p, e = str(inv.get("provider")), int(inv.get("epoch", 0))
        n = sum(int(line.get("verified", 0)) for line in inv.get("lines") or [])
        if e > epoch_of.get(p, -1):
            epoch_of[p], latest[p] = e, n
        elif e == epoch_of[p]:
            latest[p] += n
    return latest


def sla_series(invoices: list[dict[str, Any]]) -> dict[str, list[tuple[int, float]]]:
    """Each provider's measured availability per epoch, oldest first."""
    out: dict[str, list[tuple[int, float]]] = defaultdict(list)
    for inv in sorted(invoices, key=lambda i: int(i.get("epoch", 0))):
        out[str(inv.get("provider"))].append(
            (int(inv.get("epoch", 0)), int(inv.get("availability_ppm", 0)) / 1_000_000)
        )
    return dict(out)


async def network(page: Page) -> Response:
    if page.web.settings.market is None:
        raise NotConfiguredError("this web client has no market API (--market)")
    return await page.stream("network.html", lambda: _values(page), title="Network")


async def _values(page: Page) -> dict[str, Any]:
    settings, up = page.web.settings, page.web.upstream
    reads = [up.get_json(f"{settings.market}/market{path}") for path in _MARKET_READS]
    if settings.dao is not None:
        reads.append(up.get_json(f"{settings.dao}/dao/accounts"))
    providers, contracts, invoices, summary, *placed = await asyncio.gather(*reads)
    accounts: dict[str, int] = {}
    if placed:
        accounts = {str(k): int(v) for k, v in placed[0].items()}
    if not accounts:
        accounts = _invoiced_accounts(invoices)
    c = concentration(accounts)
    rows = [
        (short(p), share, f"{share * 100:.1f}%")
        for p, share in sorted(c.shares.items(), key=lambda kv: -kv[1])
    ]
    series = sla_series(invoices)
    sla_rows = [
        (f"{short(p)} epoch {e}", a, f"{a * 100:.2f}%")
        for p, points in series.items()
        for e, a in points
    ]
    return {
        "providers": providers,
        "contracts": contracts,
        "invoices": invoices,
        "summary": summary,
        "accounts": accounts,
        "c": c,
        "share_chart": bar_chart(rows),
        "sla_chart": bar_chart(sla_rows),
        "short": short,
    }
