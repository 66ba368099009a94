"""Machines: the fingerprint, the machine key in the experiment's identity, verdicts only
against the same machine, digests only where bits must match, and old files upgraded."""

import copy
import dataclasses
import json
import re
import subprocess
from types import SimpleNamespace

import pytest
import torch
from typer.testing import CliRunner

from bench.cli import app
from bench.config.devices import KINDS
from bench.config.settings import RunConfig, Tolerances
from bench.judge.compare import compare
from bench.judge.stats import Verdict
from bench.measure import environment
from bench.measure.environment import (
    accelerator_fingerprint,
    cpu_fingerprint,
    library_versions,
    nvidia_smi,
    onednn_isa_in,
)
from bench.storage.baselines import (
    BASELINE_SCHEMA_VERSION,
    baseline_from_dict,
    load_baselines,
    make_baseline,
)
from bench.storage.experiment import hardware_of, identity, identity_of
from bench.storage.files import load_result, save_result
from bench.storage.results import SCHEMA_VERSION, RunResult
from tests.conftest import COMMITTED_RESULT, REPO_ROOT, edited, renumbered

runner = CliRunner(env={"COLUMNS": "250"})

AVX2_EPYC = """processor\t: 0
vendor_id\t: AuthenticAMD
cpu family\t: 25
model\t\t: 1
model name\t: AMD EPYC
stepping\t: 1
microcode\t: 0xa0011d1
flags\t\t: fpu sse4_1 sse4_2 fma avx avx2 bmi2

processor\t: 1
vendor_id\t: AuthenticAMD
"""
CUDA_RECIPE = KINDS["cuda"].fingerprint
MEMINFO = "MemTotal:       8053064 kB\nMemFree:  1 kB\n"


def on_machine(result: RunResult, cpuinfo: str, isa: str) -> RunResult:
    """`result` as if made on the machine of `cpuinfo`, ATen and oneDNN choosing `isa`."""
    moved = copy.deepcopy(result)
    moved.environment = dataclasses.replace(
        moved.environment,
        cpu=cpu_fingerprint(cpuinfo, MEMINFO, {"L2": "512K"}),
        math=dataclasses.replace(moved.environment.math, capability=isa, onednn_isa=f"Intel {isa}"),
    )
    return moved


def test_the_fingerprint_reads_vendor_family_model_stepping_flags_and_memory():
    cpu = cpu_fingerprint(AVX2_EPYC, MEMINFO, {"L2": "512K"})
    assert (cpu.vendor, cpu.family, cpu.model, cpu.stepping) == ("AuthenticAMD", 25, 1, 1)
    assert cpu.microcode == "0xa0011d1" and cpu.flags == ["avx2", "fma"]
    assert cpu.memory_mb == pytest.approx(8053064 / 1024) and cpu.caches == {"L2": "512K"}


def test_this_machines_fingerprint_names_its_arithmetic_path():
    found = environment.fingerprint(torch.device("cpu"))
    assert found.math.capability == torch.backends.cpu.get_cpu_capability()
    assert found.math.torch_git == torch.version.git_version
    assert hardware_of(found).isa == found.math.capability
    if torch.backends.mkldnn.is_available():
        assert found.math.onednn_isa  # read from oneDNN's verbose header, once a process
        assert environment.fingerprint(torch.device("cpu")).math.onednn_isa == found.math.onednn_isa
    assert found.math.portable is False


def test_library_versions_and_onednn_isa_are_parsed():
    config = (
        "  - Intel(R) oneAPI Math Kernel Library Version 2024.2-Product Build 20240605\n"
        "  - Intel(R) MKL-DNN v3.13.3 (Git Hash b38f97eb)\n"
    )
    assert library_versions(config) == ("2024.2-Product", "3.13.3")
    assert library_versions("no MKL here") == (None, None)
    verbose = (
        "onednn_verbose,v1,info,cpu,runtime:OpenMP,nthr:1\n"
        "onednn_verbose,v1,info,cpu,isa:Intel SSE4.1\n"
    )
    assert onednn_isa_in(verbose) == "Intel SSE4.1"


