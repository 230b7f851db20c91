"""Whether bf16 autocast pays off on a device, and a config's ``bf16`` setting resolved against it."""

from __future__ import annotations

import torch


def bf16_supported(device: torch.device | str | None = None) -> bool:
    """bf16 autocast pays off: CUDA with bf16, or a CPU with AVX-512 BF16 / AMX."""
    dev = torch.device(device) if device is not None else torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if dev.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if dev.type == "cpu":
        f = getattr(torch.cpu, "_is_avx512_bf16_supported", None)
        g = getattr(torch.cpu, "_is_amx_tile_supported", None)
        return bool((f and f()) or (g and g()))
    return False


def use_bf16(setting: bool | None, device: torch.device | str | None = None) -> bool:
    """A config's ``bf16`` setting resolved: ``None`` means "where the device supports it"."""
    return bf16_supported(device) if setting is None else bool(setting)
