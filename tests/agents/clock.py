"""A fake clock for reconciler tests: simulated steps, never the wall clock."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FakeClock:
    step: int = 0
    step_seconds: int = 300
    epoch_ms: int = 1_700_000_000_000

    def advance(self, steps: int = 1) -> int:
        self.step += steps
        return self.step

    @property
    def now_ms(self) -> int:
        return self.epoch_ms + self.step * self.step_seconds * 1000
