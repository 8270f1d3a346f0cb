"""`device: cuda` where torch sees no GPU (a CPU-only torch, a job without a GPU, CUDA hidden) stops
the job at once, saying why, instead of running on the CPU into its time limit."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from grood.net.device import select_device


def test_cuda_without_a_gpu_stops_with_the_reason(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(RuntimeError, match=r"'cuda' was asked for but torch sees no CUDA GPU "
                                           r"\(CUDA_VISIBLE_DEVICES='', host .*Stopping now"):
        select_device("cuda")
    with pytest.raises(RuntimeError, match="torch sees no CUDA GPU"):
        select_device("cuda:1")
    assert select_device("auto") == torch.device("cpu") and select_device("cpu") == torch.device("cpu")


def test_a_network_stage_stops_before_it_reads_any_data(monkeypatch, tmp_path):
    from grood.stages.features import features_stage

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    np.save(tmp_path / "unread.npy", np.zeros(1))
    with pytest.raises(RuntimeError, match="torch sees no CUDA GPU"):  # the model file does not even exist
        features_stage(tmp_path / "model.pt", tmp_path / "data.npz", "test", False, tmp_path / "f.zarr", device="cuda")
    assert not (tmp_path / "f.zarr").exists()


@pytest.mark.slow
def test_cuda_hidden_from_a_fresh_process():
    code = "from grood.net.device import select_device; select_device('cuda')"
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode != 0
    assert "torch sees no CUDA GPU (CUDA_VISIBLE_DEVICES=''" in proc.stderr and "Stopping now" in proc.stderr