def test_the_gpu_fingerprint_from_torch_and_nvidia_smi(monkeypatch):
    answered = subprocess.CompletedProcess([], 0, stdout="580.65.06, 1980, 700.00\n", stderr="")
    calls = []
    monkeypatch.setattr(subprocess, "run", lambda command, **_: calls.append(command) or answered)
    smi = nvidia_smi("GPU-1234")
    assert calls[0][-2:] == ["-i", "GPU-1234"]
    properties = SimpleNamespace(uuid="1234", major=9, minor=0, total_memory=141 * 2**30)
    found = accelerator_fingerprint(properties, smi, CUDA_RECIPE)
    assert (found.uuid, found.capability, found.driver) == ("GPU-1234", "9.0", "580.65.06")
    assert (found.max_clock_mhz, found.power_limit_w, found.memory_mb) == (1980, 700, 141 * 1024)


def test_nvidia_smi_unreadable_fields_and_absence_are_unknown(monkeypatch):
    unsupported = subprocess.CompletedProcess([], 0, stdout="580.65.06, [N/A], [N/A]\n")
    monkeypatch.setattr(subprocess, "run", lambda *_, **__: unsupported)
    assert nvidia_smi(None) == {"driver_version": "580.65.06"}

    def missing(*_, **__):
        raise FileNotFoundError("nvidia-smi")

    monkeypatch.setattr(subprocess, "run", missing)
    assert nvidia_smi(None) == {}
    found = accelerator_fingerprint(SimpleNamespace(major=8, minor=0), {}, CUDA_RECIPE)
    assert found.capability == "8.0"
    assert (found.uuid, found.units, found.memory_mb, found.driver, found.power_limit_w) == (
        (None,) * 5
    )


def test_a_cuda_fingerprint_records_the_accelerator(monkeypatch):
    properties = SimpleNamespace(
        name="NVIDIA H200",
        uuid="ab-cd",
        major=9,
        minor=0,
        total_memory=2**30,
        multi_processor_count=132,
    )
    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda _: properties)
    monkeypatch.setattr(environment, "nvidia_smi", lambda uuid: {"driver_version": uuid})
    found = environment.fingerprint(torch.device("cuda", 0))
    assert found.accelerator is not None
    assert (found.device_name, found.accelerator.units, found.accelerator.driver) == (
        "NVIDIA H200",
        132,
        "GPU-ab-cd",
    )
    machine = dict(identity(RunConfig(device="cuda:0"), hardware_of(found), "data").machine)
    assert machine == {"device": "NVIDIA H200", "accelerator": "sm 9.0, 132 SMs"}


def test_another_cpu_gets_no_baseline_for_this_machine_never_a_verdict(template, tmp_path):
    """The newcomer: a run on an AVX2-only EPYC against this machine's baseline — slower and
    with other weights, yet neither 'slower' nor 'different weights'."""
    baseline = make_baseline([template])
    newcomer = on_machine(template, AVX2_EPYC, "AVX2")
    newcomer.summary.steady_train_images_per_s /= 3
    newcomer.weights_sha256 = "0" * 64
    comparison = compare([(None, newcomer)], [baseline], Tolerances())
    (row,) = comparison.rows
    assert row.verdicts == [Verdict.NO_MACHINE_BASELINE] and row.throughput_delta_pct is None
    assert f"isa 'AVX2'≠{template.environment.math.capability!r}" in row.why_no_baseline
    assert "model 1 stepping 1'≠" in row.why_no_baseline
    assert "mnist-bench run -d cpu --loader tensor" in row.why_no_baseline
    assert not comparison.regressions and comparison.why_cannot_judge
    folder = tmp_path / "runs"
    save_result(newcomer, folder)
    (tmp_path / "baselines").mkdir()
    (tmp_path / "baselines" / "b.json").write_text(json.dumps(dataclasses.asdict(baseline)))
    gate = runner.invoke(
        app,
        ["compare", str(folder), "--baseline", str(tmp_path / "baselines"), "--fail-on-regression"],
    )
    assert gate.exit_code == 2, gate.output
    assert Verdict.NO_MACHINE_BASELINE in gate.output and "slower" not in gate.output


