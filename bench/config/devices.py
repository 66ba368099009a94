"""What each kind of device is, in one table: how its work is timed and counted, what it
trains in, its kernel policy, its data-parallel backend, its defaults and how its machine is
told apart. Adding a kind is an entry here (and its tests); the code that runs on a device is
generic over `torch.accelerator` and reads its facts from here.

No torch here: storage and judging read the table without loading it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bench.errors import ConfigError

# How a run's within-epoch blocks are timed: the host clock (the step has finished when it
# returns), an event recorded in the device's stream (read after the epoch's closing sync), or
# not at all (an asynchronous device without timing events here).
BlockClock = Literal["host", "event", "none"]
# What tells two machines of this kind apart beyond the device's name: the host CPU (vendor,
# family, model, stepping) and ATen's instruction set, the accelerator (its capability and
# compute units, as the fingerprint reads them from torch's device properties), or the name
# alone.
MachineKey = Literal["host-cpu", "accelerator", "name"]
# The vendor's tool that tells the fingerprint the driver, top clock and power limit.
DriverTool = Literal["nvidia-smi"]


@dataclass(frozen=True)
class Fingerprint:
    """How an accelerator kind is fingerprinted: `torch.<type>.get_device_properties` (name,
    memory, capability as major.minor, compute units as `units_property`), the vendor's tool,
    and the words that name the capability and the units in the machine key."""

    units_property: str  # e.g. CUDA's multi_processor_count
    capability_label: str  # "sm 9.0"
    units_label: str  # "132 SMs"
    driver_tool: DriverTool | None


@dataclass(frozen=True)
class DeviceKind:
    type: str  # torch.device's type
    label: str  # for messages
    queued: bool  # work is queued: waited for with torch.accelerator.synchronize
    block_clock: BlockClock
    peak_memory: bool  # torch.accelerator counts its allocations (max_memory_allocated)
    host_threads: bool  # torch's intra-op CPU threads are the device's (part of the identity)
    precisions: frozenset[str]  # what it trains in (mnist_core.PRECISIONS)
    # An op this network needs with no deterministic kernel in torch: strict mode would raise,
    # so a deterministic run there is warn-only and its reruns are not bitwise.
    no_deterministic_kernel: str | None
    graphs: bool  # whole-step CUDA graphs and torch's capturable Adam
    channels_last: bool  # default memory format: the fastest measured that keeps determinism
    optimizer: str  # default Adam implementation, likewise
    machine_key: MachineKey
    peak_matmul_size: int  # the side of the peak probe's square matmul
    fingerprint: Fingerprint | None = None  # None: the device's name is all torch tells

    @property
    def bitwise_reruns(self) -> bool:
        """Whether a deterministic run's reruns are bitwise identical on this kind."""
        return self.no_deterministic_kernel is None


# The defaults (README "Performance", docs/evidence.md): channels-last speeds up the CPU's
# oneDNN convolutions and pooling; the fused Adam replaces a dozen small kernels with one.
# CUDA keeps contiguous memory: unmeasured there. fp16 trains with a grad scaler, which needs
# CUDA; TF32 is CUDA's Ampere-and-newer mode.
KINDS: dict[str, DeviceKind] = {
    kind.type: kind
    for kind in (
        DeviceKind(
            type="cpu",
            label="the CPU",
            queued=False,
            block_clock="host",
            peak_memory=False,
            host_threads=True,
            precisions=frozenset({"fp32", "bf16"}),
            no_deterministic_kernel=None,
            graphs=False,
            channels_last=True,
            optimizer="adam-fused",
            machine_key="host-cpu",
            peak_matmul_size=1024,
        ),
        DeviceKind(
            type="cuda",
            label="CUDA",
            queued=True,
            block_clock="event",
            peak_memory=True,
            host_threads=False,
            precisions=frozenset({"fp32", "tf32", "bf16", "fp16"}),
            no_deterministic_kernel=None,
            graphs=True,
            channels_last=False,
            optimizer="adam-fused",
            machine_key="accelerator",
            peak_matmul_size=8192,
            fingerprint=Fingerprint(
                units_property="multi_processor_count",
                capability_label="sm",
                units_label="SMs",
                driver_tool="nvidia-smi",
            ),
        ),
        DeviceKind(
            type="mps",
            label="Apple MPS",
            queued=True,
            block_clock="none",
            peak_memory=False,
            host_threads=False,
            precisions=frozenset({"fp32", "bf16"}),
            no_deterministic_kernel="max_pool2d backward",
            graphs=False,
            channels_last=False,
            optimizer="adam",
            machine_key="name",
            peak_matmul_size=8192,
        ),
    )
}


def kind_of(device: str) -> DeviceKind:
    """The kind of `device` ("cuda:1", "cpu"); ConfigError for a kind the table lacks."""
    name = device.split(":")[0]
    try:
        return KINDS[name]
    except KeyError:
        raise ConfigError(
            f"unsupported device {device!r}: use {', '.join(KINDS)} (or TYPE:N) or auto"
        ) from None


def trains_in(precision: str) -> list[DeviceKind]:
    """The kinds that train in `precision`."""
    return [kind for kind in KINDS.values() if precision in kind.precisions]


def labels_of(kinds: list[DeviceKind]) -> str:
    """ "CUDA", "CUDA or Apple MPS": the kinds, for a message."""
    return " or ".join(kind.label for kind in kinds)


def bitwise_reruns(device_type: str) -> bool:
    """Whether deterministic reruns on `device_type` must match bit for bit (a stored file may
    name a kind this table lacks: it is held to bitwise equality, as strict mode promises)."""
    kind = KINDS.get(device_type)
    return kind is None or kind.bitwise_reruns


def machine_key_of(device_type: str) -> MachineKey:
    """How machines of `device_type` are told apart; a kind the table lacks (a stored file's):
    by the device's name alone."""
    kind = KINDS.get(device_type)
    return kind.machine_key if kind is not None else "name"
