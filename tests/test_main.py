"""The operator's run command: `lsp-node run` (the console script) and `python main.py` (its shim)
with a config file, on the embedded chain, stopped by SIGTERM or Ctrl-C; its log on stderr or in a
file reopened on SIGHUP, as text or JSON lines."""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from lsp_node.cli.client import AdminClient, AdminError, admin_url, read_token
from lsp_node.config import load_settings
from lsp_node.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
#: The console script `pip install` (here `maturin develop`) put beside the interpreter.
LSP_NODE = Path(sys.executable).parent / "lsp-node"
#: The two ways to start the node: they must behave the same.
LAUNCHERS = {"lsp-node run": [str(LSP_NODE), "run"], "main.py": [sys.executable, "main.py"]}


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


#: Processes started by the running test, killed at its end if a failed assertion left them running.
_started: list[subprocess.Popen[str]] = []


@pytest.fixture(autouse=True)
def _no_process_left_behind() -> Iterator[None]:
    yield
    while _started:
        proc = _started.pop()
        if proc.poll() is None:
            proc.kill()
        proc.communicate(timeout=30)


def start(
    cfg: Path, env: dict[str, str] | None = None, launcher: str = "main.py", args: tuple[str, ...] = ()
) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [*LAUNCHERS[launcher], "--config", str(cfg), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    _started.append(proc)
    return proc


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


def stop(proc: subprocess.Popen[str], sig: signal.Signals = signal.SIGINT) -> tuple[int, str, str]:
    """Send `sig`; the exit code, stdout and stderr."""
    proc.send_signal(sig)
    try:
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, out, err


def until(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_console_script_lsp_node_run_prints_identity_and_stops_on_sigterm(tmp_path: Path) -> None:
    """`lsp-node run` as an operator (or systemd, or Docker's STOPSIGNAL) runs it: SIGTERM is a
    clean stop (exit 0, "stopped"), and everything is there at the next start."""
    assert LSP_NODE.is_file(), f"no console script at {LSP_NODE}: run `make build`"
    cfg = write_config(tmp_path)
    proc = start(cfg, launcher="lsp-node run")
    info = read_startup(proc)
    assert re.fullmatch(r"0[23][0-9a-f]{64}", info["node id"])
    assert re.fullmatch(r"127\.0\.0\.1:\d+", info["listening on"])
    assert int(info["chain height"]) == 102  # 101 faucet blocks + the block funding our wallet
    assert info["wallet address"].startswith("bcrt1q")
    assert info["admin api"].startswith("http://127.0.0.1:")
    # The admin commands' client finds this node from the same config file and its token.
    url = info["admin api"].split()[0]
    client = AdminClient.from_args(argparse.Namespace(config=cfg, admin_url=url))
    assert client.call("GET", "/api/info")["node_id"] == info["node id"]
    assert client.call("GET", "/api/peers") == []
    with pytest.raises(AdminError, match=r"POST /api/connect: 400 .*field 'address' must be host:port") as bad:
        client.call("POST", "/api/connect", {"node_id": "02" + "11" * 32, "address": "no port"})
    assert bad.value.status == 400
    with pytest.raises(AdminError, match="401 missing or wrong bearer token") as denied:
        AdminClient(url, "x" * 43).call("GET", "/api/info")
    assert denied.value.status == 401
    code, out, err = stop(proc, signal.SIGTERM)
    assert code == 0 and "stopped" in out
    assert "Traceback" not in err and "INFO lsp_node: stopping" in err

    seed = tmp_path / "data" / "regtest" / "seed.mnemonic"
    assert seed.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "data" / "regtest" / "admin.token").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "data" / "regtest").stat().st_mode & 0o777 == 0o700
    words = seed.read_text().split()
    assert len(words) == 24
    log_text = (tmp_path / "data" / "regtest" / "ldk.log").read_text()
    assert not any(w in log_text.split() for w in words[:3] if len(w) > 6), "seed words must never be logged"

    # Restart (through main.py, Ctrl-C): same identity, same chain, no second funding, same token.
    token = (tmp_path / "data" / "regtest" / "admin.token").read_text()
    proc = start(cfg)
    again = read_startup(proc)
    assert again["node id"] == info["node id"]
    assert int(again["chain height"]) == 102
    assert stop(proc)[0] == 0
    assert (tmp_path / "data" / "regtest" / "admin.token").read_text() == token


