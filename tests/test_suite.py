"""Suite parsing and validation: every bad input is one line naming file, line and field."""

from __future__ import annotations

import json

import pytest

from harness.errors import InputError
from harness.suite import json_schema, load_suite

from .conftest import run_cli

MINIMAL = """
name: s
models:
  - name: m
    path: m.onnx
"""


def error_of(write_suite, text: str) -> str:
    with pytest.raises(InputError) as info:
        load_suite(write_suite(text))
    message = str(info.value)
    assert "\n" not in message
    return message


def test_minimal_suite_gets_defaults(write_suite) -> None:
    loaded = load_suite(write_suite(MINIMAL))
    suite = loaded.suite
    assert [v.name for v in suite.variants] == ["fp32"]
    assert [t.name for t in suite.targets] == ["cpu"]
    assert suite.measure.min_iterations == 20 and suite.measure.max_s == 30 and suite.measure.repeats == 5
    assert len(loaded.sha256) == 64


def test_shorthands_expand(write_suite) -> None:
    suite = load_suite(write_suite(MINIMAL + "variants: [fp32, fp16, {name: q, kind: int8-static}]\n"
                                             "targets: [cpu, {name: ov, provider: OpenVINOExecutionProvider}]\n")).suite
    assert [(v.name, v.kind) for v in suite.variants] == [("fp32", "fp32"), ("fp16", "fp16"), ("q", "int8-static")]
    assert suite.targets[1].provider == "OpenVINOExecutionProvider"


def test_typo_names_file_line_field_and_suggestion(write_suite) -> None:
    message = error_of(write_suite, MINIMAL + "measure:\n  min_s: 1\n  warmpu: 2\n")
    assert "suite.yaml:7: measure.warmpu: unknown field 'warmpu' (did you mean 'warmup_s'?)" in message


def test_nested_typo_in_list_points_at_its_line(write_suite) -> None:
    message = error_of(write_suite, """
        name: s
        models:
          - name: m
            path: m.onnx
            inputs:
              x: {shape: [1, 2], rnage: [0, 5]}
        """)
    assert "suite.yaml:6: models[0].inputs.x.rnage: unknown field 'rnage' (did you mean 'range'?)" in message


def test_missing_required_field(write_suite) -> None:
    assert "suite.yaml:1: models: required field is missing" in error_of(write_suite, "name: s\n")


def test_wrong_choice_lists_the_choices(write_suite) -> None:
    message = error_of(write_suite, MINIMAL + "variants: [{name: q, kind: int4}]\n")
    assert "variants[0].kind" in message and "'fp16'" in message and "int4" in message


def test_duplicate_key_is_an_error(write_suite) -> None:
    message = error_of(write_suite, MINIMAL + "measure: {min_s: 1}\nmeasure: {min_s: 2}\n")
    assert "suite.yaml:6: measure: key given twice" in message


def test_yaml_syntax_error_has_line(write_suite) -> None:
    message = error_of(write_suite, MINIMAL + "matrix: {batch: [1, 2\n")
    assert "suite.yaml:" in message and "YAML syntax error" in message


def test_semantic_checks(write_suite) -> None:
    assert "duplicate name 'm'" in error_of(write_suite, MINIMAL + "  - name: m\n    path: n.onnx\n")
    assert "exactly one of 'source'" in error_of(write_suite, "name: s\nmodels: [{name: m}]\n")
    assert "max_s (1.0) is below min_s (2.0)" in error_of(write_suite, MINIMAL + "measure: {min_s: 2, max_s: 1}\n")
    assert "matrix.batch must be positive integers" in error_of(write_suite, MINIMAL + "matrix: {batch: [0]}\n")
    assert "unknown key 'bacth'" in error_of(write_suite, MINIMAL + "matrix: {batch: [1]}\nexclude: [{bacth: 1}]\n")
    assert "give either 'range' or 'value'" in error_of(
        write_suite, MINIMAL + "    inputs: {x: {range: [0, 2], value: 1}}\n")


def test_missing_suite_file(tmp_path) -> None:
    with pytest.raises(InputError, match="suite file not found"):
        load_suite(tmp_path / "nope.yaml")


def test_schema_is_json_schema_with_every_section() -> None:
    schema = json_schema()
    assert schema["additionalProperties"] is False
    assert {"models", "variants", "targets", "matrix", "measure", "session"} <= set(schema["properties"])


def test_cli_schema_and_validate_exit_codes(write_suite) -> None:
    out = run_cli("schema")
    assert out.returncode == 0 and json.loads(out.stdout)["title"] == "onnx-harness suite"
    bad = run_cli("validate", write_suite(MINIMAL + "measure: {warmpu: 1}\n"))
    assert bad.returncode == 2
    assert bad.stderr.strip().count("\n") == 0 and "measure.warmpu" in bad.stderr
    usage = run_cli("run", "--bogus", "x.yaml")
    assert usage.returncode == 2 and "No such option: --bogus" in usage.stderr
