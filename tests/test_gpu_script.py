"""bench/gpu.py on a machine without a GPU: it stops at once and names what is missing."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: bench/gpu.py would run")
def test_gpu_script_fails_clearly_without_a_gpu(tmp_path):
    proc = subprocess.run([sys.executable, str(ROOT / "bench/gpu.py"), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "needs an NVIDIA GPU" in proc.stderr and "sees no CUDA device" in proc.stderr
    assert not list(tmp_path.iterdir())  # nothing written
