from __future__ import annotations

from pathlib import Path

import pytest

from plaza.sim import FaultSpecError, Scenario, ScenarioError, load_scenario, parse_faults
from plaza.sim.scenario import scenario_from_dict


def test_default_scenario_is_the_issue_s() -> None:
    sc = load_scenario(None)
    assert sc.reserved.price_per_unit_hour == 1.0
    assert sc.reserved.min_term_minutes == 24 * 60
    assert sc.reserved.lead_time_minutes == 60
    assert sc.on_demand.price_per_unit_hour == 2.5
    assert sc.providers >= 10
    assert sc.max_provider_share == 0.2
    assert sc.steps(sc.sla_delay_minutes, 300) == 3


def test_toml_overrides_a_subset(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text(
        "[reserved]\nmin_term_hours = 12\n[providers]\ncount = 15\n[mirror]\nlag_minutes = 10\n"
    )
    sc = load_scenario(f)
    assert sc.reserved.min_term_minutes == 720
    assert sc.reserved.price_per_unit_hour == 1.0
    assert sc.providers == 15
    assert sc.mirror_lag_minutes == 10


@pytest.mark.parametrize(
    ("doc", "words"),
    [
        ({"nope": {"x": 1}}, "unknown table"),
        ({"providers": {"colour": 1}}, "unknown key"),
        ({"providers": {"count": 2.5}}, "wrong type"),
        ({"mandate": {"max_provider_share": 1.5}}, "max_provider_share"),
        ({"reserved": {"price_per_unit_hour": -1}}, "price"),
        ({"reserved": {"speed": 1}}, "unknown keys"),
        ({"sla": 3}, "must be a table"),
    ],
    ids=["table", "key", "type", "share", "price", "contract-key", "not-table"],
)
def test_bad_scenarios(doc: dict[str, object], words: str) -> None:
    with pytest.raises(ScenarioError, match=words):
        scenario_from_dict(doc)  # type: ignore[arg-type]


def test_bad_toml_file(tmp_path: Path) -> None:
    f = tmp_path / "s.toml"
    f.write_text("[reserved\n")
    with pytest.raises(ScenarioError, match="not valid TOML"):
        load_scenario(f)


def test_parse_faults() -> None:
    faults = parse_faults(
        "vanish:p4@6d,crash:p3@2d+4h,slow:p1@3d+6h*0.25,leave:p2@5d",
        providers=12,
        steps=20_000,
        step_seconds=300,
    )
    assert [f.kind for f in faults] == ["crash", "slow", "leave", "vanish"]
    crash = faults[0]
    assert (crash.provider, crash.at, crash.duration) == (3, 576, 48)
    assert faults[1].factor == 0.25
    assert faults[2].duration == 288


def test_chaos_is_seeded() -> None:
    a = parse_faults("chaos:5", providers=12, steps=5000, step_seconds=300, seed=1)
    b = parse_faults("chaos:5", providers=12, steps=5000, step_seconds=300, seed=1)
    c = parse_faults("chaos:5", providers=12, steps=5000, step_seconds=300, seed=2)
    assert a == b
    assert a != c
    assert len(a) == 5


@pytest.mark.parametrize(
    "spec",
    ["explode:p1@1d", "crash:p99@1d", "crash:p1", "crash:p1@1y", "slow:p1@1d*2", "chaos:x"],
)
def test_bad_fault_specs(spec: str) -> None:
    with pytest.raises(FaultSpecError):
        parse_faults(spec, providers=12, steps=1000, step_seconds=300)


def test_scenario_validate_rejects_nonsense() -> None:
    with pytest.raises(ScenarioError):
        Scenario(providers=0).validate()