def test_baselines_of_before_the_fingerprint_are_of_an_unknown_machine_and_judge_no_run(template):
    """The baselines committed until schema 2 (kept in tests/data): loaded (upgraded), but
    never a speed or digest verdict; a run of their experiment here is told to record its
    own."""
    baselines, problems = load_baselines(REPO_ROOT / "tests" / "data" / "baselines-v2")
    assert problems == [] and len(baselines) >= 2
    for baseline in baselines:
        assert baseline.hardware.cpu is None and not baseline.identity.machine_known
        run = edited(
            template,
            {
                "config": dataclasses.replace(baseline.config, seed=0),
                "epochs": renumbered(template.epochs, baseline.config.epochs),
                "environment.device_name": baseline.hardware.device_name,
                "environment.cpu_name": baseline.hardware.device_name,
                "environment.threads": baseline.hardware.threads,
                "data.sha256": baseline.data_sha256,
                "summary.estimator": baseline.estimator,
                "summary.steady_train_images_per_s": baseline.runs[0].steady_train_images_per_s / 3,
            },
        )
        comparison = compare([(None, run)], baselines, Tolerances())
        (row,) = comparison.rows
        assert row.verdicts == [Verdict.NO_MACHINE_BASELINE], row.why_no_baseline
        assert "'unknown'" in row.why_no_baseline and baseline.name in row.why_no_baseline
        assert not comparison.regressions and not comparison.verdicts


def test_an_unknown_machine_matches_not_even_another_unknown_one(template):
    baseline = make_baseline([template])
    unknown = dataclasses.replace(baseline.hardware, cpu=None, isa=None)
    old = copy.deepcopy(template)
    old.environment.cpu = old.environment.math = None
    baseline = dataclasses.replace(baseline, hardware=unknown)
    (row,) = compare([(None, old)], [baseline], Tolerances()).rows
    assert row.verdicts == [Verdict.NO_MACHINE_BASELINE]
    assert "machine unknown" in row.why_no_baseline


def test_digests_are_judged_only_where_bits_must_match(template):
    baseline = make_baseline([template])
    other_weights = copy.deepcopy(template)
    other_weights.weights_sha256 = "f" * 64
    (row,) = compare([(None, other_weights)], [baseline], Tolerances()).rows
    assert Verdict.DIFFERENT_WEIGHTS in row.verdicts
    # The same machine, but MKL asked for another reproducibility branch: not bitwise comparable.
    knob = copy.deepcopy(other_weights)
    knob.environment.math.knobs |= {"MKL_CBWR": "COMPATIBLE"}
    (row,) = compare([(None, knob)], [baseline], Tolerances()).rows
    assert Verdict.DIFFERENT_WEIGHTS not in row.verdicts and row.verdicts[0] == "ok"
    assert row.verdict_text == "ok, not bitwise comparable: MKL_CBWR 'COMPATIBLE'≠None"
    newer_torch = copy.deepcopy(other_weights)
    newer_torch.environment.torch = "2.16.0"
    (row,) = compare([(None, newer_torch)], [baseline], Tolerances()).rows
    assert row.verdicts[-1] == Verdict.NOT_BITWISE
    assert row.verdict_text.split(", ", 1)[1].startswith("not bitwise comparable: torch '2.16.0 ")


# Upgrades, one test per step.


def test_result_schema_1_upgrades_with_its_arithmetic_unknown():
    document = json.loads(COMMITTED_RESULT.with_name("cpu-tiny-result-v2.json").read_text())
    del document["arithmetic"]
    del document["summary"]["peak_host_rss_scope"]
    document["schema_version"] = 1
    result = RunResult.from_dict(document)
    assert result.schema_version == SCHEMA_VERSION and result.arithmetic.determinism == "unknown"
    assert result.arithmetic.precision == "fp32" and result.arithmetic.bitwise_reruns is False
    assert result.summary.peak_host_rss_scope == "process"
    assert not identity_of(result).machine_known


def test_result_schema_2_upgrades_to_an_unknown_machine_not_sampled():
    result = load_result(COMMITTED_RESULT.with_name("cpu-tiny-result-v2.json"))
    assert result.schema_version == SCHEMA_VERSION and result.disturbance is None
    assert result.environment.cpu is None and result.environment.math is None
    assert not identity_of(result).machine_known