def test_log_file_is_reopened_on_sighup_and_json_lines_parse(tmp_path: Path) -> None:
    """logrotate's way: rename the file, SIGHUP; new lines land in a new file at the old path.
    With --log-format json every line of both files is one JSON object."""
    log_file = tmp_path / "logs" / "lsp.log"  # the folder does not exist yet: the node makes it
    cfg = write_config(tmp_path)
    proc = start(cfg, launcher="lsp-node run", args=("--log-file", str(log_file), "--log-format", "json"))
    read_startup(proc)
    # A first SIGHUP with the file in place: it keeps writing there (and the file has a line).
    proc.send_signal(signal.SIGHUP)
    until(lambda: "log file reopened" in log_file.read_text(), "a line in the log file")
    rotated = log_file.with_name("lsp.log.1")
    log_file.rename(rotated)
    proc.send_signal(signal.SIGHUP)
    until(lambda: log_file.is_file() and "log file reopened" in log_file.read_text(), "the reopened log file")
    code, out, err = stop(proc, signal.SIGTERM)
    assert code == 0 and "stopped" in out
    assert err == "", "with a log file, nothing is logged on stderr"

    def records(path: Path) -> list[dict[str, str]]:
        lines = path.read_text().splitlines()
        assert lines, f"{path} is empty"
        out = [json.loads(line) for line in lines]
        for r in out:
            assert set(r) >= {"ts", "level", "logger", "message"}
            assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", r["ts"])
            assert r["level"] in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}
        return out

    reopened = {"message": "log file reopened (SIGHUP)", "logger": "lsp_node", "level": "INFO"}.items()
    before, after = records(rotated), records(log_file)
    assert sum(reopened <= r.items() for r in before) == 1
    assert sum(reopened <= r.items() for r in after) == 1
    assert any(r["message"] == "stopping" for r in after)
    assert not any(r["message"] == "stopping" for r in before)
    # Both files (the first and the one SIGHUP created) are the owner's only.
    assert rotated.stat().st_mode & 0o777 == 0o600 and log_file.stat().st_mode & 0o777 == 0o600


def test_log_settings_from_the_file_text_lines_appended(tmp_path: Path) -> None:
    """node.log_file and node.log_format in the config file; a second run appends; a SIGHUP with
    the file in place keeps writing to it."""
    log_file = tmp_path / "lsp.log"
    cfg = write_config(tmp_path, f'log_file = "{log_file}"\nlog_format = "text"\n')
    for run in (1, 2):
        proc = start(cfg)
        read_startup(proc)
        proc.send_signal(signal.SIGHUP)
        until(lambda n=run: log_file.read_text().count("log file reopened") == n, "the reopened log")
        assert stop(proc, signal.SIGTERM)[0] == 0
    lines = log_file.read_text().splitlines()
    assert sum("INFO lsp_node: stopping" in line for line in lines) == 2
    assert sum("log file reopened (SIGHUP)" in line for line in lines) == 2
    assert all(re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} [A-Z]+ \S+: ", line) for line in lines)
    with pytest.raises(ConfigError, match=r"node\.log_format"):
        load_settings(cfg, {"node": {"log_format": "xml"}})


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


@pytest.mark.parametrize("launcher", list(LAUNCHERS))
def test_empty_token_file_stops_the_process(tmp_path: Path, launcher: str) -> None:
    """A configuration error found once the engine runs: exit code 2 and the sentence, either way."""
    net_dir = tmp_path / "data" / "regtest"
    net_dir.mkdir(parents=True)
    (net_dir / "admin.token").write_text("")
    proc = start(write_config(tmp_path), launcher=launcher)
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


