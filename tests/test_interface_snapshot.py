"""The nodes' public interface (/object_info) must match the committed tests/data/interface_snapshot.json.

Saved workflows map widgets_values to inputs by position: an added, removed or reordered
input silently shifts every value of users' saved workflows.  Change the interface only
on purpose, and regenerate the snapshot in the same commit.
"""
from __future__ import annotations

from testnodes import TEST_NODE_CLASS_MAPPINGS, TEST_NODE_DISPLAY_NAME_MAPPINGS

from comfyui_avgen.runner.snapshot import (
    SNAPSHOT_PATH,
    UPDATE_COMMAND,
    current_snapshot,
    describe_differences,
    load_snapshot,
)


def test_interface_matches_the_committed_snapshot():
    assert SNAPSHOT_PATH.exists(), f"missing {SNAPSHOT_PATH}; create it with: {UPDATE_COMMAND}"
    differences = describe_differences(load_snapshot(), current_snapshot())
    assert not differences, (
        "node interface changed: " + "; ".join(differences) + ". Saved workflows map widget values by position, "
        f"so if this is intended regenerate the snapshot with `{UPDATE_COMMAND}` and commit it in the same commit."
    )


def test_differences_name_added_removed_and_changed_fields():
    saved = current_snapshot(TEST_NODE_CLASS_MAPPINGS, TEST_NODE_DISPLAY_NAME_MAPPINGS)
    current = {k: v for k, v in saved.items() if k != "AVGenTestFail"}
    current["AVGenTestAdd"] = {**current["AVGenTestAdd"], "input_order": {"required": ["b", "a"]}}
    current["AVGenTestNew"] = {"name": "AVGenTestNew"}
    assert describe_differences(saved, current) == [
        "node AVGenTestNew added",
        "node AVGenTestFail removed",
        "node AVGenTestAdd changed: input_order",
    ]


def test_snapshot_entries_have_the_object_info_fields():
    entry = current_snapshot(TEST_NODE_CLASS_MAPPINGS, TEST_NODE_DISPLAY_NAME_MAPPINGS)["AVGenTestSaveText"]
    assert entry == {
        "input": {
            "required": {
                "text": ["STRING", {"forceInput": True, "tooltip": "Text to save."}],
                "filename_prefix": ["STRING", {"default": "avgen_test", "tooltip": "File name prefix."}],
            },
            "hidden": {"unique_id": "UNIQUE_ID"},
        },
        "input_order": {"required": ["text", "filename_prefix"], "hidden": ["unique_id"]},
        "output": [],
        "output_is_list": [],
        "output_name": [],
        "name": "AVGenTestSaveText",
        "display_name": "Test SaveText",
        "description": "Saves text to a file in the output directory.",
        "python_module": "custom_nodes.ComfyUI-AVGen",
        "category": "AVGen/testing",
        "output_node": True,
        "output_tooltips": [],
    }
