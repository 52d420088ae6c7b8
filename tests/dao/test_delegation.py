"""Liquid delegation: worked examples and properties (termination, each member once)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from plaza.dao.delegation import Delegation, effective_delegates, resolve, resolve_arrays


def test_transitive_chain() -> None:
    # a -> b -> c, and c votes: c carries a, b and itself.
    res = resolve("abc", {"c"}, {"a": "b", "b": "c"})
    assert res.carrier == {"a": "c", "b": "c", "c": "c"}
    assert res.weight == {"c": 3}


def test_direct_vote_overrides() -> None:
    # a -> b -> c, but b voted too: b carries a; c carries only itself.
    res = resolve("abc", {"b", "c"}, {"a": "b", "b": "c"})
    assert res.weight == {"b": 2, "c": 1}


def test_cycle_without_voter_counts_nobody() -> None:
    # a <-> b and c -> a; nobody votes: nobody is counted.
    res = resolve("abcd", {"d"}, {"a": "b", "b": "a", "c": "a"})
    assert res.carrier == {"d": "d"}
    # a votes: a's own delegation is suspended and a carries b and c.
    res = resolve("abcd", {"a", "d"}, {"a": "b", "b": "a", "c": "a"})
    assert res.weight == {"a": 3, "d": 1}


def test_delegate_not_eligible() -> None:
    # x is not eligible (joined after the snapshot): a's chain ends uncounted.
    res = resolve("ab", {"b"}, {"a": "x"})
    assert res.carrier == {"b": "b"}


def test_precedence_and_expiry() -> None:
    ds = {
        ("a", "global", ""): Delegation("a", "g", "global"),
        ("a", "topic", "treasury"): Delegation("a", "t", "topic", "treasury"),
        ("a", "proposal", "7"): Delegation("a", "p", "proposal", "7", expires_ms=100),
        ("b", "global", ""): Delegation("b", "g", "global", expires_ms=50),
    }
    eff = effective_delegates(ds, members="ab", topic="treasury", proposal="7", at_ms=10)
    assert eff == {"a": "p", "b": "g"}
    # At 100 the proposal delegation has expired: the topic one applies; b's global
    # one expired at 50.
    eff = effective_delegates(ds, members="ab", topic="treasury", proposal="7", at_ms=100)
    assert eff == {"a": "t"}
    eff = effective_delegates(ds, members="ab", topic="mandate", proposal="8", at_ms=10)
    assert eff == {"a": "g", "b": "g"}


def test_arrays_match_on_an_example() -> None:
    # 0 -> 1 -> 2 (votes); 3 <-> 4; 5 -> 3; 6 votes; 7 nothing.
    delegate = np.array([1, 2, -1, 4, 3, 3, -1, -1])
    voted = np.array([False, False, True, False, False, False, True, False])
    assert resolve_arrays(delegate, voted).tolist() == [2, 2, 2, -1, -1, -1, 6, -1]


@st.composite
def graphs(draw: st.DrawFn) -> tuple[int, dict[int, int], set[int]]:
    n = draw(st.integers(1, 40))
    edges = draw(st.dictionaries(st.integers(0, n - 1), st.integers(0, n + 2), max_size=n))
    edges = {k: v for k, v in edges.items() if k != v}
    voters = draw(st.sets(st.integers(0, n - 1)))
    return n, edges, voters


@settings(max_examples=300, deadline=None)
@given(graphs())
def test_resolution_terminates_and_counts_each_member_once(
    g: tuple[int, dict[int, int], set[int]],
) -> None:
    n, edges, voters = g
    names = [f"m{i}" for i in range(n)]
    delegate_of = {f"m{k}": f"m{v}" for k, v in edges.items()}
    res = resolve(names, {f"m{v}" for v in voters}, delegate_of)
    # Each member lands on at most one voter, voters carry themselves, weights add up.
    assert set(res.carrier) <= set(names)
    assert all(c in {f"m{v}" for v in voters} for c in res.carrier.values())
    assert sum(res.weight.values()) == len(res.carrier) <= n
    assert all(res.carrier[f"m{v}"] == f"m{v}" for v in voters)
    # The array resolver agrees (delegates outside 0..n-1 are ineligible: -1).
    delegate = np.full(n, -1)
    for k, v in edges.items():
        if v < n and k not in voters:
            delegate[k] = v
    voted = np.zeros(n, dtype=bool)
    voted[list(voters)] = True
    carrier = resolve_arrays(delegate, voted)
    expect = [int(res.carrier[f"m{i}"][1:]) if f"m{i}" in res.carrier else -1 for i in range(n)]
    assert carrier.tolist() == expect
