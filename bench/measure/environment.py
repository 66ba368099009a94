"""The environment fingerprint stored with every result: what ran, on what, from which commit,
and which arithmetic path the CPU libraries took."""

from __future__ import annotations

import functools
import os
import platform
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import torch
import torchvision

from bench.config.devices import KINDS, Fingerprint
from bench.config.settings import is_portable
from bench.storage.results import AcceleratorFingerprint, CpuFingerprint, Environment, MathPath

# Environment variables that change which kernels run, so the bits (and the speed).
ARITHMETIC_KNOBS = (
    "ATEN_CPU_CAPABILITY",
    "ONEDNN_MAX_CPU_ISA",
    "DNNL_MAX_CPU_ISA",
    "ONEDNN_DEFAULT_FPMATH_MODE",
    "MKL_CBWR",
    "MKL_ENABLE_INSTRUCTIONS",
    "MKL_NUM_THREADS",
    "OMP_NUM_THREADS",
    "OMP_DYNAMIC",
    "KMP_DETERMINISTIC_REDUCTION",
    "CUBLAS_WORKSPACE_CONFIG",
    "NVIDIA_TF32_OVERRIDE",
    "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE",
)
KERNEL_FLAGS = re.compile(r"^(fma|avx2|avx512.*|amx.*|avx_vnni.*)$")
CPUINFO, MEMINFO = Path("/proc/cpuinfo"), Path("/proc/meminfo")
CACHES = Path("/sys/devices/system/cpu/cpu0/cache")


def cpuinfo(text: str) -> dict[str, str]:
    """The first processor's entries in /proc/cpuinfo's text."""
    entries: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if entries:
                break
            continue
        key, _, value = line.partition(":")
        entries.setdefault(key.strip(), value.strip())
    return entries


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _number(text: str | None, base: int = 10) -> int | None:
    try:
        return int(text, base) if text is not None else None
    except ValueError:
        return None


def cpu_name() -> str:
    return cpuinfo(_read(CPUINFO)).get("model name") or platform.processor() or platform.machine()


def cache_sizes(root: Path = CACHES) -> dict[str, str]:
    """{"L1d": "32K", "L1i": "32K", "L2": "1024K", …} from sysfs; empty where it is absent."""
    sizes = {}
    for index in sorted(root.glob("index*")):
        level, kind, size = (_read(index / name).strip() for name in ("level", "type", "size"))
        suffix = {"Data": "d", "Instruction": "i"}.get(kind, "")
        if level and size:
            sizes[f"L{level}{suffix}"] = size
    return sizes


def cpu_fingerprint(cpuinfo_text: str, meminfo_text: str, caches: dict[str, str]) -> CpuFingerprint:
    info = cpuinfo(cpuinfo_text)
    memory_kb = re.search(r"^MemTotal:\s+(\d+) kB", meminfo_text, re.MULTILINE)
    return CpuFingerprint(
        vendor=info.get("vendor_id") or info.get("CPU implementer"),
        family=_number(info.get("cpu family")),
        model=_number(info.get("model")),
        stepping=_number(info.get("stepping")),
        microcode=info.get("microcode"),
        flags=sorted(f for f in info.get("flags", "").split() if KERNEL_FLAGS.match(f)),
        caches=caches,
        memory_mb=int(memory_kb.group(1)) / 1024 if memory_kb else None,
    )


def library_versions(config: str) -> tuple[str | None, str | None]:
    """MKL's and oneDNN's versions in torch.__config__.show()'s text."""
    mkl = re.search(r"Math Kernel Library Version ([\w.\-]+)", config)
    onednn = re.search(r"MKL-DNN v([\w.\-]+)", config)
    return (mkl.group(1) if mkl else None), (onednn.group(1) if onednn else None)


def onednn_isa_in(verbose: str) -> str | None:
    """The instruction set in oneDNN's verbose output, e.g. 'Intel AVX-512 with Intel DL
    Boost and bfloat16 support' or 'Intel SSE4.1'."""
    found = re.search(r"^onednn_verbose,(?:v\d+,)?info,cpu,isa:(.+)$", verbose, re.MULTILINE)
    return found.group(1).strip() if found else None


