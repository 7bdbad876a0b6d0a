"""The install a new user runs is the one CI runs, and it is locked.

README.md's setup block is the only install command: `.ci/run` executes it through tools/readme_command.py. It
installs under constraints.txt, which pins every package of the standalone + test environment exactly, so a new
release of anything (torchaudio 2.11.1 broke a fresh clone once) cannot change a fresh install.
"""
from __future__ import annotations

import importlib.metadata
import re
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
from readme_command import readme_command  # noqa: E402

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
TORCH_PAIR = {"torch": "2.11.0", "torchaudio": "2.11.0"}
NEVER_IN_COMFYUI_REQUIREMENTS = {"torch", "torchaudio", "torchvision"}


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.+\-]+)", line)
        assert match, f"constraints.txt: {line!r} is not an exact `name==version` pin"
        name = canonicalize_name(match[1])
        assert name not in pins, f"constraints.txt pins {name} twice"
        pins[name] = match[2]
    return pins


def _declared() -> list[Requirement]:
    project = PYPROJECT["project"]
    extras = project["optional-dependencies"]
    return [Requirement(r) for r in project["dependencies"] + extras["standalone"] + extras["test"]]


def test_readme_setup_installs_under_the_lock():
    setup = readme_command("setup-command")
    assert 'pip install -c constraints.txt -e ".[standalone,test]"' in setup
    assert "avgen run workflows/avgen_text_to_audio_video.json" in setup


def test_ci_runs_the_readme_commands_and_nothing_else():
    ci = (ROOT / ".ci" / "run").read_text()
    assert "tools/readme_command.py setup-command" in ci
    assert "tools/readme_command.py test-command" in ci
    assert "pip install" not in ci, ".ci/run must install through the README's setup block only"


def test_readme_command_refuses_a_missing_block():
    with pytest.raises(ValueError, match="no <!-- setup-command -->"):
        readme_command("setup-command", "# README without blocks\n")


def test_torch_pair_is_pinned_exactly_in_the_extra_and_the_lock():
    pins = _pins()
    standalone = {canonicalize_name(r.name): str(r.specifier) for r in map(Requirement, PYPROJECT["project"]
                  ["optional-dependencies"]["standalone"])}
    for name, version in TORCH_PAIR.items():
        assert pins.get(name) == version
        assert standalone.get(name) == f"=={version}"


def test_every_declared_dependency_is_locked_within_its_range():
    pins = _pins()
    for requirement in _declared():
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is declared in pyproject.toml but not pinned in constraints.txt"
        assert requirement.specifier.contains(pins[name], prereleases=True), \
            f"constraints.txt pins {name}=={pins[name]}, outside pyproject.toml's {requirement}"


def test_build_backend_is_pinned_exactly():
    for requirement in map(Requirement, PYPROJECT["build-system"]["requires"]):
        assert str(requirement.specifier).startswith("=="), f"build requirement {requirement} is not exact"


def test_comfyui_requirements_match_the_package_and_never_touch_torch():
    lines = [line.strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    listed = {canonicalize_name(Requirement(line).name): str(Requirement(line).specifier)
              for line in lines if line and not line.startswith("#")}
    assert not listed.keys() & NEVER_IN_COMFYUI_REQUIREMENTS
    declared = {canonicalize_name(Requirement(r).name): str(Requirement(r).specifier)
                for r in PYPROJECT["project"]["dependencies"]}
    assert listed == declared


def _requirements_of(distribution: importlib.metadata.Distribution, extras: set[str]) -> list[Requirement]:
    out = []
    for text in distribution.requires or []:
        requirement = Requirement(text)
        marker = requirement.marker
        if marker is None or any(marker.evaluate({"extra": extra}) for extra in extras or {""}):
            out.append(requirement)
    return out


def test_the_whole_installed_dependency_tree_is_locked():
    """Walk the installed package's requirements (with its standalone + test extras) down to the leaves: every
    package pulled in must be pinned, at the installed version."""
    try:
        root = importlib.metadata.distribution("comfyui-avgen")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("comfyui-avgen is not installed (pip install -c constraints.txt -e '.[standalone,test]')")
    pins = _pins()
    todo = [(root, {"standalone", "test"})]
    seen = set()
    while todo:
        distribution, extras = todo.pop()
        for requirement in _requirements_of(distribution, extras):
            name = canonicalize_name(requirement.name)
            if (name, frozenset(requirement.extras)) in seen:
                continue
            seen.add((name, frozenset(requirement.extras)))
            assert name in pins, f"{name} (needed by {distribution.metadata['Name']}) is not pinned in constraints.txt"
            installed = importlib.metadata.distribution(requirement.name)
            assert installed.version == pins[name], \
                f"{name} {installed.version} is installed but constraints.txt pins {pins[name]}"
            todo.append((installed, set(requirement.extras)))
    assert {"torch", "torchaudio", "numpy", "av"} <= {name for name, _ in seen}


def test_every_python_package_of_the_pack_is_listed_for_the_wheel():
    """pyproject lists packages explicitly: a new package folder missing there is silently left out of a wheel."""
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    skip = {"tests", "tools", "docs", "workflows", "output", ".ci"}
    found = {"comfyui_avgen"} | {
        "comfyui_avgen." + ".".join(path.parent.relative_to(ROOT).parts)
        for path in ROOT.rglob("__init__.py")
        if path.parent != ROOT and path.parent.relative_to(ROOT).parts[0] not in skip
        and "egg-info" not in str(path) and not any(part.startswith(".") for part in path.relative_to(ROOT).parts)
    }
    assert found == listed, f"missing in pyproject: {sorted(found - listed)}; not a package: {sorted(listed - found)}"
