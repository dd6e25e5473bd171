"""The operator's run command: main.py with a config file, on the embedded chain, stopped by Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lsp_node.config import load_settings
from lsp_node.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def write_config(tmp_path: Path, extra: str = "") -> Path:
    cfg = tmp_path / "lsp.toml"
    cfg.write_text(
        f"""
[node]
data_dir = "{tmp_path / "data"}"
network = "regtest"
listen_addr = "127.0.0.1:0"
sync_interval_secs = 5
{extra}
[chain]
source = "embedded"
embedded_fund_sat = 2500000
[admin]
listen = "127.0.0.1:0"
"""
    )
    return cfg


def start(cfg: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "main.py", "--config", str(cfg)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )


def read_startup(proc: subprocess.Popen[str], timeout: float = 60) -> dict[str, str]:
    assert proc.stdout is not None
    info: dict[str, str] = {}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if line.startswith("running"):
            return info
        key, _, value = line.partition(":")
        info[key.strip()] = value.strip()
    proc.kill()
    raise AssertionError(f"main.py did not start: {info} {proc.stderr.read() if proc.stderr else ''}")


def stop(proc: subprocess.Popen[str]) -> tuple[int, str]:
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    return proc.returncode, out


def test_run_command_prints_identity_and_stops_cleanly(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    proc = start(cfg)
    info = read_startup(proc)
    assert re.fullmatch(r"0[23][0-9a-f]{64}", info["node id"])
    assert re.fullmatch(r"127\.0\.0\.1:\d+", info["listening on"])
    assert int(info["chain height"]) == 102  # 101 faucet blocks + the block funding our wallet
    assert info["wallet address"].startswith("bcrt1q")
    assert info["admin api"].startswith("http://127.0.0.1:")
    code, out = stop(proc)
    assert code == 0 and "stopped" in out

    seed = tmp_path / "data" / "regtest" / "seed.mnemonic"
    assert seed.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "data" / "regtest" / "admin.token").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "data" / "regtest").stat().st_mode & 0o777 == 0o700
    words = seed.read_text().split()
    assert len(words) == 24
    log_text = (tmp_path / "data" / "regtest" / "ldk.log").read_text()
    assert not any(w in log_text.split() for w in words[:3] if len(w) > 6), "seed words must never be logged"

    # Restart: same identity, same chain, no second funding.
    proc = start(cfg)
    again = read_startup(proc)
    assert again["node id"] == info["node id"]
    assert int(again["chain height"]) == 102
    assert stop(proc)[0] == 0


def test_environment_overrides_file_and_bad_config_is_reported(tmp_path: Path) -> None:
    cfg = write_config(tmp_path)
    proc = start(cfg, env={"LSP_NODE__NETWORK": "bitcoin"})
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "embedded chain is regtest only" in err

    with pytest.raises(ConfigError, match=r"node\.listen_addr"):
        load_settings(write_config(tmp_path, 'log_level = "info"\n'), {"node": {"listen_addr": "nope"}})
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "missing.toml")
    s = load_settings(cfg, {"node": {"log_level": "debug"}})
    assert s.node.log_level == "debug" and s.node.sync_interval_secs == 5
