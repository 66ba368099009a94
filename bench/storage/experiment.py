"""One definition of "the same experiment", apart from how and where a run carried it out.

- experiment: what the network learns — model, data, epochs, batch, lr, precision,
  determinism, steps per epoch, world size and scaling. The seed is matched per run.
- implementation: how the run computed it — loader, memory format, Adam implementation,
  compile, CUDA graphs, evaluation batch and (on the CPU) threads.
- machine: the device's name and the fingerprint's machine key (CPU runs: vendor, family,
  model, stepping and ATen's instruction set; accelerator runs: its capability and compute
  units, for CUDA the compute capability and SM count). A
  file older than the fingerprint has an unknown machine, which matches no other.

Runs of one experiment are comparable across devices and implementations (speed-up, accuracy,
weight distance); a baseline, and a group of seeds in `compare`, is one experiment × one
implementation × one machine. Baseline keys, group labels and default names all come from here.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from pydantic.dataclasses import dataclass as pydantic_dataclass

from bench.config.devices import KINDS, machine_key_of
from bench.config.settings import STRICT_SCHEMA, Count, RunConfig

if TYPE_CHECKING:  # results are read here, never built
    from bench.storage.results import Environment, RunResult

EXPERIMENT_FIELDS = (
    "model",
    "epochs",
    "batch_size",
    "lr",
    "precision",
    "deterministic",
    "max_steps_per_epoch",
    "world_size",
    "per_rank_batch",
)
IMPLEMENTATION_FIELDS = (
    "loader",
    "channels_last",
    "optimizer",
    "compile",
    "cuda_graphs",
    "eval_batch_size",
)
# Neither: the device is the machine's, the seed is matched run by run, and the time-to-target
# threshold only changes how a figure is read.
_OTHER_FIELDS = {"device", "seed", "target_acc_pct", "threads"}
assert {f.name for f in fields(RunConfig)} == {
    *EXPERIMENT_FIELDS,
    *IMPLEMENTATION_FIELDS,
    *_OTHER_FIELDS,
}, "every RunConfig field belongs to the experiment, the implementation or neither"

Key = tuple[tuple[str, Any], ...]


UNKNOWN_MACHINE = "unknown"  # a machine part an older file does not record


@pydantic_dataclass(config=STRICT_SCHEMA)
class Hardware:
    device_type: str
    device_name: str
    cpu_name: str
    threads: Count  # torch's intra-op threads as the run found them
    # The machine key beyond the names, which cloud machines blur; None: unknown (an older file).
    cpu: str | None = None  # e.g. "AuthenticAMD family 25 model 17 stepping 1"
    isa: str | None = None  # ATen's CPU capability, e.g. AVX512
    accelerator: str | None = None  # its capability and compute units, e.g. "sm 9.0, 132 SMs"


def accelerator_key(environment: Environment) -> str | None:
    """The accelerator's part of the machine key in its kind's words ("sm 9.0, 132 SMs");
    None where the fingerprint lacks it (an older file, a kind the table lacks)."""
    kind, found = KINDS.get(environment.device_type), environment.accelerator
    recipe = kind.fingerprint if kind is not None else None
    if recipe is None or found is None or found.capability is None or not found.units:
        return None
    return f"{recipe.capability_label} {found.capability}, {found.units} {recipe.units_label}"


def hardware_of(environment: Environment) -> Hardware:
    cpu, math = environment.cpu, environment.math
    return Hardware(
        device_type=environment.device_type,
        device_name=environment.device_name,
        cpu_name=environment.cpu_name,
        threads=environment.threads,
        cpu=cpu.label if cpu is not None else None,
        isa=math.capability if math is not None else None,
        accelerator=accelerator_key(environment),
    )


def differing(ours: Mapping[str, Any], theirs: Mapping[str, Any]) -> list[str]:
    """'name ours≠theirs' for every name whose value differs (None where one lacks it)."""
    return [
        f"{name} {ours.get(name)!r}≠{theirs.get(name)!r}"
        for name in dict.fromkeys([*ours, *theirs])
        if ours.get(name) != theirs.get(name)
    ]


@dataclass(frozen=True)
class Identity:
    experiment: Key
    implementation: Key
    machine: Key

    def differences(self, other: Identity) -> list[str]:
        """'name ours≠theirs' for every part that differs."""
        return differing(
            dict(self.experiment + self.implementation + self.machine),
            dict(other.experiment + other.implementation + other.machine),
        )

    @property
    def work(self) -> Identity:
        """The experiment × implementation alone, on no machine in particular."""
        return Identity(self.experiment, self.implementation, ())

    @property
    def machine_known(self) -> bool:
        """Whether every part of the machine key was recorded: an unknown machine matches none,
        not even another unknown one."""
        return all(value != UNKNOWN_MACHINE for _, value in self.machine)


def identity(config: RunConfig, hardware: Hardware, data_sha256: str) -> Identity:
    """The machine part is the device's name and, from the fingerprint, the CPU's vendor,
    family, model and stepping and ATen's instruction set (CPU runs) or the accelerator's
    capability and compute units (CUDA: compute capability and SM count)."""
    experiment = tuple((name, getattr(config, name)) for name in EXPERIMENT_FIELDS)
    implementation = tuple((name, getattr(config, name)) for name in IMPLEMENTATION_FIELDS)
    machine: Key = (("device", hardware.device_name),)
    kind = KINDS.get(hardware.device_type)
    if kind is not None and kind.host_threads:
        implementation += (("threads", hardware.threads),)
    if machine_key_of(hardware.device_type) == "host-cpu":
        machine += (
            ("cpu", hardware.cpu or UNKNOWN_MACHINE),
            ("isa", hardware.isa or UNKNOWN_MACHINE),
        )
    elif machine_key_of(hardware.device_type) == "accelerator":
        machine += (("accelerator", hardware.accelerator or UNKNOWN_MACHINE),)
    return Identity(experiment + (("data", data_sha256),), implementation, machine)


def bitwise_path(result: RunResult) -> dict[str, str]:
    """What must be equal for two runs of one seed to give bitwise the same weights: the torch
    build, the device, the arithmetic path (ATen and oneDNN instruction sets, the knobs such
    as MKL_CBWR, the precision), the threads and strict determinism."""
    env, arithmetic, math = result.environment, result.arithmetic, result.environment.math
    path = {
        "torch": f"{env.torch} {math.torch_git if math else UNKNOWN_MACHINE}",
        "device": env.device_name,
        "isa": (math.capability if math else None) or UNKNOWN_MACHINE,
        "oneDNN isa": (math.onednn_isa if math else None) or UNKNOWN_MACHINE,
        "precision": f"{arithmetic.precision} (oneDNN {arithmetic.mkldnn_matmul_fp32}/"
        f"{arithmetic.mkldnn_conv_fp32}, cuBLAS {arithmetic.cuda_matmul_fp32}, cuDNN "
        f"{arithmetic.cudnn_conv_fp32})",
        "threads": str(env.threads),
        "determinism": arithmetic.determinism,
    }
    if machine_key_of(env.device_type) == "accelerator":
        path["accelerator"] = hardware_of(env).accelerator or UNKNOWN_MACHINE
    knobs = math.knobs if math else {}
    return path | {name: value for name, value in sorted(knobs.items())}


def identity_of(result: RunResult) -> Identity:
    return identity(result.config, hardware_of(result.environment), result.data.sha256)


def as_single_process(ident: Identity) -> Identity:
    """`ident` in one process with its threads left open: what a data-parallel run is measured
    against (torchrun gives each CPU rank one thread; the fair reference uses the machine)."""
    single = {"world_size": 1, "per_rank_batch": False}
    return Identity(
        tuple((name, single.get(name, value)) for name, value in ident.experiment),
        tuple((name, value) for name, value in ident.implementation if name != "threads"),
        ident.machine,
    )


def experiment_label(result: RunResult) -> str:
    c = result.config
    parts = [f"{c.model} {c.precision} e{c.epochs} b{c.batch_size} lr{c.lr:g}"]
    if c.max_steps_per_epoch:
        parts.append(f"max{c.max_steps_per_epoch} steps")
    if not c.deterministic:
        parts.append("nondeterministic")
    if c.world_size > 1:
        parts.append(f"{c.world_size} ranks {'weak' if c.per_rank_batch else 'strong'}")
    if not result.data.canonical:
        parts.append(f"data {result.data.sha256[:8]}")
    return " ".join(parts)


def implementation_label(result: RunResult) -> str:
    c = result.config
    flags = (
        ("channels-last", c.channels_last),
        ("compile", c.compile),
        ("cuda-graphs", c.cuda_graphs),
    )
    parts = [c.loader, str(c.optimizer), *(name for name, on in flags if on)]
    if c.eval_batch_size != RunConfig.eval_batch_size:
        parts.append(f"eval-b{c.eval_batch_size}")
    kind = KINDS.get(result.environment.device_type)
    if kind is not None and kind.host_threads:
        parts.append(f"{result.environment.threads} threads")
    return " ".join(parts)


def slug(text: str) -> str:
    """`text` as a file-name part: lower case, alphanumerics joined by single dashes."""
    dashed = "".join(c if c.isalnum() else "-" for c in text.lower())
    return "-".join(part for part in dashed.split("-") if part)


def machine_slug(environment: Environment) -> str:
    """The machine key (see identity) as a name part: CPU runs, vendor, family, model,
    stepping and ATen's instruction set (amd-f25-m1-s1-avx2); accelerator runs, capability
    and compute units (CUDA: sm-9-0-132-sms); 'unknown-machine' where an older file did not
    record it."""
    hardware = hardware_of(environment)
    cpu, key = environment.cpu, machine_key_of(hardware.device_type)
    if key == "host-cpu" and hardware.cpu and hardware.isa and cpu is not None:
        vendor = {"AuthenticAMD": "amd", "GenuineIntel": "intel"}.get(str(cpu.vendor), cpu.vendor)
        return slug(f"{vendor} f{cpu.family} m{cpu.model} s{cpu.stepping} {hardware.isa}")
    if key == "accelerator" and hardware.accelerator:
        return slug(hardware.accelerator.replace(".", " "))
    return f"{UNKNOWN_MACHINE}-machine" if key in ("host-cpu", "accelerator") else ""


def default_name(result: RunResult) -> str:
    """A baseline name that differs wherever the identity does (seed aside), the machine key
    included, so that baselines of one experiment on two machines sit side by side: e.g.
    cpu-amd-epyc-amd-f25-m1-s1-avx2-tensor-adam-fused-channels-last-2-threads-seed-cnn-fp32-e5-
    b100-lr0-001."""
    env = result.environment
    return slug(
        f"{env.device_type} {env.device_name} {machine_slug(env)} "
        f"{implementation_label(result)} {experiment_label(result)}"
    )
