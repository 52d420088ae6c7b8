"""The load queue: FIFO with a deadline, in fluid amounts.

Load that arrives in step ``t`` may be served in steps ``t .. t + delay``; what is still
queued after step ``t + delay`` is dropped and counted as unserved. Entries are kept per
arrival step, oldest first, so the queue never holds more than ``delay + 1`` entries.
"""

from __future__ import annotations

from collections import deque


class DeadlineQueue:
    """FIFO queue of ``[arrival_step, amount]`` with a service deadline of ``delay`` steps."""

    def __init__(self, delay: int) -> None:
        self.delay = delay
        self._q: deque[list[float]] = deque()

    def add(self, arrival: int, amount: float) -> None:
        if amount <= 0:
            return
        if self._q and self._q[-1][0] == arrival:
            self._q[-1][1] += amount
        elif self._q and self._q[-1][0] > arrival:
            # Late merge (load released from a blocked host): keep arrival order.
            items = sorted([*self._q, [float(arrival), amount]], key=lambda e: e[0])
            self._q = deque()
            for a, x in items:
                self.add(int(a), x)
        else:
            self._q.append([float(arrival), amount])

    def serve(self, capacity: float) -> tuple[float, float]:
        """Serve up to ``capacity`` oldest-first; return (served, wait-weighted steps)."""
        served = 0.0
        while self._q and capacity > 1e-12:
            head = self._q[0]
            take = min(capacity, head[1])
            head[1] -= take
            capacity -= take
            served += take
            if head[1] <= 1e-12:
                self._q.popleft()
        return served, capacity

    def serve_with_waits(self, capacity: float, now: int) -> tuple[float, list[tuple[int, float]]]:
        """Serve up to ``capacity`` oldest-first; return served and (wait, amount) pairs."""
        served = 0.0
        waits: list[tuple[int, float]] = []
        while self._q and capacity > 1e-12:
            head = self._q[0]
            take = min(capacity, head[1])
            head[1] -= take
            capacity -= take
            served += take
            waits.append((now - int(head[0]), take))
            if head[1] <= 1e-12:
                self._q.popleft()
        return served, waits

    def expire(self, now: int) -> float:
        """Drop load whose deadline has passed after step ``now``; return the amount."""
        dropped = 0.0
        while self._q and self._q[0][0] <= now - self.delay:
            dropped += self._q.popleft()[1]
        return dropped

    def take_fraction(self, fraction: float) -> list[tuple[int, float]]:
        """Remove ``fraction`` of every entry; return what was removed."""
        out = []
        for e in self._q:
            x = e[1] * fraction
            e[1] -= x
            out.append((int(e[0]), x))
        while self._q and self._q[0][1] <= 1e-12:
            self._q.popleft()
        return out

    def entries(self) -> tuple[tuple[int, float], ...]:
        return tuple((int(a), x) for a, x in self._q if x > 1e-12)

    def total(self) -> float:
        return sum(x for _, x in self._q)
