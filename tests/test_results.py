"""The result schema: round trip, atomic writes, and a loader that only ever says why."""

import copy
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.config.settings import Tolerances
from bench.errors import ResultFileError
from bench.judge.compare import compare
from bench.show.tables import comparison_tables
from bench.storage.files import atomic_path, load_result, save_result, write_json_atomic
from bench.storage.results import SCHEMA_VERSION, RunResult
from bench.storage.schemas import schema_texts
from tests.conftest import COMMITTED_RESULT, REPO_ROOT

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def test_round_trip_keeps_every_field(template, tmp_path):
    path = save_result(template, tmp_path)
    assert load_result(path) == template
    assert json.loads(path.read_text())["schema_version"] == SCHEMA_VERSION


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    target = tmp_path / "result.json"
    write_json_atomic(target, {"old": True})
    with pytest.raises(KeyboardInterrupt), atomic_path(target) as tmp:
        tmp.write_text('{"half": ')
        raise KeyboardInterrupt
    assert json.loads(target.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_written_files_follow_the_umask_like_any_file(tmp_path):
    previous = os.umask(0o022)
    try:
        write_json_atomic(tmp_path / "r.json", {})
    finally:
        os.umask(previous)
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == 0o644


@settings(deadline=None)  # a shared CI machine can stall any single example
@given(json_values)
def test_random_json_is_refused_with_a_reason(value):
    with pytest.raises(ResultFileError):
        RunResult.from_dict(value)


def _paths(node, prefix=()):
    """Every (path, value) inside a JSON document."""
    yield prefix, node
    children = (
        node.items()
        if isinstance(node, dict)
        else enumerate(node)
        if isinstance(node, list)
        else []
    )
    for key, child in children:
        yield from _paths(child, (*prefix, key))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_mutated_results_load_or_are_refused_with_a_reason(template, tmp_path, data):
    document = copy.deepcopy(template.to_dict())
    paths = [p for p, _ in _paths(document) if p]
    path = data.draw(st.sampled_from(paths))
    parent = document
    for key in path[:-1]:
        parent = parent[key]
    if data.draw(st.booleans()):
        del parent[path[-1]]
    else:
        parent[path[-1]] = data.draw(json_values)
    file = Path(tmp_path) / "mutated.json"
    file.write_text(json.dumps(document))
    try:
        loaded = load_result(file)
    except ResultFileError as error:
        assert str(error)
    else:  # whatever loads must also compare and render
        comparison = compare([(file, loaded)], [], Tolerances())
        assert [row.result for row in comparison.rows] == [loaded]
        assert comparison_tables(comparison)


@pytest.mark.parametrize("text", ["", "{", "[1, 2]", "null", '{"schema_version": 1}'])
def test_broken_files_say_why(tmp_path, text):
    path = tmp_path / "x.json"
    path.write_text(text)
    with pytest.raises(ResultFileError, match=r"\w"):
        load_result(path)


def test_the_committed_test_result_is_current():
    """tests/data holds a real result that most tests derive from; a schema change must
    re-record it (tests.conftest.record_committed_result), never leave it stale."""
    document = json.loads(COMMITTED_RESULT.read_text())
    assert document["schema_version"] == SCHEMA_VERSION
    assert load_result(COMMITTED_RESULT).to_dict() == document


def test_the_published_json_schemas_are_current():
    """results/*.schema.json are generated from the pydantic classes
    (`python -m bench.storage.schemas`); a schema change must regenerate them."""
    for name, text in schema_texts().items():
        assert (REPO_ROOT / "results" / name).read_text() == text, name


def test_a_newer_tool_reads_files_of_the_same_version_with_fields_it_does_not_know():
    document = json.loads(COMMITTED_RESULT.read_text())
    document["a_field_from_a_newer_tool"] = {"anything": [1, 2]}
    document["summary"]["another_new_figure"] = 1.5
    assert RunResult.from_dict(document).run_id == document["run_id"]


def test_a_field_set_after_construction_is_checked_like_one_given_to_it(template):
    """A result is checked when it is built and whenever a field is set later: code that
    records a weights file or rebuilt figures cannot slip a bad value past the schema."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="greater than or equal to 1"):
        template.config.epochs = 0
    with pytest.raises(ValidationError, match="finite"):
        template.summary.steady_train_images_per_s = float("nan")
    template.weights_file = "run-weights.pt"
    assert template.weights_file == "run-weights.pt"


def test_a_key_given_twice_in_one_object_is_refused_not_read_last_wins(template, tmp_path):
    path = save_result(template, tmp_path)
    text = path.read_text()
    path.write_text(text.replace("{", '{"run_id": "someone-else", ', 1))
    with pytest.raises(ResultFileError, match='duplicate key "run_id"'):
        load_result(path)


def test_a_key_given_twice_among_many_is_refused_naming_it(tmp_path):
    """30,000 keys, the last one twice (how fast: tests/benchmarks, `duplicate key`)."""
    keys = 30_000
    body = ",".join(f'"k{index}": 0' for index in range(keys))
    path = tmp_path / "many.json"
    path.write_text(f'{{{body}, "k{keys - 1}": 1}}')
    with pytest.raises(ResultFileError, match=f'duplicate key "k{keys - 1}"'):
        load_result(path)
