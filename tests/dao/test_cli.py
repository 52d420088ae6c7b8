"""``plaza dao``: the ballot-file tally in the issue's exact formats, and error exits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from plaza.cli import app


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    res = CliRunner().invoke(app, list(args), env=env)
    return res.exit_code, res.output


def test_tally_ballot_file_json(tmp_path: Path) -> None:
    # Round 1: a 4, b 3, c 2 (one ballot names an unknown candidate and is reported).
    # c is out; its ballots rank b next: round 2 a 4, b 5 -> b.
    path = tmp_path / "ballots.json"
    path.write_text(
        json.dumps(
            {
                "method": "irv",
                "candidates": ["a", "b", "c"],
                "ballots": [
                    {"ranking": ["a", "b"], "weight": 4},
                    {"ranking": ["b", "c"], "weight": 3},
                    {"ranking": ["c", "b"], "weight": 2},
                    {"ranking": ["b", "b"]},
                ],
            }
        )
    )
    code, out = run("dao", "tally", "--ballots", str(path), "--json")
    assert code == 0, out
    result = json.loads(out)
    assert result["winner"] == "b"
    assert result["totals"] == {"a": 4, "b": 5, "c": 0}
    assert result["rounds"] == [
        {"tallies": {"a": 4, "b": 3, "c": 2}, "eliminated": "c", "exhausted": 0},
        {"tallies": {"a": 4, "b": 5}, "eliminated": None, "exhausted": 0},
    ]
    assert result["invalid"] == [{"index": 3, "reason": "candidate repeated in ranking"}]


def test_tally_ballot_file_text_and_quadratic(tmp_path: Path) -> None:
    path = tmp_path / "q.json"
    path.write_text(
        json.dumps(
            {
                "method": "quadratic",
                "candidates": ["x", "y"],
                "credits": 9,
                "ballots": [{"votes": {"x": 3}}, {"votes": {"y": 2, "x": 2}}, {"votes": {"y": 4}}],
            }
        )
    )
    code, out = run("dao", "tally", "--ballots", str(path))
    assert code == 0, out
    assert "winner: x" in out  # x 3 + 2 = 5, y 2; {y: 4} costs 16 > 9
    assert "invalid ballot 2: votes cost 16 voice credits, more than the 9 available" in out


def test_malformed_ballot_files_exit_1(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    for text in ("not json", json.dumps({"method": "borda", "candidates": ["a"], "ballots": []})):
        bad.write_text(text)
        code, out = run("dao", "tally", "--ballots", str(bad))
        assert code == 1
        assert out.startswith("error: InvalidBallotFile:"), out
    code, out = run("dao", "tally", "--ballots", str(tmp_path / "missing.json"))
    assert code == 1


def test_commands_fail_cleanly(tmp_path: Path) -> None:
    env = {"PLAZA_DATA": str(tmp_path / "d")}
    code, out = run("dao", "status", env=env)
    assert code == 1 and out.startswith("error: NotInitialized"), out
    assert run("dao", "init", "--founder", "alice", "--founder", "bob", env=env)[0] == 0
    code, out = run(
        "dao",
        "propose",
        "signal",
        "Colour",
        "--choice",
        "red",
        "--choice",
        "blue",
        "--as",
        "alice",
        env=env,
    )
    assert code == 0 and out.startswith("proposal 1: Colour"), out
    assert run("dao", "vote", "1", "--choice", "red", "--as", "alice", env=env)[0] == 0
    code, out = run("dao", "vote", "1", "--choice", "blue", "--as", "alice", env=env)
    assert code == 1 and out.startswith("error: AlreadyVoted"), out
    code, out = run("dao", "vote", "1", "--choice", "red", "--rank", "a", "--as", "bob", env=env)
    assert code == 1 and "exactly one" in out
    code, out = run("dao", "vote", "1", "--choice", "red", "--as", "nobody", env=env)
    assert code == 1 and out.startswith("error: KeystoreError"), out
    code, out = run(
        "dao", "receive", "dues", "1.234", "--from", "x", "--ref", "r", "--as", "alice", env=env
    )
    assert code == 1 and "decimals" in out
    code, out = run(
        "dao", "act", '{"kind": "rfb.create"}', "--reason", "x", "--as", "alice", env=env
    )
    assert code == 1 and out.startswith("error: Forbidden"), out
    code, out = run("dao", "mandate", "diff", env=env)
    assert (code, out.strip()) == (0, "no changes")
    code, out = run("dao", "mandate", "show", "--version", "9", env=env)
    assert code == 1


@pytest.mark.parametrize(
    "args",
    [
        ["dao", "init", "--founder", "carol", "--opening", "lots"],
        ["dao", "init", "--founder", "carol", "--opening", "Infinity"],
        ["dao", "receive", "donation", "Infinity", "--from", "x", "--ref", "r", "--as", "alice"],
        ["dao", "receive", "donation", "NaN", "--from", "x", "--ref", "r", "--as", "alice"],
        ["dao", "propose", "treasury", "t", "--effect", "@/nonexistent/e.json", "--as", "alice"],
        ["dao", "act", "@/nonexistent/a.json", "--reason", "r", "--as", "alice"],
        ["dao", "vote", "1", "--score", "a=--5", "--as", "alice"],
        ["dao", "vote", "1", "--votes", "a=\u00b2", "--as", "alice"],
        ["dao", "mandate", "diff", "\u00b2"],
        ["dao", "delegate", "bob", "--expires", "forever", "--as", "alice"],
    ],
    ids=repr,
)
def test_bad_arguments_are_errors_not_crashes(tmp_path: Path, args: list[str]) -> None:
    env = {"PLAZA_DATA": str(tmp_path / "d")}
    assert run("dao", "init", "--founder", "alice", "--founder", "bob", env=env)[0] == 0
    res = CliRunner().invoke(app, args, env=env)
    assert res.exit_code == 1 and res.output.startswith("error: "), (res.output, res.exception)
    assert isinstance(res.exception, SystemExit | None), res.exception


def test_legal_before_genesis_is_an_error(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["dao", "legal"], env={"PLAZA_DATA": str(tmp_path / "d")})
    assert res.exit_code == 1 and res.output.startswith("error: NotInitialized"), res.output


def test_at_without_a_zone_is_utc_whatever_the_machines_zone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """'--at 2025-01-01T00:00:00' must name one instant on every machine: the output
    prints times in UTC, so a time given without a zone is UTC too."""
    import time

    from plaza.cli.dao_support import now_ms

    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        assert now_ms("2025-01-01T00:00:00") == 1_735_689_600_000
        assert now_ms("2025-01-01T00:00:00Z") == 1_735_689_600_000
        assert now_ms("2025-01-01T01:00:00+01:00") == 1_735_689_600_000
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_receive_needs_a_treasurer_and_a_reference(tmp_path: Path) -> None:
    env = {"PLAZA_DATA": str(tmp_path / "d")}
    init = ("dao", "init", "--founder", "alice", "--founder", "bob", "--treasurer", "alice")
    assert run(*init, env=env)[0] == 0
    gift = ("dao", "receive", "donation", "5.00", "--from", "a friend")
    code, out = run(*gift, "--as", "alice", env=env)
    assert code == 2 and "--ref" in out, out  # no reference: a usage error
    code, out = run(*gift, "--ref", "bank 1", "--as", "bob", env=env)
    assert code == 1 and out.startswith("error: Forbidden"), out
    code, out = run(*gift, "--ref", "bank 1", "--currency", "USD", "--as", "alice", env=env)
    assert code == 1 and "books are in EUR" in out, out
    code, out = run(*gift, "--ref", "bank 1", "--as", "alice", env=env)
    assert code == 0 and out.startswith("received 5.00 (donation, bank 1); treasury 5.00 EUR"), out
    code, out = run(*gift, "--ref", "bank 1", "--as", "alice", env=env)
    assert code == 1 and out.startswith("error: DuplicatePayment"), out


def test_lapse_a_motion_the_spent_budget_stops(tmp_path: Path) -> None:
    """``plaza dao lapse``: refused while the guard would let the motion execute, then
    closed once the infrastructure budget is spent; ``plaza dao status`` counts it."""
    env = {"PLAZA_DATA": str(tmp_path / "d")}
    init = ("dao", "init", "--founder", "alice", "--founder", "bob", "--agent", "ops")
    assert run(*init, "--treasurer", "alice", "--opening", "30000.00", env=env)[0] == 0

    def pay(amount: int, ref: str) -> tuple[int, str]:
        action = {"kind": "settlement.pay", "amount": amount, "category": "infrastructure",
                  "params": {"invoice": ref}}  # fmt: skip
        return run("dao", "act", json.dumps(action), "--reason", ref, "--as", "ops", env=env)

    code, out = pay(250_000, "big")  # over 2,000.00: a 72h motion (event 1)
    assert (code, out.strip()) == (0, "optimistic: motion 1 opened"), out
    code, out = run("dao", "lapse", "1", "--as", "bob", "--at", "+1d", env=env)
    assert code == 1 and out.startswith("error: ProposalClosed"), out
    code, out = run("dao", "lapse", "1", "--as", "bob", "--at", "+3d", env=env)
    assert code == 1 and out.startswith("error: MotionNotRefused"), out
    # 19,000.00 of the 20,000.00 rolling 30-day budget spent: 2,500.00 more would not fit.
    for i in range(10):
        assert pay(200_000 if i < 9 else 100_000, f"inv-{i}")[0] == 0
    code, out = run("dao", "lapse", "1", "--as", "bob", "--at", "+3d", env=env)
    assert code == 0 and out.startswith("motion 1 lapsed: mandate denies settlement.pay"), out
    assert "budget exceeded" in out
    code, out = run("dao", "execute", "1", "--motion", "--as", "bob", "--at", "+40d", env=env)
    assert code == 1 and out.startswith("error: ProposalClosed"), out
    code, out = run("dao", "status", "--json", env=env)
    assert code == 0
    assert (json.loads(out)["open_motions"], json.loads(out)["lapsed_motions"]) == (0, 1)
