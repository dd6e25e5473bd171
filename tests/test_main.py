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


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "is empty"),
        (b"\n  \n", "is empty"),
        (b"short", "does not hold a valid token"),
        (b"has spaces in it but is long enough to pass a length check", "does not hold a valid token"),
        (b"\xff\xfe" * 20, "is not ASCII text"),
    ],
)
def test_empty_or_malformed_admin_token_refuses_to_start(tmp_path: Path, content: bytes, reason: str) -> None:
    from lsp_node.admin import load_or_create_token

    token_file = tmp_path / "admin.token"
    token_file.write_bytes(content)
    with pytest.raises(ConfigError, match=reason) as e:
        load_or_create_token(token_file)
    assert str(token_file) in str(e.value) and f"delete {token_file}" in str(e.value)


def test_empty_token_file_stops_the_process(tmp_path: Path) -> None:
    net_dir = tmp_path / "data" / "regtest"
    net_dir.mkdir(parents=True)
    (net_dir / "admin.token").write_text("")
    proc = start(write_config(tmp_path))
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert "admin.token is empty" in err and "delete" in err


def test_token_is_written_atomically_with_mode_0600(tmp_path: Path) -> None:
    from lsp_node.admin import TOKEN_RE, load_or_create_token

    path = tmp_path / "admin.token"
    token = load_or_create_token(path)
    assert TOKEN_RE.fullmatch(token)
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.read_text() == token + "\n"
    assert [p.name for p in tmp_path.iterdir()] == ["admin.token"]  # no temporary file left behind
    assert load_or_create_token(path) == token


@pytest.mark.parametrize("listen", ["9736", ":9736", "localhost", "127.0.0.1:", "127.0.0.1:99999", "127.0.0.1:x"])
def test_listen_address_needs_host_and_port(tmp_path: Path, listen: str) -> None:
    with pytest.raises(ConfigError, match=r"admin\.listen.*host:port"):
        load_settings(None, {"admin": {"listen": listen}})
    with pytest.raises(ConfigError, match=r"node\.listen_addr.*host:port"):
        load_settings(None, {"node": {"listen_addr": listen}})


def test_bare_admin_port_on_the_command_line_is_an_error(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "main.py", "--config", str(write_config(tmp_path)), "--admin-listen", "9736"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "admin.listen" in proc.stderr and "give the host too" in proc.stderr


@pytest.mark.parametrize(
    ("section", "wrong", "right"),
    [
        ("node", "listen_adr", "node.listen_addr"),
        ("lsp", "max_hold_block", "lsp.max_hold_blocks"),
        ("lsp", "mailbox_max_mesages", "lsp.mailbox_max_messages"),
        ("notifications", "cooldown_sec", "notifications.cooldown_secs"),
        ("admin", "listn", "admin.listen"),
        ("chain", "esplora_uri", "chain.esplora_url"),
    ],
)
def test_unknown_key_in_the_file_is_named_with_a_suggestion(
    tmp_path: Path, section: str, wrong: str, right: str
) -> None:
    cfg = tmp_path / "lsp.toml"
    cfg.write_text(f"[{section}]\n{wrong} = 1\n")
    with pytest.raises(ConfigError) as e:
        load_settings(cfg)
    assert f"unknown key '{section}.{wrong}' in {cfg}; did you mean '{right}'?" in str(e.value)


def test_unknown_section_env_and_command_line_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "lsp.toml"
    cfg.write_text("[notificatons]\ncooldown_secs = 1\n")
    with pytest.raises(ConfigError, match=r"unknown key 'notificatons' .*did you mean 'notifications'\?"):
        load_settings(cfg)
    monkeypatch.setenv("LSP_LSP__MAX_HOLD_BLOCK", "5")
    with pytest.raises(
        ConfigError,
        match=r"unknown environment variable LSP_LSP__MAX_HOLD_BLOCK; did you mean LSP_LSP__MAX_HOLD_BLOCKS\?",
    ):
        load_settings(None)
    monkeypatch.delenv("LSP_LSP__MAX_HOLD_BLOCK")
    monkeypatch.setenv("LSP_NODE__NETWORK__X", "5")
    with pytest.raises(ConfigError, match="LSP_NODE__NETWORK has no sub-keys"):
        load_settings(None)
    monkeypatch.delenv("LSP_NODE__NETWORK__X")
    with pytest.raises(
        ConfigError, match=r"unknown key 'admin.lisen' on the command line; did you mean 'admin.listen'\?"
    ):
        load_settings(None, {"admin": {"lisen": "127.0.0.1:1"}})
    # A platform name under notifications.templates is the operator's own key.
    monkeypatch.setenv("LSP_NOTIFICATIONS__TEMPLATES__PHONE", "json://127.0.0.1:1/p/{device}")
    assert load_settings(None).notifications.templates == {"phone": "json://127.0.0.1:1/p/{device}"}


def test_unknown_command_line_option_suggests_the_closest(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "main.py", "--config", str(write_config(tmp_path)), "--admin-lisen", "127.0.0.1:0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "unrecognized arguments: --admin-lisen" in proc.stderr and "did you mean --admin-listen?" in proc.stderr
