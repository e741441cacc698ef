"""CPU threads on a shared machine: passive OpenMP waiting by default, a thread cap."""

import os
import subprocess
import sys

import dagster as dg
import pytest
import torch

from assets.resources import TorchDeviceResource

PROBE = "import os, jobs.definitions; print(os.environ['OMP_WAIT_POLICY'])"


def test_importing_the_code_location_sets_passive_waiting_unless_set() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "PASSIVE", out.stderr[-2000:]
    env["OMP_WAIT_POLICY"] = "ACTIVE"  # a user's own choice wins
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True)
    assert out.stdout.strip() == "ACTIVE", out.stderr[-2000:]


def test_cpu_threads_caps_torch_threads() -> None:
    before = torch.get_num_threads()
    try:
        assert TorchDeviceResource(device="cpu", cpu_threads=1).resolve().type == "cpu"
        assert torch.get_num_threads() == 1
        TorchDeviceResource(device="cpu", cpu_threads=0).resolve()
        assert torch.get_num_threads() == 1  # 0 leaves torch's setting alone
        with pytest.raises(dg.Failure, match="cpu_threads"):
            TorchDeviceResource(device="cpu", cpu_threads=-1).resolve()
    finally:
        torch.set_num_threads(before)
