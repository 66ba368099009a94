"""What else the machine did while a run trained, sampled from /proc (as pyperf warns of an
unstable system): other processes' CPU time, runnable tasks, steal time, load, frequency.

Torch-free, so that `run` can look at the machine before it loads torch. A run is disturbed
when the threads it asked for plus the other processes' CPU use exceed the cores, or when the
hypervisor took a noticeable share of the CPU (steal).
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from bench.measure.processes import descendants
from bench.storage.results import SLACK_CORES, Disturbance, disturbance_verdict

PROC_STAT, LOADAVG, CPUINFO = Path("/proc/stat"), Path("/proc/loadavg"), Path("/proc/cpuinfo")
GOVERNOR = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")
SAMPLE_INTERVAL_S = 0.5
TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


@dataclass
class CpuTimes:
    """/proc/stat's first line, in seconds since boot, all CPUs together."""

    busy_s: float  # user, nice, system, irq, softirq (guest time is inside user)
    steal_s: float
    total_s: float

    @classmethod
    def parse(cls, stat: str) -> CpuTimes | None:
        for line in stat.splitlines():
            fields = line.split()
            if fields and fields[0] == "cpu" and len(fields) >= 9:
                user, nice, system, idle, iowait, irq, softirq, steal = map(int, fields[1:9])
                busy = user + nice + system + irq + softirq
                total = busy + idle + iowait + steal
                return cls(busy / TICKS_PER_S, steal / TICKS_PER_S, total / TICKS_PER_S)
        return None


def procs_running(stat: str) -> int | None:
    """Runnable tasks now (this process's running threads included)."""
    for line in stat.splitlines():
        if line.startswith("procs_running "):
            return int(line.split()[1])
    return None


def load_1m(loadavg: str) -> float | None:
    fields = loadavg.split()
    return float(fields[0]) if fields else None


def cpu_mhz(cpuinfo: str) -> list[float]:
    return [
        float(line.partition(":")[2]) for line in cpuinfo.splitlines() if line.startswith("cpu MHz")
    ]


def descendants_cpu_s(pid: int) -> float:
    """CPU seconds of the live processes under `pid` and of the children they have waited
    for, from /proc (utime, stime, cutime, cstime): a worker that reaps its own child keeps
    that child's time."""
    total = 0.0
    for child in descendants(pid):
        fields = _read(Path(f"/proc/{child}/stat")).rpartition(")")[2].split()
        if len(fields) > 14:  # fields 14 to 17 of stat, counted after the name's ")"
            total += sum(int(field) for field in fields[11:15]) / TICKS_PER_S
    return total


def own_cpu_s() -> float:
    """The CPU time of this process (every thread's) and of the processes it started: a
    compile's workers or a loader's are the run's own work, not other load. Those that ended
    count through os.times() once waited for, the live ones through /proc."""
    times = os.times()
    ended = times.children_user + times.children_system
    return times.user + times.system + ended + descendants_cpu_s(os.getpid())


@dataclass
class Reading:
    """The counters at one moment: what a span's figures are differences of."""

    at_s: float
    own_cpu_s: float
    cpu: CpuTimes | None
    load_1m: float | None

    @classmethod
    def now(cls) -> Reading:
        return cls(
            time.monotonic(), own_cpu_s(), CpuTimes.parse(_read(PROC_STAT)), load_1m(_read(LOADAVG))
        )


def other_cpu_cores(start: Reading, end: Reading) -> float:
    """Other processes' CPU time between two readings ÷ the wall time: in cores."""
    if start.cpu is None or end.cpu is None or end.at_s <= start.at_s:
        return 0.0
    others = (end.cpu.busy_s - start.cpu.busy_s) - (end.own_cpu_s - start.own_cpu_s)
    return max(0.0, others) / (end.at_s - start.at_s)


def steal_pct(start: Reading, end: Reading) -> float | None:
    if start.cpu is None or end.cpu is None or end.cpu.total_s <= start.cpu.total_s:
        return None
    stolen = end.cpu.steal_s - start.cpu.steal_s
    return max(0.0, 100 * stolen / (end.cpu.total_s - start.cpu.total_s))


class Sampler:
    """A light thread that samples the machine every SAMPLE_INTERVAL_S while a run trains."""

    def __init__(self, threads: int, interval_s: float = SAMPLE_INTERVAL_S) -> None:
        self.threads = threads
        self.interval_s = interval_s
        self.runnable: list[int] = []
        self.mhz: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="disturbance", daemon=True)
        self.start = self.end = Reading.now()

    def _sample(self) -> None:
        while True:  # once at the start, then every interval until stopped
            running = procs_running(_read(PROC_STAT))
            if running is not None:
                self.runnable.append(running)
            self.mhz += cpu_mhz(_read(CPUINFO))
            if self._stop.wait(self.interval_s):
                return

    def __enter__(self) -> Sampler:
        self.start = Reading.now()
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        self._thread.join()
        self.end = Reading.now()

    def disturbance(self) -> Disturbance:
        cores = os.cpu_count() or 1
        others = other_cpu_cores(self.start, self.end)
        steal = steal_pct(self.start, self.end)
        disturbed, reasons = disturbance_verdict(cores, self.threads, others, steal)
        return Disturbance(
            cores=cores,
            threads=self.threads,
            wall_s=max(self.end.at_s - self.start.at_s, 1e-9),
            samples=len(self.runnable),
            other_cpu_cores=others,
            steal_pct=steal,
            max_runnable=max(self.runnable, default=None),
            load_1m_before=self.start.load_1m,
            load_1m_after=self.end.load_1m,
            mhz_min=min(self.mhz, default=None),
            mhz_max=max(self.mhz, default=None),
            governor=_read(GOVERNOR).strip() or None,
            disturbed=disturbed,
            reasons=reasons,
        )


def crowding(threads: int | None, look_s: float = 0.3) -> str | None:
    """Before a run: a warning when the threads it will ask for (None: one per core) plus what
    other processes use now exceed the cores; None when the machine has room."""
    cores = os.cpu_count() or 1
    start = Reading.now()
    time.sleep(look_s)
    end = Reading.now()
    others = other_cpu_cores(start, end)
    wanted = threads or cores
    if wanted + others <= cores + SLACK_CORES:
        return None
    load = f", 1-minute load {end.load_1m:.1f}" if end.load_1m is not None else ""
    return (
        f"the machine is busy: other processes use {others:.1f} of {cores} cores{load}, and this "
        f"run asks for {wanted} threads: its timings will be disturbed"
    )
