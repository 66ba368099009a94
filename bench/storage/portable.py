"""The committed reference digests of portable mode (`run --portable`): the weights each seed of
the default experiment gives on the pinned arithmetic path, which any x86-64 CPU should
reproduce bit for bit with the same torch build."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, TypeAdapter
from pydantic.dataclasses import dataclass

from bench.config.settings import PORTABLE_DIGESTS_PATH, STRICT_SCHEMA, RunConfig
from bench.errors import ResultFileError
from bench.storage.files import PORTABLE_MARKER_KEY, read_document, write_json_atomic
from bench.storage.results import upgrade, validate_document

PORTABLE_DIGESTS_VERSION = 1
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
# A seed as JSON keys hold it: the decimal digits `str(seed)` gives, so that a lookup finds it.
SeedKey = Annotated[str, Field(pattern=r"^(0|[1-9][0-9]{0,19})$")]


@dataclass(config=STRICT_SCHEMA)
class PortableDigests:
    recorded_utc: str
    torch: str  # torch.__version__ and the commit it was built from: bits need the same build
    torch_git: str | None
    machine: str  # where they were recorded (bench.show.tables.machine_label)
    config: RunConfig  # the experiment; its seed is the first
    data_sha256: str
    digests: Annotated[dict[SeedKey, Sha256], Field(min_length=1)]  # seed (as text) → weights
    portable_digests_version: int = PORTABLE_DIGESTS_VERSION

    def expected(self, seed: int) -> str | None:
        return self.digests.get(str(seed))


PORTABLE_SCHEMA = TypeAdapter(PortableDigests)


def load_portable_digests(path: Path = PORTABLE_DIGESTS_PATH) -> PortableDigests:
    try:
        data, raw = read_document(path)
        current = upgrade(data, PORTABLE_MARKER_KEY, PORTABLE_DIGESTS_VERSION, {}, "version")
        return validate_document(PORTABLE_SCHEMA, current, raw)
    except ResultFileError as error:
        raise ResultFileError(f"{path}: {error}") from None


def save_portable_digests(reference: PortableDigests, path: Path = PORTABLE_DIGESTS_PATH) -> Path:
    payload: dict[str, Any] = asdict(reference)
    write_json_atomic(path, payload, replace=True)
    return path
