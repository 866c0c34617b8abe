"""Where CUDA is, asked without importing torch: whether this machine has an NVIDIA driver, and
the one refusal of ``device: cuda`` where training cannot have it (a training job gives it
before importing torch, :func:`actflow.train.resolve_device` after)."""

from __future__ import annotations

import ctypes.util
import os


def driver_present() -> bool:
    """Whether this machine has an NVIDIA driver (its control device, its /proc entry or its
    libcuda): where there is none, torch sees no CUDA device."""
    return (os.path.exists("/dev/nvidiactl") or os.path.exists("/proc/driver/nvidia/version")
            or ctypes.util.find_library("cuda") is not None)


def refusal(seen_by: str, reason: str = "") -> str:
    """The error of ``device: cuda`` that ``seen_by`` cannot serve, naming the fix."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "<unset>")
    return (f"config asks for device: cuda but {seen_by} sees no CUDA device{reason} "
            f"(CUDA_VISIBLE_DEVICES={visible}); set device: auto or cpu, or run on a GPU node "
            "with a CUDA build of torch")
