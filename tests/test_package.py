"""What `pip install` of the project's wheel gives an operator, and what the Dockerfile relies on.

There is no Docker engine on the development machine (only the client), so the image itself is not
built here. Instead: the wheel is built with maturin (the dev profile and the build's own
CARGO_TARGET_DIR, so a warm cache makes it quick; the Dockerfile makes a release build of the same
wheel), installed with its dependencies from PyPI into a fresh virtualenv, and run from there the
way the image runs it: the Dockerfile's own ENTRYPOINT, in a folder laid out like the image's /app
(config/ and nothing else from the source tree), stopped by its STOPSIGNAL."""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# The Makefile's default, so that a plain `pytest` reuses what `make build` compiled.
TARGET_DIR = os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache" / "lsp_node" / "target"))


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path

    def bin(self, name: str) -> str:
        return str(self.venv / "bin" / name)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [str(BIN / "maturin"), "build", "--profile", "dev", "--locked", "--quiet", "--out", str(out)],
        cwd=ROOT,
        env={**os.environ, "CARGO_TARGET_DIR": TARGET_DIR},
        check=True,
        capture_output=True,
        timeout=1800,  # a cold cache compiles the engine; warm, seconds
    )
    (wheel,) = out.glob("lsp_node-*.whl")
    venv = tmp_path_factory.mktemp("venv") / "venv"
    # A fresh virtualenv of the base interpreter: nothing of the test's own environment leaks in.
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", str(wheel)], capture_output=True, text=True, timeout=600
    )
    assert pip.returncode == 0, pip.stderr
    return Installed(wheel, venv)


def package_files() -> set[str]:
    """Every file of the package in the source tree that git would ship (tracked, or new and not
    ignored): .py modules, the stub, py.typed, and any template or static file."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", "--", "lsp_node"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return {f for f in out.split("\0") if f and (ROOT / f).is_file()}


def test_wheel_holds_the_package_its_data_and_the_console_script(installed: Installed) -> None:
    with zipfile.ZipFile(installed.wheel) as z:
        names = set(z.namelist())
        (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
        scripts = z.read(entry_points).decode()
    source = package_files()
    assert "lsp_node/py.typed" in source and "lsp_node/_ldk.pyi" in source and "lsp_node/cli/__init__.py" in source
    assert source - names == set(), "files of the package missing from the wheel"
    # Non-Python package data is not left behind: the stub, the marker, and the dashboard's
    # templates and static files (maturin takes every file under the package folder that git
    # does not ignore; no `include` is needed for them).
    web = {f for f in source if f.endswith((".html", ".css", ".js"))}
    assert web <= names, f"templates or static files missing from the wheel: {sorted(web - names)}"
    assert {"lsp_node/py.typed", "lsp_node/_ldk.pyi"} <= names
    assert any(re.fullmatch(r"lsp_node/_ldk\.[\w.-]+\.so", n) for n in names), "the compiled engine"
    assert not any("__pycache__" in n or n.startswith(("tests/", "engine/")) for n in names)
    entry = configparser.ConfigParser()
    entry.read_string(scripts)
    assert dict(entry["console_scripts"]) == {"lsp-node": "lsp_node.cli:main"}


def test_installed_commands_run_outside_the_source_tree(installed: Installed, tmp_path: Path) -> None:
    def run(*cmd: str) -> subprocess.CompletedProcess[str]:
        # cwd outside the clone: `lsp_node` can only come from the virtualenv.
        return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=60, env=clean_env())

    where = run(installed.bin("python"), "-c", "import lsp_node._ldk, lsp_node; print(lsp_node.__file__)")
    assert where.returncode == 0, where.stderr
    assert where.stdout.strip().startswith(str(installed.venv)), where.stdout
    top = run(installed.bin("lsp-node"), "--help")
    assert top.returncode == 0 and "usage: lsp-node" in top.stdout and re.search(r"^\s+run\s", top.stdout, re.M)
    sub = run(installed.bin("lsp-node"), "run", "--help")
    assert sub.returncode == 0 and "usage: lsp-node run" in sub.stdout and "--log-format" in sub.stdout
    module = run(installed.bin("python"), "-m", "lsp_node", "--help")
    assert module.returncode == 0 and module.stdout == top.stdout


def clean_env() -> dict[str, str]:
    """The environment without the test's virtualenv or LSP_* settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LSP_", "VIRTUAL_ENV", "PYTHON"))}
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != str(BIN))
    return env


def dockerfile() -> list[tuple[str, str]]:
    """The Dockerfile's instructions as (INSTRUCTION, arguments), continuation lines joined."""
    text = re.sub(r"\\\n", " ", (ROOT / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


def test_dockerfile_copies_what_the_wheel_build_needs() -> None:
    """The build stage copies only some of the clone: every path maturin and cargo read must be in it."""
    steps = dockerfile()
    build_stage = steps[: [i for i, (k, _) in enumerate(steps) if k == "FROM"][1]]
    copied = {src.rstrip("/") for k, args in build_stage if k == "COPY" for src in args.split()[:-1]}
    assert any(k == "RUN" and "maturin build" in args and "--locked" in args for k, args in build_stage)
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())
    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())
    maturin = meta["tool"]["maturin"]
    needed = [
        "pyproject.toml",
        "Cargo.toml",
        "Cargo.lock",
        maturin["manifest-path"],
        *maturin["python-packages"],
        *maturin.get("include", []),
        *cargo["workspace"]["members"],
    ]
    for key in ("readme", "license-files"):
        if isinstance(meta["project"].get(key), str):
            needed.append(meta["project"][key])
    for path in needed:
        top = Path(path).parts[0]
        assert top in copied, f"the Dockerfile's build stage does not copy {top} (needed for {path})"
        assert (ROOT / top).exists()


def test_dockerfile_entrypoint_starts_the_installed_node_and_stops_on_its_stopsignal(
    installed: Installed, tmp_path: Path
) -> None:
    """The image's command, run from the wheel alone in a folder laid out like its /app."""
    steps = dict(dockerfile())  # the last of each instruction: the runtime stage's
    entrypoint = json.loads(steps["ENTRYPOINT"])
    assert entrypoint[:2] == ["lsp-node", "run"], "the image runs the console script"
    assert steps["STOPSIGNAL"] == "SIGTERM" and steps["WORKDIR"] == "/app"
    app = tmp_path / "app"
    runtime = [args for k, args in dockerfile()[[k for k, _ in dockerfile()].index("FROM", 1) :] if k == "COPY"]
    for args in runtime:
        if args.startswith("--from="):
            continue
        src, dest = args.split()
        if (ROOT / src).is_dir():
            shutil.copytree(ROOT / src, app / dest)
        else:
            (app / dest).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / src, app / dest)
    assert (app / "config" / "lsp.toml").is_file()
    # The image's own config on this machine: any free ports, so that nothing here is in the way.
    cmd = [installed.bin(entrypoint[0]), *entrypoint[1:], "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"]
    proc = subprocess.Popen(cmd, cwd=app, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=clean_env())
    try:
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            lines.append(line)
            if line.startswith("running"):
                break
        assert lines and lines[-1].startswith("running"), (lines, proc.stderr.read() if proc.stderr else "")
        assert re.match(r"node id:\s+0[23][0-9a-f]{64}$", lines[0])
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    assert proc.returncode == 0 and "stopped" in out, err
    # State went to the volume's place, data/<network>/, relative to the working directory.
    assert (app / "data" / "regtest" / "seed.mnemonic").is_file()
