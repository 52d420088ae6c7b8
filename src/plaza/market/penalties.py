"""Penalties: what follows from failing the SLA, epoch after epoch.

The first penalty is automatic and in the invoice: failed windows are not paid and the
credit ladder takes its share (:mod:`plaza.market.settlement`). An epoch in which any
of a provider's contracts ran below its SLA availability is a *failed epoch* for the
provider. A settled epoch in which it had a contract running and none failed is one in
which it *met every SLA* (windows without a probe quorum count as up, so this needs no
probers); such an epoch with probe evidence (judged windows) is a *clean* one.

:func:`decide` is pure: given the state just after an epoch is settled it returns the
steps that follow, as the Olas staking contract evicts a service after too many
inactive periods:

* ``probation_epochs`` epochs that met every SLA on probation -> ``active``;
* ``suspend_after`` consecutive failed epochs -> ``suspended`` (no new bids or awards;
  running contracts keep being paid for the windows they serve);
* ``offboard_after`` consecutive failed epochs -> ``offboarded``: every running
  contract ends, ``slash_ppm`` of the bond is forfeited to the DAO and the rest
  returned (Filecoin's termination fee, scaled down), and a *migration need* is raised
  naming the accounts the provider hosts, for the migration reconciler to drain;
* a suspended provider with a clean epoch is reinstated to ``active``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from plaza.market.params import PPM

if TYPE_CHECKING:
    from plaza.market.data import MarketData


@dataclass(frozen=True, slots=True)
class Step:
    """One consequence: a status change (with its reason), a forfeited bond, a need."""

    provider: str
    status: str
    reason: str
    slash: int = 0
    end_contracts: tuple[str, ...] = ()
    migrate_accounts: int = 0


def decide(
    state: MarketData, epoch: int, failed: set[str], clean: set[str], met: set[str]
) -> list[Step]:
    """The steps that follow settling ``epoch`` (``failed``/``clean``/``met``: providers
    whose epoch failed, was clean, or met every SLA; streaks and counts in ``state``
    already include this epoch)."""
    params = state.params
    steps: list[Step] = []
    for did in sorted(failed | clean | met):
        p = state.providers[did]
        if did in failed:
            if p.status != "offboarded" and p.failed_streak >= params.offboard_after:
                running = tuple(
                    sorted(
                        c.id
                        for c in state.contracts.values()
                        if c.provider == did and c.status != "ended"
                    )
                )
                accounts = sum(
                    state.contracts[c].held for c in running if not state.contracts[c].standing
                )
                steps.append(
                    Step(
                        did,
                        "offboarded",
                        f"failed its SLA {p.failed_streak} epochs in a row (through epoch "
                        f"{epoch}); offboard after {params.offboard_after}",
                        slash=p.bond * params.slash_ppm // PPM,
                        end_contracts=running,
                        migrate_accounts=accounts,
                    )
                )
            elif p.status in ("probation", "active") and p.failed_streak >= params.suspend_after:
                steps.append(
                    Step(
                        did,
                        "suspended",
                        f"failed its SLA {p.failed_streak} epochs in a row (through epoch "
                        f"{epoch}); suspend after {params.suspend_after}",
                    )
                )
        elif p.status == "probation" and p.met_epochs >= params.probation_epochs:
            steps.append(
                Step(
                    did,
                    "active",
                    f"met every SLA in {p.met_epochs} epoch(s) on probation (epoch {epoch})",
                )
            )
        elif p.status == "suspended" and did in clean:
            steps.append(Step(did, "active", f"reinstated: epoch {epoch} met the SLA"))
    return steps
