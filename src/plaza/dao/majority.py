"""Majority voting with support and participation thresholds in parts per million.

The formulas are Aragon OSx's ``MajorityVotingBase`` with ``RATIO_BASE = 10**6``
(aragon/osx, packages/contracts/src/plugins/governance/majority-voting/): with ``Y``, ``N``,
``A`` the yes, no and abstain weights, ``E`` the members eligible at the snapshot, ``s``
the support threshold and ``p`` the minimum participation, both in ppm:

* support is met iff ``(1e6 - s) * Y > s * N`` — strictly: an exact tie at the
  threshold fails (with ``s = 500000``, 10 yes and 10 no do not pass);
* participation is met iff ``(Y + N + A) * 1e6 >= p * E`` — abstentions count toward
  participation but not toward support;
* the vote may close early iff participation is met and ``(1e6 - s) * Y > s * (E - Y -
  A)``: even if every member who has not voted voted no, support would still be met.

Everything is integer arithmetic, so there is no rounding to argue about.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

PPM: Final = 1_000_000
CHOICES: Final = ("yes", "no", "abstain")


@dataclass(frozen=True, slots=True)
class MajorityResult:
    yes: int
    no: int
    abstain: int
    eligible: int
    support_ppm: int
    participation_ppm: int
    support_met: bool
    participation_met: bool
    early: bool

    @property
    def passed(self) -> bool:
        return self.support_met and self.participation_met

    def to_dict(self) -> dict[str, Any]:
        return {
            "yes": self.yes,
            "no": self.no,
            "abstain": self.abstain,
            "eligible": self.eligible,
            "support_ppm": self.support_ppm,
            "participation_ppm": self.participation_ppm,
            "support_met": self.support_met,
            "participation_met": self.participation_met,
            "early": self.early,
            "passed": self.passed,
        }


def majority(
    yes: int, no: int, abstain: int, eligible: int, *, support_ppm: int, participation_ppm: int
) -> MajorityResult:
    """Evaluate a yes/no/abstain vote; see the module docstring for the rules."""
    if min(yes, no, abstain, eligible) < 0:
        raise ValueError("vote weights cannot be negative")
    if not (0 <= support_ppm < PPM and 0 <= participation_ppm <= PPM):
        raise ValueError("support must be in [0, 1e6) and participation in [0, 1e6] ppm")
    support = (PPM - support_ppm) * yes > support_ppm * no
    participation = (yes + no + abstain) * PPM >= participation_ppm * eligible
    remaining = max(0, eligible - yes - no - abstain)
    early = participation and (PPM - support_ppm) * yes > support_ppm * (no + remaining)
    return MajorityResult(
        yes, no, abstain, eligible, support_ppm, participation_ppm, support, participation, early
    )
