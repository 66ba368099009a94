"""The published JSON Schemas of the result and baseline documents, generated from the pydantic
classes (a test checks that the committed copies are current).

    python -m bench.storage.schemas      # rewrites results/result.schema.json and
                                         # results/baseline.schema.json
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import TypeAdapter

from bench.config.settings import RESULTS_DIR
from bench.storage.baselines import BASELINE_SCHEMA
from bench.storage.files import write_text_atomic
from bench.storage.results import RESULT_SCHEMA

SCHEMAS: dict[str, TypeAdapter[Any]] = {
    "result.schema.json": RESULT_SCHEMA,
    "baseline.schema.json": BASELINE_SCHEMA,
}


def schema_texts() -> dict[str, str]:
    return {
        name: json.dumps(adapter.json_schema(), indent=1, sort_keys=True) + "\n"
        for name, adapter in SCHEMAS.items()
    }


def write_schemas(folder: Path = RESULTS_DIR) -> list[Path]:
    paths = []
    for name, text in schema_texts().items():
        write_text_atomic(folder / name, text, replace=True)
        paths.append(folder / name)
    return paths


if __name__ == "__main__":
    for path in write_schemas():
        print(f"wrote {path}")
