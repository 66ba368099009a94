"""Peak host memory over a stretch of work (training), not over the whole process.

On Linux the kernel's high-water mark (VmHWM) can be reset by writing 5 to
/proc/self/clear_refs, so the peak covers training alone: not the start-up, the data
decoding or anything before. Elsewhere the figure falls back to the process's lifetime peak
(getrusage), and the result says which it is.
"""

from __future__ import annotations

import resource
import sys
from pathlib import Path
from typing import Final, Literal

Scope = Literal["training", "process"]
TRAINING: Final = "training"
PROCESS: Final = "process"


def reset_peak_rss() -> Scope:
    """Start a new peak; return the scope the next peak_rss_mb() covers."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return PROCESS
    return TRAINING


def peak_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    max_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return max_rss / 2**20 if sys.platform == "darwin" else max_rss / 1024  # bytes vs KiB
