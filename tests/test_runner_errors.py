"""Every way a workflow can be wrong gives a named error before anything runs; the CLI shows it without a traceback."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from testnodes import TEST_NODE_CLASS_MAPPINGS, TEST_NODE_DISPLAY_NAME_MAPPINGS

from comfyui_avgen.cli import main
from comfyui_avgen.nodes import comfy_adapter
from comfyui_avgen.runner import (
    CycleError,
    DanglingLinkError,
    NodeExecutionError,
    OverrideError,
    UnknownNodeTypesError,
    ValidationError,
    WorkflowFormatError,
    apply_overrides,
    build_graph,
    read_workflow_file,
    run_prompt,
    to_api_prompt,
)

WORKFLOWS = Path(__file__).parent / "data" / "workflows"
TESTS_DIR = Path(__file__).parent


def prompt_of(name: str) -> dict:
    return to_api_prompt(read_workflow_file(WORKFLOWS / name), TEST_NODE_CLASS_MAPPINGS, TEST_NODE_DISPLAY_NAME_MAPPINGS)


def cli(argv, tmp_path, capsys) -> tuple[int, str, str]:
    code = main([*argv, "--output-dir", str(tmp_path)] if argv[0] in ("run", "validate") else argv,
                node_classes=TEST_NODE_CLASS_MAPPINGS, display_names=TEST_NODE_DISPLAY_NAME_MAPPINGS)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_unknown_types_are_all_listed_with_where_they_are():
    with pytest.raises(UnknownNodeTypesError) as caught:
        prompt_of("ui_unknown_types.json")
    assert [(i, t) for i, t, _ in caught.value.missing] == [("1", "FooMissing"), ("2", "BarMissing"), ("4:1", "BazMissing")]
    assert "in subgraph 'Broken inner'" in str(caught.value)


def test_unknown_types_in_api_format_are_all_listed():
    prompt = {"1": {"class_type": "Nope", "inputs": {}}, "2": {"class_type": "AlsoNope", "inputs": {}}}
    with pytest.raises(UnknownNodeTypesError, match="'Nope' .*'AlsoNope'"):
        build_graph(prompt, TEST_NODE_CLASS_MAPPINGS)


def test_cycle_is_named():
    with pytest.raises(CycleError, match=r'node 2 "Second" \(AVGenTestAdd\) -> node 1 "First" .* -> node 2'):
        build_graph(prompt_of("api_cycle.json"), TEST_NODE_CLASS_MAPPINGS)


def test_dangling_link_is_named():
    with pytest.raises(DanglingLinkError, match="input 'a' of node 2 .* linked to node 99"):
        build_graph(prompt_of("api_dangling.json"), TEST_NODE_CLASS_MAPPINGS)


def test_ui_link_missing_from_links_array_is_named():
    data = read_workflow_file(WORKFLOWS / "ui_v04_basic.json")
    data["links"] = [link for link in data["links"] if link[0] != 2]
    with pytest.raises(DanglingLinkError, match="input 'value' of node 3 .* link 2"):
        to_api_prompt(data, TEST_NODE_CLASS_MAPPINGS)


def test_bad_widget_values_are_all_reported_with_node_input_and_expectation(tmp_path):
    with pytest.raises(ValidationError) as caught:
        build_graph(prompt_of("ui_v04_bad_widgets.json"), TEST_NODE_CLASS_MAPPINGS)
    assert caught.value.problems == [
        'node 1 "Broken add" (AVGenTestAdd): input \'a\' = \'abc\' is not a valid INT',
        'node 1 "Broken add" (AVGenTestAdd): input \'b\' = 2000 is bigger than the maximum 1000',
        'node 2 "Test SeedNoise" (AVGenTestSeedNoise): input \'mode\' = \'triangle\' is not one of '
        "['uniform', 'normal']",
    ]


def test_bad_links_are_reported():
    with pytest.raises(ValidationError) as caught:
        build_graph(prompt_of("api_bad_links.json"), TEST_NODE_CLASS_MAPPINGS)
    first, second = caught.value.problems
    assert "input 'b' is linked to output slot 5 of node 1" in first and "which has 1 output(s)" in first
    assert "input 'noise' expects AVGEN_TEST_NOISE" in second and "which gives INT" in second


def test_constant_given_to_a_socket_only_type():
    prompt = prompt_of("ui_v04_seed_widgets.json")
    prompt["2"]["inputs"]["noise"] = "loud"
    with pytest.raises(ValidationError, match="input 'noise' needs a link from a AVGEN_TEST_NOISE output, not the constant 'loud'"):
        build_graph(prompt, TEST_NODE_CLASS_MAPPINGS)


def test_missing_required_input_and_no_output_node():
    prompt = {"1": {"class_type": "AVGenTestAdd", "inputs": {"a": 1}},
              "2": {"class_type": "AVGenTestFormat", "inputs": {"value": ["1", 0]}},
              "3": {"class_type": "AVGenTestSaveText", "inputs": {"text": ["2", 0], "filename_prefix": "x"}}}
    with pytest.raises(ValidationError, match="required input 'b' is missing \\(expected INT\\).*'template' is missing"):
        build_graph(prompt, TEST_NODE_CLASS_MAPPINGS)
    with pytest.raises(ValidationError, match="no output node"):
        build_graph({"1": prompt["1"]}, TEST_NODE_CLASS_MAPPINGS)


def test_validate_inputs_replaces_builtin_checks_for_the_inputs_it_names():
    # count 13 is above max 10 AND odd: only the node's own check applies, as in ComfyUI
    with pytest.raises(ValidationError) as caught:
        build_graph(prompt_of("api_validate_inputs.json"), TEST_NODE_CLASS_MAPPINGS)
    assert caught.value.problems == [
        "node 1 \"Test Even\" (AVGenTestEven): input 'count' failed the node's own validation: count must be even, got 13"
    ]
    prompt = prompt_of("api_validate_inputs.json")
    prompt["1"]["inputs"]["count"] = 12  # even, above max: accepted
    build_graph(prompt, TEST_NODE_CLASS_MAPPINGS)


def test_node_raising_is_wrapped_with_its_identity(tmp_path):
    with comfy_adapter.configured(output_dir=tmp_path), pytest.raises(NodeExecutionError) as caught:
        run_prompt(prompt_of("api_node_fails.json"), TEST_NODE_CLASS_MAPPINGS)
    assert str(caught.value) == 'node 1 "Exploder" (AVGenTestFail) failed: RuntimeError: boom 7'
    assert isinstance(caught.value.__cause__, RuntimeError)


def test_nothing_runs_when_validation_fails(tmp_path, capsys):
    code, out, err = cli(["run", str(WORKFLOWS / "ui_v04_bad_widgets.json")], tmp_path, capsys)
    assert code == 1 and out == "" and not list(tmp_path.iterdir())
    assert err.startswith("error: validation failed: 3 problem(s):") and "Traceback" not in err


def test_cli_node_failure_without_and_with_verbose(tmp_path, capsys):
    code, _, err = cli(["run", str(WORKFLOWS / "api_node_fails.json")], tmp_path, capsys)
    assert code == 1 and "Traceback" not in err
    assert err.strip() == 'error: node failed: node 1 "Exploder" (AVGenTestFail) failed: RuntimeError: boom 7'
    code, _, err = cli(["run", "--verbose", str(WORKFLOWS / "api_node_fails.json")], tmp_path, capsys)
    assert code == 1 and "Traceback" in err and "raise RuntimeError" in err


@pytest.mark.parametrize(
    ("content", "message"),
    [("{not json", "is not valid JSON"), ("[1, 2]", "not a ComfyUI workflow"), ('{"a": 1}', "not a ComfyUI workflow")],
)
def test_cli_bad_files(tmp_path, capsys, content, message):
    path = tmp_path / "w.json"
    path.write_text(content)
    code, _, err = cli(["validate", str(path)], tmp_path, capsys)
    assert code == 1 and message in err and err.startswith("error: workflow format error:")


def test_cli_missing_file_and_legacy_group_node(tmp_path, capsys):
    code, _, err = cli(["run", str(tmp_path / "absent.json")], tmp_path, capsys)
    assert code == 1 and "does not exist" in err
    with pytest.raises(WorkflowFormatError, match="legacy group node"):
        prompt_of("ui_legacy_group_node.json")


def test_cli_validate_convert_and_nodes(tmp_path, capsys):
    workflow = str(WORKFLOWS / "ui_v1_subgraph.json")
    code, out, _ = cli(["validate", workflow], tmp_path, capsys)
    assert code == 0 and out.startswith("OK: 5 node(s) would run") and not list(tmp_path.iterdir())
    code, out, _ = cli(["convert", workflow, "--to", "api", "--set", "7:2.b=1"], tmp_path, capsys)
    assert code == 0 and json.loads(out)["7:2"]["inputs"] == {"a": ["7:1", 0], "b": 1, "scale": 1.0}
    code, out, _ = cli(["nodes"], tmp_path, capsys)
    assert code == 0 and out.startswith("AVGen/testing\n  AVGenTestAdd  \"Test Add\"  Adds two integers")
    assert "    scale: FLOAT optional (default 1.0, min 0.0, max 10.0)\n    -> sum: INT\n" in out


# --- --set -----------------------------------------------------------------------------


def test_set_by_id_and_title_parses_json_or_keeps_text():
    prompt = prompt_of("api_basic.json")
    changed = apply_overrides(prompt, ["2.b=10", "Formatter.template=v{value}", "Three.value=-2", "2.a=[1, 2]"],
                              TEST_NODE_CLASS_MAPPINGS)
    assert changed["2"]["inputs"] == {"a": {"__value__": [1, 2]}, "b": 10}
    assert changed["3"]["inputs"]["template"] == "v{value}"
    assert changed["1"]["inputs"]["value"] == -2
    assert prompt["2"]["inputs"]["b"] == 4  # the original is untouched


def test_set_errors_list_candidates():
    prompt = prompt_of("api_basic.json")
    with pytest.raises(OverrideError, match="no node with id or title 'Nope'.*1 'Three'.*3 'Formatter'"):
        apply_overrides(prompt, ["Nope.value=1"], TEST_NODE_CLASS_MAPPINGS)
    with pytest.raises(OverrideError, match="has no input 'c'; its inputs are: a, b, scale"):
        apply_overrides(prompt, ["2.c=1"], TEST_NODE_CLASS_MAPPINGS)
    with pytest.raises(OverrideError, match="not of the form NODE.INPUT=VALUE"):
        apply_overrides(prompt, ["2b=1"], TEST_NODE_CLASS_MAPPINGS)
    prompt["5"]["_meta"]["title"] = "Three"
    with pytest.raises(OverrideError, match="title 'Three' names 2 nodes"):
        apply_overrides(prompt, ["Three.value=1"], TEST_NODE_CLASS_MAPPINGS)


def test_cli_set_changes_the_run_and_bad_set_is_an_error(tmp_path, capsys):
    workflow = str(WORKFLOWS / "ui_v04_basic.json")
    code, out, _ = cli(["run", workflow, "--set", "Adder.b=5", "--set", "4.filename_prefix=custom"], tmp_path, capsys)
    assert code == 0 and "text: sum=14" in out
    assert (tmp_path / "custom_00001_.txt").read_text() == "sum=14"
    code, _, err = cli(["run", workflow, "--set", "Adder.z=5"], tmp_path, capsys)
    assert code == 1 and err.startswith("error: bad --set: node 2 (AVGenTestAdd) has no input 'z'")


# --- interruption ----------------------------------------------------------------------


def test_interrupt_flag_stops_the_run(tmp_path):
    with comfy_adapter.configured(output_dir=tmp_path), pytest.raises(comfy_adapter.Interrupted):
        run_prompt(prompt_of("api_interrupt.json"), TEST_NODE_CLASS_MAPPINGS)
    assert not list(tmp_path.glob("steps_*"))
    comfy_adapter.check_interrupted()  # the request was consumed


def test_cli_reports_interruption_with_exit_code_130(tmp_path, capsys):
    code, _, err = cli(["run", str(WORKFLOWS / "api_interrupt.json")], tmp_path, capsys)
    assert code == 130 and err.startswith("interrupted") and "Traceback" not in err


def test_ctrl_c_in_the_cli_process_stops_at_the_next_check(tmp_path):
    prompt = json.loads((WORKFLOWS / "api_interrupt.json").read_text())
    prompt["1"]["inputs"]["how"] = "sigint"  # the node sends SIGINT to its own process at step 2
    workflow = tmp_path / "sigint.json"
    workflow.write_text(json.dumps(prompt))
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import testnodes as t; from comfyui_avgen.cli import main; "
        "sys.exit(main(sys.argv[2:], node_classes=t.TEST_NODE_CLASS_MAPPINGS))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, str(TESTS_DIR), "run", str(workflow), "--output-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 130, done.stderr
    assert "stopping at the next check" in done.stderr and "Traceback" not in done.stderr
    assert "[1/3]" in done.stdout and "ran " not in done.stdout