def test_result_schema_3_upgrades_its_gpu_fields_to_the_accelerator():
    document = json.loads((REPO_ROOT / "tests" / "data" / "cuda-h200-result.json").read_text())
    assert document["schema_version"] == 3
    gpu = document["environment"]["gpu"]
    result = RunResult.from_dict(document)
    found = result.environment.accelerator
    assert result.schema_version == SCHEMA_VERSION and found is not None
    assert (found.capability, found.memory_mb, found.power_limit_w) == (
        gpu["compute_capability"],
        gpu["memory_mb"],
        gpu["power_limit_w"],
    )
    assert (found.units, found.driver) == (
        document["environment"]["gpu_sm_count"],
        document["environment"]["gpu_driver"],
    )
    assert dict(identity_of(result).machine)["accelerator"] == "sm 9.0, 132 SMs"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"gpu": "H200"}, "environment.gpu: should be an object or null"),
        ({"gpu": [1]}, "environment.gpu: should be an object or null"),
        ({"accelerator": None}, "schema 3 has `gpu`, not `accelerator`"),
        ({"gpu": {"compute_capability": "9.0", "sms": 132}}, "unknown field 'sms'"),
    ],
)
def test_a_schema_3_gpu_that_is_not_one_is_refused_by_its_old_name(change, reason):
    document = json.loads((REPO_ROOT / "tests" / "data" / "cuda-h200-result.json").read_text())
    document["environment"].update(change)
    with pytest.raises(ValueError, match=re.escape(reason)):
        RunResult.from_dict(document)


def test_a_schema_3_baseline_with_both_keys_is_refused():
    path = next((REPO_ROOT / "results" / "baselines").glob("cuda-nvidia-h200-*.json"))
    document = json.loads(path.read_text())
    document["hardware"]["accelerator"] = "sm 9.0, 132 SMs"
    with pytest.raises(ValueError, match="hardware: schema 3 has `gpu`, not `accelerator`"):
        baseline_from_dict(document)


def test_baseline_schema_1_upgrades_with_its_data_unknown():
    path = next((REPO_ROOT / "tests" / "data" / "baselines-v2").glob("*.json"))
    document = json.loads(path.read_text())
    del document["data_sha256"]
    document["baseline_schema_version"] = 1
    baseline = baseline_from_dict(document)
    assert (
        baseline.data_sha256 == "unknown"
        and baseline.baseline_schema_version == BASELINE_SCHEMA_VERSION
    )


def test_baseline_schema_3_upgrades_its_gpu_key_to_the_accelerator():
    path = next((REPO_ROOT / "results" / "baselines").glob("cuda-nvidia-h200-*.json"))
    document = json.loads(path.read_text())
    assert document["baseline_schema_version"] == 3
    baseline = baseline_from_dict(document)
    assert baseline.hardware.accelerator == document["hardware"]["gpu"] == "sm 9.0, 132 SMs"
    assert baseline.bitwise_path and baseline.bitwise_path["accelerator"] == "sm 9.0, 132 SMs"


def test_baseline_schema_2_upgrades_to_an_unknown_machine():
    path = next((REPO_ROOT / "tests" / "data" / "baselines-v2").glob("*.json"))
    assert json.loads(path.read_text())["baseline_schema_version"] == 2
    baseline = baseline_from_dict(json.loads(path.read_text()))
    assert (baseline.hardware.cpu, baseline.hardware.isa, baseline.bitwise_path) == (
        None,
        None,
        None,
    )


@pytest.mark.parametrize("version", [0, SCHEMA_VERSION + 1, str(SCHEMA_VERSION), None])
def test_a_version_this_tool_does_not_know_is_refused(version):
    document = json.loads(COMMITTED_RESULT.read_text()) | {"schema_version": version}
    with pytest.raises(
        ValueError, match=rf"schema version .*this tool reads 1 to {SCHEMA_VERSION}"
    ):
        RunResult.from_dict(document)


def test_runs_of_an_unknown_machine_cannot_become_a_baseline():
    old = load_result(COMMITTED_RESULT.with_name("cpu-tiny-result-v2.json"))
    with pytest.raises(ValueError, match="does not know its machine"):
        make_baseline([old])
