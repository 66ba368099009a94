"""Disturbance: a run made while other processes load the cores is marked and said to be so."""

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from bench.cli import app
from bench.measure.disturbance import CpuTimes, Reading, other_cpu_cores, own_cpu_s, steal_pct
from bench.show.tables import disturbance_label
from bench.storage.results import disturbance_verdict as verdict

runner = CliRunner(env={"COLUMNS": "250"})


def test_more_runnable_work_than_cores_is_a_disturbance():
    assert verdict(cores=2, threads=2, others=0.1, steal=0.0) == (False, [])
    disturbed, reasons = verdict(cores=2, threads=2, others=0.9, steal=0.0)
    assert disturbed and "0.9 of 2 cores" in reasons[0]
    assert verdict(cores=2, threads=1, others=0.9, steal=None)[0] is False  # room to spare
    disturbed, reasons = verdict(cores=8, threads=1, others=0.0, steal=12.0)
    assert disturbed and "steal" in reasons[0]


def test_other_processes_cpu_time_is_the_machines_less_this_ones():
    start = Reading(at_s=0.0, own_cpu_s=1.0, cpu=CpuTimes(10.0, 0.0, 100.0), load_1m=0.5)
    end = Reading(at_s=2.0, own_cpu_s=3.0, cpu=CpuTimes(15.0, 1.0, 104.0), load_1m=2.0)
    assert other_cpu_cores(start, end) == pytest.approx(1.5)  # (5 − 2) s over 2 s
    assert steal_pct(start, end) == pytest.approx(25.0)
    unreadable = Reading(at_s=2.0, own_cpu_s=3.0, cpu=None, load_1m=None)
    assert other_cpu_cores(start, unreadable) == 0.0 and steal_pct(start, unreadable) is None


def test_cpu_times_parse_proc_stat():
    times = CpuTimes.parse("cpu  100 0 50 800 10 5 5 30 0 0\ncpu0 1 2 3\nprocs_running 3\n")
    ticks = os.sysconf("SC_CLK_TCK")
    assert times is not None and times.busy_s == pytest.approx(160 / ticks)
    assert times.steal_s == pytest.approx(30 / ticks)
    assert CpuTimes.parse("nothing") is None


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="samples /proc (Linux)")
def test_a_run_beside_busy_processes_is_marked_disturbed(tiny_mnist, tmp_path):
    cores = os.cpu_count() or 1
    # Other load, not the run's: orphans the shell leaves behind (a run's own children count
    # as its own work).
    loop = f"{shlex.quote(sys.executable)} -c 'while True: pass' >/dev/null 2>&1 & echo $!"
    busy = [int(subprocess.check_output(["sh", "-c", loop], text=True)) for _ in range(cores)]
    try:
        time.sleep(0.5)  # let them take the cores before the run looks
        outcome = runner.invoke(
            app,
            ["run", "-d", "cpu", "--epochs", "2", "--max-steps", "30", "--threads", str(cores)]
            + ["--data-dir", str(tiny_mnist), "--out", str(tmp_path), "--no-download"],
        )
    finally:
        for pid in busy:
            os.kill(pid, signal.SIGKILL)
    assert outcome.exit_code == 0, outcome.output
    assert "warning: the machine is busy" in outcome.output  # before the run
    assert "disturbed: other processes used" in outcome.output  # after it
    (path,) = tmp_path.glob("*.json")
    document = json.loads(path.read_text())
    assert document["disturbance"]["disturbed"] is True
    assert document["disturbance"]["other_cpu_cores"] > 0.25
    assert document["disturbance"]["samples"] >= 1


def test_a_result_says_whether_it_was_sampled(template):
    assert disturbance_label(template).startswith(("quiet", "DISTURBED"))
    template.disturbance = None
    assert disturbance_label(template) == "not sampled"


BURN = "import os\nwhile sum(os.times()[:2]) < 0.4: pass\n"
# A child that burns CPU itself, or through a grandchild it waits for (a worker pool's
# worker); then it says so and waits to be ended.
CHILDREN = {
    "burns": BURN,
    "reaps a grandchild that burns": (
        f"import subprocess, sys\nsubprocess.run([sys.executable, '-c', {BURN!r}])\n"
    ),
}


@pytest.mark.slow  # a fresh process
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads children from /proc")
@pytest.mark.parametrize("child", CHILDREN)
def test_the_runs_own_children_are_its_own_work_not_other_load(child):
    """A process the run started (a compile's worker) that burns CPU counts as the run's own,
    alive or ended: on the H200, inductor's workers were counted as 1.36 cores of other load."""
    script = CHILDREN[child] + "print('burnt', flush=True)\nimport time; time.sleep(60)\n"
    before = own_cpu_s()
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None and process.stdout.readline() == "burnt\n"
        alive = own_cpu_s()
    finally:
        process.kill()
        process.wait()
    assert alive - before >= 0.3, (before, alive)
    assert own_cpu_s() - before >= 0.3  # ended and waited for
