"""RFC 6962/9162 Merkle trees: hand-computed trees, the RFC's worked example, properties."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from plaza.ledger import ProofError, merkle


def H(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(bytes([i]) * 3) for i in range(n)]


def reference_mth(hs: list[bytes]) -> bytes:
    """MTH exactly as RFC 6962 section 2.1 defines it (recursive split at the largest
    power of two below n), over leaf hashes."""
    if not hs:
        return H(b"")
    if len(hs) == 1:
        return hs[0]
    k = 1
    while k * 2 < len(hs):
        k *= 2
    return H(b"\x01" + reference_mth(hs[:k]) + reference_mth(hs[k:]))


def test_empty_and_single() -> None:
    assert merkle.root([]) == H(b"")
    assert merkle.leaf_hash(b"d0") == H(b"\x00d0")
    assert merkle.root([merkle.leaf_hash(b"d0")]) == H(b"\x00d0")


def test_three_leaves_by_hand() -> None:
    # MTH(d0, d1, d2) = H(1 || H(1 || H(0||d0) || H(0||d1)) || H(0||d2)): the split of
    # 3 is at 2, and the lone right leaf is not paired with itself (unlike Bitcoin).
    a, b, c = H(b"\x00d0"), H(b"\x00d1"), H(b"\x00d2")
    expected = H(b"\x01" + H(b"\x01" + a + b) + c)
    assert merkle.root([a, b, c]) == expected


@pytest.mark.parametrize("n", range(0, 40))
def test_root_matches_the_rfc_definition(n: int) -> None:
    hs = leaves(n)
    assert merkle.root(hs) == reference_mth(hs)
    acc = merkle.Accumulator()
    for h in hs:
        acc.push(h)
    assert acc.size == n
    assert acc.root() == reference_mth(hs)


class TestRfcExample:
    """RFC 9162 section 2.1.5: the seven-leaf tree and its proofs, letter by letter."""

    d = tuple(f"d{i}".encode() for i in range(7))
    a, b, c, dd, e, f, d6 = (merkle.leaf_hash(x) for x in d)
    g = merkle.node_hash(a, b)
    h = merkle.node_hash(c, dd)
    i = merkle.node_hash(e, f)
    j = d6
    k = merkle.node_hash(g, h)
    l = merkle.node_hash(i, j)  # noqa: E741 - the RFC's letter
    hs = (a, b, c, dd, e, f, d6)

    def test_root(self) -> None:
        assert merkle.root(self.hs) == merkle.node_hash(self.k, self.l)

    def test_audit_paths(self) -> None:
        assert merkle.inclusion_proof(0, list(self.hs)) == [self.b, self.h, self.l]
        assert merkle.inclusion_proof(3, list(self.hs)) == [self.c, self.g, self.l]
        assert merkle.inclusion_proof(4, list(self.hs)) == [self.f, self.j, self.k]
        assert merkle.inclusion_proof(6, list(self.hs)) == [self.i, self.k]

    def test_consistency_proofs(self) -> None:
        assert merkle.consistency_proof(3, list(self.hs)) == [self.c, self.dd, self.g, self.l]
        assert merkle.consistency_proof(4, list(self.hs)) == [self.l]
        assert merkle.consistency_proof(6, list(self.hs)) == [self.i, self.j, self.k]
        root7 = merkle.root(self.hs)
        for m in (3, 4, 6):
            merkle.verify_consistency(
                m, 7, merkle.root(self.hs[:m]), root7, merkle.consistency_proof(m, list(self.hs))
            )


@pytest.mark.parametrize("n", range(1, 18))
def test_every_inclusion_proof_verifies_and_only_for_its_leaf(n: int) -> None:
    hs = leaves(n)
    r = merkle.root(hs)
    for m in range(n):
        proof = merkle.inclusion_proof(m, hs)
        merkle.verify_inclusion(m, n, hs[m], proof, r)
        # Depth bound from RFC 6962: a path has at most ceil(log2 n) hashes.
        assert len(proof) <= max(0, (n - 1).bit_length())
        for other in range(n):
            if hs[other] != hs[m]:
                with pytest.raises(ProofError):
                    merkle.verify_inclusion(m, n, hs[other], proof, r)
        if proof:
            with pytest.raises(ProofError):
                merkle.verify_inclusion(m, n, hs[m], proof[:-1], r)
            with pytest.raises(ProofError):
                merkle.verify_inclusion(m, n, hs[m], [*proof, proof[0]], r)
            bad = [bytes(32), *proof[1:]]
            with pytest.raises(ProofError):
                merkle.verify_inclusion(m, n, hs[m], bad, r)


@pytest.mark.parametrize("n", range(1, 18))
def test_every_consistency_proof_verifies(n: int) -> None:
    hs = leaves(n)
    new_root = merkle.root(hs)
    for m in range(1, n + 1):
        old_root = merkle.root(hs[:m])
        proof = merkle.consistency_proof(m, hs)
        merkle.verify_consistency(m, n, old_root, new_root, proof)
        if m < n:
            with pytest.raises(ProofError):
                merkle.verify_consistency(m, n, merkle.root(leaves(m + 1)[1:]), new_root, proof)
            with pytest.raises(ProofError):
                merkle.verify_consistency(m, n, old_root, bytes(32), proof)
            with pytest.raises(ProofError):
                merkle.verify_consistency(m, n, old_root, new_root, proof[:-1])


def test_a_rewritten_history_is_not_consistent() -> None:
    hs = leaves(9)
    forked = [*hs[:4], merkle.leaf_hash(b"other"), *hs[5:]]
    proof = merkle.consistency_proof(5, forked)
    with pytest.raises(ProofError):
        merkle.verify_consistency(5, 9, merkle.root(hs[:5]), merkle.root(forked), proof)


def test_out_of_range() -> None:
    with pytest.raises(ProofError):
        merkle.inclusion_proof(3, leaves(3))
    with pytest.raises(ProofError):
        merkle.consistency_proof(0, leaves(3))
    with pytest.raises(ProofError):
        merkle.verify_inclusion(5, 5, bytes(32), [], bytes(32))
    with pytest.raises(ProofError):
        merkle.verify_consistency(4, 3, bytes(32), bytes(32), [])
    with pytest.raises(ProofError):
        merkle.verify_consistency(3, 3, bytes(32), bytes(32), [bytes(32)])


@given(st.integers(1, 300), st.data())
def test_proofs_for_random_sizes(n: int, data: st.DataObject) -> None:
    hs = leaves(n % 256) + [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(n - n % 256)]
    m = data.draw(st.integers(1, n))
    idx = data.draw(st.integers(0, n - 1))
    r = merkle.root(hs)
    merkle.verify_inclusion(idx, n, hs[idx], merkle.inclusion_proof(idx, hs), r)
    merkle.verify_consistency(m, n, merkle.root(hs[:m]), r, merkle.consistency_proof(m, hs))
