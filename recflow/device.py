"""The one place that picks the torch device."""

from __future__ import annotations

import torch


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` = CUDA when available, else CPU; ``cuda``/``cuda:N``/``cpu`` as asked.

    Asking for CUDA on a machine without it is an error rather than a silent CPU run.
    """
    name = name.strip().lower()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {name!r} requested but CUDA is not available here")
    return torch.device(name)


def describe_device(device: torch.device) -> str:
    """A one-line description for logs: which device, and which GPU."""
    if device.type == "cuda":
        idx = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{idx} ({torch.cuda.get_device_name(idx)})"
    return f"cpu ({torch.get_num_threads()} threads)"
