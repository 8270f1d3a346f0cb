"""Workflow runs through a real SLURM cluster (the one `tests/slurm/start.sh` starts).

Skipped only when SLURM is not running here: no `sinfo`, or no idle node. Start it with

    bash tests/slurm/start.sh      # as root; CI's .ci/run does this before pytest
    bash tests/slurm/stop.sh

The jobs are submitted with the repository's own `profiles/slurm` profile; the only overrides
are those the local one-node cluster needs (partition/account via the profile's environment
variables, fewer jobs, faster status polling, no retries).
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]  # the repository
PROFILE = REPO / "profiles" / "slurm"

pytestmark = [pytest.mark.slurm, pytest.mark.slow]  # needs a running SLURM; starts snakemake


@functools.lru_cache(maxsize=None)
def _slurm_skip_reason() -> str | None:
    """Why the SLURM tests cannot run here (None: they can). Only 'SLURM is not running'."""
    hint = "start it: bash tests/slurm/start.sh"
    if shutil.which("sinfo") is None:
        return f"SLURM is not running here: no `sinfo` on PATH ({hint})"
    try:
        out = subprocess.run(
            ["sinfo", "-h", "-N", "-o", "%T"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"SLURM is not running here: sinfo failed ({e}); {hint}"
    if out.returncode != 0:
        msg = (out.stderr.strip().splitlines() or ["?"])[-1]
        return f"SLURM is not running here: sinfo failed ({msg}); {hint}"
    states = [s.strip().rstrip("*~#$@") for s in out.stdout.split()]
    if not any(s in ("idle", "mixed") for s in states):
        return f"SLURM is not running here: no idle node (node states: {states or 'none'}); {hint}"
    return None


@pytest.fixture
def slurm() -> None:
    """Skip (only) when SLURM is not running here; checked lazily, once per session."""
    reason = _slurm_skip_reason()
    if reason is not None:
        pytest.skip(reason)


@functools.lru_cache(maxsize=None)
def _accounting_enabled() -> bool:
    out = subprocess.run(
        ["scontrol", "show", "config"], capture_output=True, text=True, timeout=30
    )
    m = re.search(r"^AccountingStorageType\s*=\s*(\S+)", out.stdout, re.M)
    return bool(m) and m.group(1) != "accounting_storage/none"


def _env() -> dict[str, str]:
    env = dict(os.environ)
    # jobs inherit this environment (sbatch --export=ALL): make sure they find this Python's
    # snakemake, and the profile's partition/account knobs point at the local test cluster
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.setdefault("GROOD_SLURM_PARTITION", "debug")
    if _accounting_enabled():
        env.setdefault("GROOD_SLURM_ACCOUNT", "ci")
    env.pop("SNAKEMAKE_PROFILE", None)
    return env


def _local_overrides() -> list[str]:
    """What the one-node local cluster needs on top of profiles/slurm."""
    args = [
        "--jobs", "2",
        "--slurm-init-seconds-before-status-checks", "2",
        "--latency-wait", "5",
        "--retries", "0",
    ]
    if not _accounting_enabled():
        args += ["--slurm-status-command", "squeue"]
    return args


def _snakemake(args: list[str], workdir: Path, timeout: int) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", *args]
    print("running:", " ".join(cmd))
    try:
        proc = subprocess.run(
            cmd,
            cwd=workdir,
            env=_env(),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as e:
        _cancel_jobs_of(workdir)
        pytest.fail(f"snakemake did not finish within {timeout}s:\n{e.stdout}\n{e.stderr}")
    log = proc.stdout + proc.stderr
    (workdir / "snakemake-run.log").write_text(log)
    if proc.returncode != 0:
        _cancel_jobs_of(workdir)
        slurm_logs = "\n".join(
            f"--- {p}\n{p.read_text(errors='replace')[-3000:]}"
            for p in sorted((workdir / ".snakemake" / "slurm_logs").rglob("*.log"))
        )
        pytest.fail(
            f"snakemake failed (rc={proc.returncode}):\n{log[-12000:]}\n{slurm_logs[-8000:]}"
        )
    return proc


def _job_ids(log: str) -> list[str]:
    return re.findall(r"SLURM jobid (\d+)", log) or re.findall(r"jobid[ =:]+(\d+)", log)


def _cancel_jobs_of(workdir: Path) -> None:
    log_file = workdir / "snakemake-run.log"
    ids = _job_ids(log_file.read_text()) if log_file.exists() else []
    if ids:
        subprocess.run(["scancel", *ids], capture_output=True, timeout=30)


def _assert_jobs_went_through_slurm(log: str, expected: int) -> list[str]:
    ids = _job_ids(log)
    assert len(set(ids)) >= expected, f"expected >= {expected} SLURM job ids in the log:\n{log}"
    if _accounting_enabled():
        out = subprocess.run(
            ["sacct", "-n", "-X", "-P", "-o", "JobID,State,ExitCode", "-j", ",".join(ids)],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout
        states = dict(line.split("|")[:2] for line in out.splitlines() if line)
        assert set(ids) <= set(states), f"sacct does not know all jobs {ids}:\n{out}"
        assert all(s == "COMPLETED" for s in states.values()), out
    return ids


TINY_SNAKEFILE = textwrap.dedent(
    r'''
    localrules: all

    rule all:
        input: "out/c.txt"

    rule cpu_step:
        output: "out/a.txt"
        shell: 'echo "cpu job=$SLURM_JOB_ID" > {output}'

    rule gpu_step:
        output: "out/b.txt"
        resources: gpu=1
        shell:
            'test -n "$SLURM_JOB_ID"; '
            'test -n "$CUDA_VISIBLE_DEVICES" || {{ echo "CUDA_VISIBLE_DEVICES unset" >&2; exit 3; }}; '
            'echo "gpu job=$SLURM_JOB_ID cuda=$CUDA_VISIBLE_DEVICES" > {output}'

    rule gres_step:
        input: "out/a.txt", "out/b.txt"
        output: "out/c.txt"
        resources: gres="gpu:1"
        shell:
            'test -n "$CUDA_VISIBLE_DEVICES" || {{ echo "CUDA_VISIBLE_DEVICES unset" >&2; exit 3; }}; '
            'cat {input} > {output}; '
            'echo "gres job=$SLURM_JOB_ID cuda=$CUDA_VISIBLE_DEVICES" >> {output}'
    '''
)


def test_tiny_workflow_on_slurm(slurm: None, tmp_path: Path) -> None:
    (tmp_path / "Snakefile").write_text(TINY_SNAKEFILE)
    proc = _snakemake(
        ["--snakefile", str(tmp_path / "Snakefile"), "--directory", str(tmp_path),
         "--profile", str(PROFILE), *_local_overrides()],
        tmp_path,
        timeout=600,
    )
    log = proc.stdout + proc.stderr
    a = (tmp_path / "out/a.txt").read_text()
    b = (tmp_path / "out/b.txt").read_text()
    c = (tmp_path / "out/c.txt").read_text()
    assert re.search(r"cpu job=\d+", a), a
    assert re.search(r"gpu job=\d+ cuda=\S+", b), b
    assert re.search(r"gres job=\d+ cuda=\S+", c), c
    assert c.startswith(a + b)
    ids = _assert_jobs_went_through_slurm(log, expected=3)
    # the job ids written inside the jobs are the ones Snakemake reported
    inside = set(re.findall(r"job=(\d+)", c))
    assert inside <= set(ids), (inside, ids)


def test_grood_tiny_config_on_slurm(slurm: None, tmp_path: Path) -> None:
    config = REPO / "config" / "test.yaml"
    proc = _snakemake(
        ["--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
         "--configfile", str(config), "--profile", str(PROFILE), *_local_overrides()],
        tmp_path,
        timeout=2400,
    )
    log = proc.stdout + proc.stderr
    metrics = sorted((tmp_path / "results").glob("**/metrics.csv"))
    assert metrics, f"no results/**/metrics.csv under {tmp_path}:\n{log[-5000:]}"
    assert all(m.stat().st_size > 0 for m in metrics), metrics
    ids = _assert_jobs_went_through_slurm(log, expected=1)
    # the profile's job groups: data preparation, the one seed's network and scoring work, tables
    # and figures — three sbatch submissions for the whole DAG; array-only jobs ran in Snakemake
    groups = re.findall(r"slurm_logs/group_(\w+?)_", log)
    assert sorted(set(ids)) == sorted(ids) and len(ids) == 3, (ids, groups)
    assert sorted(groups) == ["data", "report", "seed"], groups
    assert "rule score_local" in log or "localrule score_local" in log
    if _accounting_enabled():
        tres = subprocess.run(["sacct", "-n", "-X", "-P", "-o", "JobID,AllocTRES", "-j", ",".join(ids)],
                              capture_output=True, text=True, timeout=60, check=True).stdout
        gpus = [line for line in tres.splitlines() if "gres/gpu=1" in line]
        assert len(gpus) == 1, tres  # the seed group holds the (fake) GPU its training asks for
