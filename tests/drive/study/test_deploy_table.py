"""The study's deployment-fault table: levels per policy over training seeds and the paired effect of
telling the policy the elapsed time."""

from __future__ import annotations

import pytest

from drive.closed_loop.record import RecordConfig
from drive.study.deploy_table import deploy_section, deploy_tables, elapsed_pairs
from drive.study.study_plan import ProtocolConfig, StudyConfig, StudyTrain
from drive.study.tables import seed_values

TOLD = "drop=0.3,burst=2,jitter=0.5"
PERIOD = "drop=0.3,burst=2,jitter=0.5,elapsed=period"


def _config() -> StudyConfig:
    return StudyConfig(
        protocols=[ProtocolConfig(name="p", record=RecordConfig())],
        train=StudyTrain(policies=["ncp-ltc", "lstm"], seeds=[0, 1, 2]),
        eval={"deploy": ["none", TOLD, PERIOD]},
    )


def _rows() -> list[dict]:
    rows = []
    for policy, told_gain in (("ncp-ltc", -1.0), ("lstm", 0.0)):
        for seed in (0, 1, 2):
            base = 2.0 + seed
            for deploy, value in (("none", base), (TOLD, base + 3 + told_gain), (PERIOD, base + 3)):
                for eval_seed, jiggle in ((100, -0.5), (101, 0.5)):  # two episodes: their mean is `value`
                    rows.append(
                        {
                            "protocol": "p",
                            "policy": policy,
                            "train_seed": seed,
                            "eval_seed": eval_seed,
                            "noise_variance": 0.0,
                            "deploy": deploy,
                            "interventions_per_km": value + jiggle,
                        }
                    )
    return rows


def test_levels_and_the_paired_elapsed_effect():
    assert elapsed_pairs(["none", TOLD, PERIOD, "drop=0.1"]) == [(TOLD, PERIOD)]
    tables = deploy_tables(_config(), _rows())["p"]
    assert tables["levels"]["ncp-ltc"]["none"].mean == pytest.approx(3.0)
    assert tables["levels"]["ncp-ltc"][TOLD].mean == pytest.approx(5.0)
    assert tables["levels"]["ncp-ltc"][PERIOD].mean == pytest.approx(6.0)
    # Paired by seed: every seed gains exactly 1, so the interval is the point; the LSTM gains nothing.
    effect = tables["elapsed_effect"]["ncp-ltc"][TOLD]
    assert (effect.mean, effect.low, effect.high, effect.n) == (pytest.approx(-1.0), -1.0, -1.0, 3)
    assert effect.resolved
    assert tables["elapsed_effect"]["lstm"][TOLD].mean == pytest.approx(0.0)
    text = "\n".join(deploy_section(_config(), {"p": tables}))
    assert f"`{PERIOD}`" in text and "-1.00 [-1.00, -1.00] * (-1.0000 / -1.0000 / -1.0000)" in text
    assert tables["elapsed_seed_effect"]["lstm"][TOLD] == {0: 0.0, 1: 0.0, 2: 0.0}
    assert (
        f"No difference on any training seed: lstm at `{TOLD}`. Resolved at 95 %: ncp-ltc at `{TOLD}` "
        "(fewer interventions when told)." in text
    )


def test_the_noise_tables_read_the_fault_free_setting_only():
    values = seed_values(_rows(), "p", "ncp-ltc", 0.0, "interventions_per_km")
    assert values == {0: pytest.approx(2.0), 1: pytest.approx(3.0), 2: pytest.approx(4.0)}
    assert deploy_tables(StudyConfig(protocols=[ProtocolConfig(name="p", record=RecordConfig())]), []) == {}


def test_the_reading_names_unresolved_effects():
    from drive.study.deploy_table import elapsed_reading
    from drive.study.stats import Interval

    effect = {"ncp-cfc": {TOLD: Interval(-0.7, -2.0, 0.5, 3)}, "cnn": {TOLD: Interval(0.3, 0.1, 0.6, 3)}}
    assert elapsed_reading(effect, [(TOLD, PERIOD)]) == (
        f"Reading: Resolved at 95 %: cnn at `{TOLD}` (more interventions when told). Not resolved (the "
        f"interval includes 0, the sign is not known with these seeds): ncp-cfc at `{TOLD}`."
    )