@pytest.mark.parametrize("launcher", list(LAUNCHERS))
def test_unknown_command_line_option_suggests_the_closest(tmp_path: Path, launcher: str) -> None:
    proc = subprocess.run(
        [*LAUNCHERS[launcher], "--config", str(write_config(tmp_path)), "--admin-lisen", "127.0.0.1:0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "unrecognized arguments: --admin-lisen" in proc.stderr and "did you mean --admin-listen?" in proc.stderr


def lsp_node(*args: str, module: bool = False) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "lsp_node"] if module else [str(LSP_NODE)]
    return subprocess.run([*cmd, *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("module", [False, True], ids=["lsp-node", "python -m lsp_node"])
def test_commands_help_and_usage_errors(module: bool) -> None:
    top = lsp_node("--help", module=module)
    assert top.returncode == 0 and "usage: lsp-node" in top.stdout
    assert re.search(r"^\s+run\s+run the LSP node", top.stdout, re.M), top.stdout
    run = lsp_node("run", "--help", module=module)
    assert run.returncode == 0
    for option in ("--config", "--data-dir", "--listen", "--admin-listen", "--log-file", "--log-format"):
        assert option in run.stdout
    bare = lsp_node(module=module)
    assert bare.returncode == 2 and "usage: lsp-node" in bare.stderr and bare.stdout == ""
    typo = lsp_node("runn", module=module)
    assert typo.returncode == 2 and "invalid choice: 'runn'" in typo.stderr and "did you mean run?" in typo.stderr


def test_admin_client_finds_the_node_from_the_config_or_says_why_not(tmp_path: Path) -> None:
    def url(listen: str) -> str:
        return admin_url(load_settings(None, {"admin": {"listen": listen}}))

    assert url("127.0.0.1:9736") == "http://127.0.0.1:9736"
    assert url("0.0.0.0:9736") == "http://127.0.0.1:9736"  # a wildcard is reached on loopback
    assert url("[::]:9736") == "http://[::1]:9736"
    assert url("[::1]:19736") == "http://[::1]:19736"
    with pytest.raises(ConfigError, match=r"port 0.*--admin-url"):
        url("127.0.0.1:0")
    with pytest.raises(ConfigError, match=r"no admin token at .*admin\.token: start the node once"):
        read_token(tmp_path / "admin.token")
    (tmp_path / "admin.token").write_text("not a token\n")
    with pytest.raises(ConfigError, match="does not hold a valid token") as e:
        read_token(tmp_path / "admin.token")
    assert "not a token" not in str(e.value)
    # Nothing listens there: a clear sentence, not a traceback.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{s.getsockname()[1]}"
    with pytest.raises(AdminError, match=r"cannot reach the admin API at http://127\.0\.0\.1:\d+ .*lsp-node run"):
        AdminClient(closed, "x" * 43, timeout=5).call("GET", "/api/info")


def test_admin_client_sends_its_token_to_no_proxy_and_follows_no_redirect(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The CLI's token goes to the admin address only: not through the environment's http_proxy
    (which would see it in clear), not on to where a redirect points."""
    import http.server
    import threading

    seen: list[tuple[str, str | None]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append((self.path, self.headers.get("Authorization")))
            if self.path == "/api/info":
                self.send_response(302)
                self.send_header("Location", f"http://127.0.0.1:{self.server.server_address[1]}/elsewhere")
                self.end_headers()
            else:
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    for s in (server, proxy):
        threading.Thread(target=s.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.server_address[1]}")
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        url = f"http://127.0.0.1:{server.server_address[1]}"
        with pytest.raises(AdminError, match="302"):
            AdminClient(url, "t" * 43, timeout=5).call("GET", "/api/info")
    finally:
        for s in (server, proxy):
            s.shutdown()
            s.server_close()
    # One request, to the admin address itself (a proxy sees the absolute URL as its path).
    assert seen == [("/api/info", "Bearer " + "t" * 43)]