@functools.cache  # oneDNN prints its header once per process, and its ISA is fixed at start
def onednn_isa() -> str | None:
    """oneDNN's instruction set, read from its verbose mode while it runs one convolution (the
    header it prints once per process names the ISA); None where oneDNN is absent or silent."""
    if not torch.backends.mkldnn.is_available():
        return None
    with tempfile.TemporaryFile() as sink:
        saved = os.dup(1)  # oneDNN prints to the process's stdout, below Python
        os.dup2(sink.fileno(), 1)
        try:
            with torch.backends.mkldnn.verbose(torch.backends.mkldnn.VERBOSE_ON):
                images = torch.zeros(2, 32, 28, 28).to(memory_format=torch.channels_last)
                torch.nn.functional.conv2d(images, torch.zeros(64, 32, 3, 3))
        except RuntimeError:
            return None
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        sink.seek(0)
        return onednn_isa_in(sink.read().decode(errors="replace"))


def math_path() -> MathPath:
    mkl, onednn = library_versions(torch.__config__.show())
    return MathPath(
        torch_git=torch.version.git_version,
        capability=torch.backends.cpu.get_cpu_capability(),
        onednn_isa=onednn_isa(),
        mkl=mkl,
        onednn=onednn,
        knobs={name: os.environ[name] for name in ARITHMETIC_KNOBS if name in os.environ},
        portable=is_portable(os.environ),
    )


def git_commit() -> str | None:
    """HEAD of the checkout this code runs from, with '-dirty' when it has local changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return f"{commit}-dirty" if dirty else commit


NVIDIA_SMI_FIELDS = ("driver_version", "clocks.max.sm", "power.limit")


def nvidia_smi(uuid: str | None) -> dict[str, str]:
    """The driver, the top SM clock (MHz) and the power limit (W) of the GPU with `uuid` (else
    the first) as nvidia-smi reports them; only the fields it could say."""
    command = ["nvidia-smi", f"--query-gpu={','.join(NVIDIA_SMI_FIELDS)}"]
    command += ["--format=csv,noheader,nounits", *(["-i", uuid] if uuid else [])]
    try:
        query = subprocess.run(command, capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return {}
    lines = query.stdout.strip().splitlines()
    values = [value.strip() for value in lines[0].split(",")] if lines else []
    return {
        name: value
        for name, value in zip(NVIDIA_SMI_FIELDS, values, strict=False)
        if value and not value.startswith("[")  # "[N/A]", "[Not Supported]"
    }


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def gpu_uuid(properties: Any) -> str | None:
    """nvidia-smi's name for the GPU of torch's properties (torch omits the "GPU-" prefix)."""
    uuid = getattr(properties, "uuid", None)  # absent from older torch builds
    return f"GPU-{uuid}" if uuid is not None else None


def accelerator_fingerprint(
    properties: Any, smi: dict[str, str], recipe: Fingerprint
) -> AcceleratorFingerprint:
    """From torch.<type>.get_device_properties(…) and the vendor tool's answer (nvidia_smi)."""
    major, minor = getattr(properties, "major", None), getattr(properties, "minor", None)
    memory = getattr(properties, "total_memory", None)
    return AcceleratorFingerprint(
        uuid=gpu_uuid(properties),
        capability=f"{major}.{minor}" if major is not None and minor is not None else None,
        units=getattr(properties, recipe.units_property, None),
        memory_mb=memory / 2**20 if memory is not None else None,
        driver=smi.get("driver_version"),
        max_clock_mhz=_float(smi.get("clocks.max.sm")),
        power_limit_w=_float(smi.get("power.limit")),
    )


def device_name(device: torch.device) -> str:
    kind = KINDS[device.type]
    if kind.host_threads:  # the CPU
        return cpu_name()
    if kind.fingerprint is None:
        return f"{kind.label} ({platform.machine()})"
    return str(getattr(torch, device.type).get_device_properties(device).name)


def accelerator_of(device: torch.device) -> AcceleratorFingerprint | None:
    """The fingerprint of an accelerator whose kind says how to take it; None otherwise."""
    recipe = KINDS[device.type].fingerprint
    if recipe is None:
        return None
    properties = getattr(torch, device.type).get_device_properties(device)
    smi = nvidia_smi(gpu_uuid(properties)) if recipe.driver_tool == "nvidia-smi" else {}
    return accelerator_fingerprint(properties, smi, recipe)


def fingerprint(device: torch.device) -> Environment:
    cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    return Environment(
        torch=torch.__version__,
        torchvision=torchvision.__version__,
        cuda=torch.version.cuda,
        cudnn=cudnn if device.type == "cuda" else None,
        device_type=device.type,
        device_name=device_name(device),
        cpu_name=cpu_name(),
        cpu_count=os.cpu_count() or 1,
        threads=torch.get_num_threads(),
        os=platform.platform(),
        python=platform.python_version(),
        git_commit=git_commit(),
        cpu=cpu_fingerprint(_read(CPUINFO), _read(MEMINFO), cache_sizes()),
        math=math_path(),
        accelerator=accelerator_of(device),
    )
