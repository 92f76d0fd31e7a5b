"""The machine the figures hold for: one line describing it, its SIMD extensions, and its kind of CPU."""

from __future__ import annotations

import os
import platform

from edgesbert.runtime.cpu import this_cpu


def machine() -> str:
    """One line describing this machine."""
    return f"{this_cpu().name}, {os.cpu_count()} cores, Python {platform.python_version()}"


def cpu_flags() -> str:
    """Which of the SIMD extensions that decide int8 and fp16 speed this CPU has."""
    flags = this_cpu().flags
    wanted = ["avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "amx_int8"]
    return ", ".join(f"{f} {'yes' if f in flags else 'no'}" for f in wanted)


def cpu_kind() -> str:
    """A short name for the class of CPU the figures hold for: its maker and its widest int8 instructions.

    Results that depend on it are written per kind, side by side (``suite-amd-avx2.md``,
    ``suite-intel-avx512-vnni.md``): Intel's and AMD's cores with the same instructions run them at
    different speeds.
    """
    cpu = this_cpu()
    maker = next((m.lower() + "-" for m in ("Intel", "AMD") if m in cpu.name), "")
    for flag, kind in [("amx_int8", "amx"), ("avx512_vnni", "avx512-vnni"), ("avx512f", "avx512"),
                       ("avx2", "avx2"), ("asimddp", "arm64-dotprod"), ("asimd", "arm64")]:  # fmt: skip
        if flag in cpu.flags:
            return maker + kind
    return maker + "generic"
