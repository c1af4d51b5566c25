"""The installed package stands on its declared dependencies alone: the wheel, installed into a fresh venv
without extras, runs every `kawal` subcommand's --help (each one imports the modules it drives)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]

# Walks the click group inside the fresh venv, so each lazy subcommand is imported there.
LIST_COMMANDS = """
import json, click
from kawal.cli import cli

def walk(cmd, path):
    yield path
    if isinstance(cmd, click.Group):
        ctx = click.Context(cmd)
        for name in cmd.list_commands(ctx):
            yield from walk(cmd.get_command(ctx, name), [*path, name])

print(json.dumps(list(walk(cli, []))))
"""


def _clean_env() -> dict[str, str]:
    """No PYTHONPATH or KAWAL_* leaking in: the venv must find everything in what it installed."""
    return {
        k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("KAWAL_")
    }


def _run(args: list[str], cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=_clean_env(), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv holding the wheel built from this checkout, its runtime dependencies and nothing else."""
    tmp = tmp_path_factory.mktemp("packaging")
    # Build from a copy, so the checkout gets no build/ or egg-info folder.
    src = tmp / "src"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(
            ".git", ".venv", "build", "*.egg-info", "__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"
        ),
    )
    wheels = tmp / "wheels"
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(wheels), str(src)], tmp)
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = wheels.glob("kawal-*.whl")
    venv = tmp / "venv"
    made = _run([sys.executable, "-m", "venv", str(venv)], tmp)
    assert made.returncode == 0, made.stderr
    pip = _run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-c",
            str(ROOT / "constraints.txt"),
            str(wheel),
        ],
        tmp,
        timeout=900,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    return venv


@pytest.mark.slow
def test_every_subcommand_runs_from_the_wheel_without_extras(installed: Path, tmp_path: Path) -> None:
    python = str(installed / "bin" / "python")
    listed = _run([python, "-c", LIST_COMMANDS], tmp_path)
    assert listed.returncode == 0, listed.stderr
    paths: list[list[str]] = json.loads(listed.stdout)
    # The walk found the lazy subcommands and their own subcommands (e.g. `trips import`).
    assert ["demo"] in paths and ["simulate"] in paths and ["trips", "import"] in paths, paths
    failures = []
    for path in paths:
        r = _run([str(installed / "bin" / "kawal"), *path, "--help"], tmp_path, timeout=120)
        if r.returncode != 0 or "Usage:" not in r.stdout:
            failures.append(f"kawal {' '.join(path)} --help -> {r.returncode}\n{r.stdout[-500:]}{r.stderr[-2000:]}")
    assert not failures, "\n\n".join(failures)


@pytest.mark.slow
def test_test_tools_are_not_runtime_dependencies(installed: Path, tmp_path: Path) -> None:
    """Without extras, the test tools stay out (the venv is what a plain `pip install kawal` gives)."""
    r = _run(
        [
            str(installed / "bin" / "python"),
            "-c",
            "import importlib.util as u; "
            "print([m for m in ('pytest', 'schemathesis', 'playwright') if u.find_spec(m)])",
        ],
        tmp_path,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


@pytest.mark.slow
def test_the_wheel_carries_the_boundaries_and_their_attribution(installed: Path, tmp_path: Path) -> None:
    """kawal/data/ is package data: the places of alerts work from the installed wheel alone."""
    code = (
        "import importlib.resources as r; from kawal.places import load_places; p = load_places(); "
        "print(len(p.kecamatan), len(p.desa), 'Cahya DSN' in r.files('kawal').joinpath('data/README.md').read_text())"
    )
    r = _run([str(installed / "bin" / "python"), "-c", code], tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["21", "306", "True"]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_constraints_pin_every_declared_dependency() -> None:
    """constraints.txt pins each dependency of pyproject.toml (runtime and test extra), within its range."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pins: dict[str, Version] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not an exact pin"
            pins[_canonical(name)] = Version(version)
    problems = []
    for text in [*project["dependencies"], *project["optional-dependencies"]["test"]]:
        req = Requirement(text)
        pinned = pins.get(_canonical(req.name))
        if pinned is None:
            problems.append(f"{req.name} is not pinned in constraints.txt")
        elif not req.specifier.contains(pinned, prereleases=True):
            problems.append(f"{req.name}=={pinned} is outside {req.specifier} of pyproject.toml")
        elif not any(s.operator in ("<", "<=", "==", "~=") for s in req.specifier):
            problems.append(f"{req.name} has no upper bound in pyproject.toml")
    assert not problems, "\n".join(problems)
