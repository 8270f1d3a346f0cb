"""Every config in config/ plans its whole DAG: a dry run of each (offline, no data needed; the
data folders of the GPU configs need not exist to plan), so a change to the rules, the schema or a
suite cannot leave a shipped config behind."""

from __future__ import annotations

import pytest

from conftest import REPO, parse_dry_run, snakemake

SUITES = REPO / "config" / "suites.yaml"
CONFIGS = sorted(p for p in (REPO / "config").glob("*.yaml") if p != SUITES)


def test_every_config_is_listed():
    assert {p.name for p in CONFIGS} >= {"config.yaml", "test.yaml", "greg.yaml", "backbones.yaml", "ablations.yaml",
                                         "fashion.yaml", "openset.yaml", "cifar10.yaml", "imagenet.yaml", "gaia.yaml", "baselines.yaml"}


@pytest.mark.parametrize("name, suites", [("baselines", ["standard", "baselines"]),
                                          ("gaia", ["standard", "baselines", "gaia"])])
def test_the_suite_configs_are_the_default_plus_their_suites(name, suites):
    """config/baselines.yaml and config/gaia.yaml are copies of the default config but for their
    detectors (a config replaces the embedded one whole), so a change to the default must reach them;
    the default itself runs the standard suite."""
    import yaml

    default, other = (yaml.safe_load((REPO / "config" / f"{n}.yaml").read_text()) for n in ("config", name))
    assert {k: v for k, v in other.items() if k != "detectors"} == {k: v for k, v in default.items() if k != "detectors"}
    assert default["detectors"] == {"suite": "standard"} and other["detectors"] == {"suite": suites}


@pytest.mark.slow
@pytest.mark.parametrize("config", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_plans(config, tmp_path, monkeypatch):
    monkeypatch.setenv("GROOD_DATA_ROOT", str(tmp_path / "data"))  # cifar10 / imagenet: their data folder
    proc = snakemake(tmp_path / "run", "--dry-run", configfile=config, timeout=600)
    jobs = parse_dry_run(proc.stdout)
    rules = {rule for rule, _ in jobs}
    assert {"train", "features", "score", "evaluate", "figures_summary", "all"} <= rules, sorted(rules)
