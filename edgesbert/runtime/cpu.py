"""The CPU this runs on: its name and the instruction-set flags that decide int8, bf16 and fp32 speed."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from functools import cache
from pathlib import Path

#: the flags (as /proc/cpuinfo names them) that change which graph variant is fastest
SPEED_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
    "asimd",
    "asimddp",
)


@dataclass(frozen=True)
class Cpu:
    """This machine's processor: model name, architecture, speed flags present, logical cores."""

    name: str
    architecture: str
    flags: tuple[str, ...]
    cores: int

    @property
    def key(self) -> str:
        """What two machines share when the same variant is fastest on both: architecture and flags."""
        return " ".join((self.architecture, *self.flags))

    def describe(self) -> str:
        """One line: name, cores and flags."""
        flags = ", ".join(self.flags) or "no listed flags"
        return f"{self.name} ({self.architecture}, {self.cores} cores; {flags})"


def has_bf16(cpu: Cpu | None = None) -> bool:
    """Whether the CPU (this one by default) does bf16 arithmetic natively: AMX or AVX-512 BF16."""
    return bool({"avx512_bf16", "amx_bf16"} & set((cpu or this_cpu()).flags))


@cache
def this_cpu() -> Cpu:
    """The processor this process runs on (flags from /proc/cpuinfo on Linux; none known elsewhere)."""
    names: list[str] = []
    flags: set[str] = set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name":
                names.append(value.strip())
            elif key.strip() in ("flags", "Features"):
                flags.update(value.split())
    except OSError:
        pass
    name = (names or [platform.processor() or platform.machine() or "unknown CPU"])[0]
    if "avx512vnni" in flags:  # older kernels' spelling
        flags.add("avx512_vnni")
    present = tuple(flag for flag in SPEED_FLAGS if flag in flags)
    return Cpu(name, platform.machine().lower() or "unknown", present, os.cpu_count() or 1)
