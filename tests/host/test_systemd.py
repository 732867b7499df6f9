"""Tests for host.systemd: sd_notify over a real socket, status line, env scrubbing, unit file."""

from __future__ import annotations

import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
from hypothesis import given, settings, strategies as st

from host.systemd import (
    Notifier,
    UnitOptions,
    child_environment,
    quote_exec_argv,
    render_unit,
    status_line,
)

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="abstract sockets are Linux-only")


# --------------------------------------------------------------------------- #
# fixtures: a real AF_UNIX datagram socket standing in for systemd
# --------------------------------------------------------------------------- #


class Receiver:
    def __init__(self, sock: socket.socket, notify_socket: str) -> None:
        self.sock = sock
        self.notify_socket = notify_socket  # the NOTIFY_SOCKET value

    def recv(self) -> str:
        return self.sock.recv(4096).decode()

    def assert_empty(self) -> None:
        self.sock.setblocking(False)
        try:
            with pytest.raises(BlockingIOError):
                self.sock.recv(4096)
        finally:
            self.sock.settimeout(2.0)


@pytest.fixture
def path_receiver(tmp_path):
    path = tmp_path / "notify.sock"
    short_dir = None
    if len(os.fsencode(path)) > 100:  # sun_path is 108 bytes; pytest tmp dirs can be long
        short_dir = tempfile.mkdtemp(prefix="th-")
        path = Path(short_dir) / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(2.0)
    try:
        yield Receiver(sock, str(path))
    finally:
        sock.close()
        if short_dir is not None:
            shutil.rmtree(short_dir, ignore_errors=True)


@pytest.fixture
def abstract_receiver():
    if not sys.platform.startswith("linux"):
        pytest.skip("abstract sockets are Linux-only")
    name = f"tradehost-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2.0)
    try:
        yield Receiver(sock, "@" + name)
    finally:
        sock.close()


@pytest.fixture(params=["path", "abstract"])
def receiver(request):
    return request.getfixturevalue(f"{request.param}_receiver")


# --------------------------------------------------------------------------- #
# Notifier
# --------------------------------------------------------------------------- #


def test_enabled_with_socket(receiver):
    notifier = Notifier({"NOTIFY_SOCKET": receiver.notify_socket})
    assert notifier.enabled is True


def test_ready_sends_exact_datagram(receiver):
    notifier = Notifier({"NOTIFY_SOCKET": receiver.notify_socket})
    assert notifier.ready() is True
    assert receiver.recv() == f"READY=1\nMAINPID={os.getpid()}"


def test_ready_with_status(receiver):
    notifier = Notifier({"NOTIFY_SOCKET": receiver.notify_socket})
    assert notifier.ready("7 running, 2 idle") is True
    assert receiver.recv() == f"READY=1\nSTATUS=7 running, 2 idle\nMAINPID={os.getpid()}"


def test_status(receiver):
    notifier = Notifier({"NOTIFY_SOCKET": receiver.notify_socket})
    assert notifier.status("3 running") is True
    assert receiver.recv() == "STATUS=3 running"


def test_status_newlines_cannot_inject_fields(receiver):
    notifier = Notifier({"NOTIFY_SOCKET": receiver.notify_socket})
    assert notifier.status("line one\nREADY=1") is True
    assert receiver.recv() == "STATUS=line one READY=1"


def test_watchdog(receiver):
    notifier = Notifier({"NOTIFY_SOCKET": receiver.notify_socket})
    assert notifier.watchdog() is True
    assert receiver.recv() == "WATCHDOG=1"


def test_stopping(receiver):
    notifier = Notifier({"NOTIFY_SOCKET": receiver.notify_socket})
    assert notifier.stopping() is True
    assert receiver.recv() == "STOPPING=1"


def test_reloading_then_reloaded(receiver):
    notifier = Notifier({"NOTIFY_SOCKET": receiver.notify_socket})
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert notifier.reloading() is True
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    match = re.fullmatch(r"RELOADING=1\nMONOTONIC_USEC=(\d+)", receiver.recv())
    assert match, "unexpected RELOADING datagram"
    assert before <= int(match.group(1)) <= after

    assert notifier.reloaded() is True
    assert receiver.recv() == "READY=1"
    assert notifier.reloaded("reloaded") is True
    assert receiver.recv() == "READY=1\nSTATUS=reloaded"


def test_send_joins_fields_with_newlines(receiver):
    notifier = Notifier({"NOTIFY_SOCKET": receiver.notify_socket})
    assert notifier.send("STATUS=x", "EXTEND_TIMEOUT_USEC=5000000") is True
    assert receiver.recv() == "STATUS=x\nEXTEND_TIMEOUT_USEC=5000000"
    receiver.assert_empty()


def test_each_call_is_one_datagram(receiver):
    notifier = Notifier({"NOTIFY_SOCKET": receiver.notify_socket})
    notifier.status("a")
    notifier.watchdog()
    assert [receiver.recv(), receiver.recv()] == ["STATUS=a", "WATCHDOG=1"]
    receiver.assert_empty()


def test_reads_os_environ_by_default(monkeypatch, path_receiver):
    monkeypatch.setenv("NOTIFY_SOCKET", path_receiver.notify_socket)
    notifier = Notifier()
    assert notifier.enabled
    assert notifier.stopping()
    assert path_receiver.recv() == "STOPPING=1"


def test_no_socket_is_disabled_and_silent(caplog):
    notifier = Notifier({})
    assert notifier.enabled is False
    with caplog.at_level(logging.DEBUG, logger="host.systemd"):
        assert notifier.send("READY=1") is False
        assert notifier.ready("x") is False
        assert notifier.status("x") is False
        assert notifier.reloading() is False
        assert notifier.reloaded() is False
        assert notifier.stopping() is False
        assert notifier.watchdog() is False
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_os_environ_without_socket(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    assert Notifier().enabled is False


@pytest.mark.parametrize("value", ["", "relative/path.sock", "vsock:2:1234"])
def test_unsupported_socket_values_disable(value):
    notifier = Notifier({"NOTIFY_SOCKET": value})
    assert notifier.enabled is False
    assert notifier.watchdog() is False


def test_vanished_socket_returns_false_and_warns_once(tmp_path, caplog):
    path = tmp_path / "gone.sock"
    if len(os.fsencode(path)) > 100:
        path = Path(tempfile.gettempdir()) / f"th-gone-{uuid.uuid4().hex[:8]}.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.close()
    path.unlink()

    notifier = Notifier({"NOTIFY_SOCKET": str(path)})
    assert notifier.enabled is True
    with caplog.at_level(logging.DEBUG, logger="host.systemd"):
        assert notifier.ready() is False
        assert notifier.watchdog() is False
        assert notifier.stopping() is False
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert str(path) in warnings[0].getMessage()


def test_closed_but_present_socket_returns_false(tmp_path):
    # The file still exists but nobody listens: ECONNREFUSED, not an exception.
    path = tmp_path / "dead.sock"
    if len(os.fsencode(path)) > 100:
        path = Path(tempfile.gettempdir()) / f"th-dead-{uuid.uuid4().hex[:8]}.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.close()
    try:
        assert Notifier({"NOTIFY_SOCKET": str(path)}).watchdog() is False
    finally:
        path.unlink(missing_ok=True)


@linux_only
def test_abstract_socket_without_listener_returns_false():
    notifier = Notifier({"NOTIFY_SOCKET": f"@tradehost-nobody-{uuid.uuid4().hex}"})
    assert notifier.enabled is True
    assert notifier.watchdog() is False


# -- watchdog_interval --------------------------------------------------------


def test_watchdog_interval_absent():
    assert Notifier({}).watchdog_interval is None
    assert Notifier({"NOTIFY_SOCKET": "/run/x"}).watchdog_interval is None


def test_watchdog_interval_is_half_of_usec():
    notifier = Notifier({"WATCHDOG_USEC": "30000000"})
    assert notifier.watchdog_interval == pytest.approx(15.0)


def test_watchdog_interval_for_own_pid():
    notifier = Notifier({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid())})
    assert notifier.watchdog_interval == pytest.approx(5.0)


def test_watchdog_interval_foreign_pid_is_none():
    notifier = Notifier({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid() + 1)})
    assert notifier.watchdog_interval is None


@pytest.mark.parametrize("usec", ["", "0", "-5", "abc"])
def test_watchdog_interval_invalid_usec(usec):
    assert Notifier({"WATCHDOG_USEC": usec}).watchdog_interval is None


def test_watchdog_interval_invalid_pid_is_none():
    assert Notifier({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": "nope"}).watchdog_interval is None


# --------------------------------------------------------------------------- #
# status_line
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ({"running": 7, "idle": 2, "invalid": 1, "stopped": 0}, "7 running, 2 idle, 1 invalid"),
        ({"invalid": 1, "idle": 2, "running": 7}, "7 running, 2 idle, 1 invalid"),
        (
            {"invalid": 8, "fatal": 7, "stopped": 6, "idle": 5, "backoff": 4,
             "stopping": 3, "starting": 2, "running": 1},
            "1 running, 2 starting, 3 stopping, 4 backoff, 5 idle, 6 stopped, 7 fatal, 8 invalid",
        ),
        ({"backoff": 1}, "1 backoff"),
        ({"running": 0, "idle": 0}, "no strategies"),
        ({}, "no strategies"),
        ({"running": 1, "zombie": 2, "exited": 3}, "1 running, 3 exited, 2 zombie"),
    ],
)
def test_status_line(counts, expected):
    assert status_line(counts) == expected


# --------------------------------------------------------------------------- #
# child_environment
# --------------------------------------------------------------------------- #

SCRUB = ["NOTIFY_SOCKET", "WATCHDOG_*", "*_API_KEY", "*_SECRET"]


def test_child_environment_scrubs():
    environ = {
        "PATH": "/usr/bin:/bin",
        "HOME": "/home/trader",
        "NOTIFY_SOCKET": "/run/systemd/notify",
        "WATCHDOG_USEC": "30000000",
        "WATCHDOG_PID": "1234",
        "FOO_API_KEY": "hunter2",
        "BAR_SECRET": "s3cr3t",
        "LANG": "C.UTF-8",
    }
    assert child_environment(environ, SCRUB) == {
        "PATH": "/usr/bin:/bin",
        "HOME": "/home/trader",
        "LANG": "C.UTF-8",
    }
    assert "NOTIFY_SOCKET" in environ  # not modified in place


def test_child_environment_is_case_sensitive():
    environ = {"foo_api_key": "x", "Notify_Socket": "y", "FOO_API_KEY": "z"}
    assert child_environment(environ, SCRUB) == {"foo_api_key": "x", "Notify_Socket": "y"}


def test_child_environment_returns_a_fresh_dict():
    environ = {"PATH": "/bin"}
    result = child_environment(environ, [])
    assert result == environ and result is not environ
    assert isinstance(result, dict)


def test_child_environment_accepts_generator_and_single_string():
    environ = {"NOTIFY_SOCKET": "x", "N": "1", "PATH": "/bin"}
    assert child_environment(environ, (p for p in ["NOTIFY_SOCKET"])) == {"N": "1", "PATH": "/bin"}
    # A bare string is one pattern, not the patterns "N", "O", "T", ...
    assert child_environment(environ, "NOTIFY_SOCKET") == {"N": "1", "PATH": "/bin"}


def test_child_environment_from_os_environ(monkeypatch):
    monkeypatch.setenv("NOTIFY_SOCKET", "/run/x")
    monkeypatch.setenv("WATCHDOG_USEC", "1")
    monkeypatch.setenv("FOO_API_KEY", "k")
    env = child_environment(os.environ, SCRUB)
    assert "NOTIFY_SOCKET" not in env and "WATCHDOG_USEC" not in env and "FOO_API_KEY" not in env
    assert env["PATH"] == os.environ["PATH"]


# --------------------------------------------------------------------------- #
# unit file
# --------------------------------------------------------------------------- #


def parse_unit(text: str) -> dict[str, list[tuple[str, str]]]:
    """Sections -> [(key, value)], skipping comments and blank lines."""
    sections: dict[str, list[tuple[str, str]]] = {}
    current = None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith(("#", ";")):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections[current] = []
            continue
        key, _, value = line.partition("=")
        sections[current].append((key, value))
    return sections


def unit_value(sections, section: str, key: str) -> str:
    values = [v for k, v in sections[section] if k == key]
    assert len(values) == 1, f"{section}.{key}: {values}"
    return values[0]


_C_UNESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v",
                "\\": "\\", '"': '"', "'": "'", "s": " "}


def systemd_split(command: str) -> list[str]:
    """Model of systemd's ExecStart= parsing: split/unquote/unescape, then %% and $$."""
    words: list[str] = []
    i, n = 0, len(command)
    while i < n:
        while i < n and command[i] in " \t":
            i += 1
        if i >= n:
            break
        word, quote = [], None
        while i < n:
            ch = command[i]
            if quote is None and ch in " \t":
                break
            if ch == "\\":
                nxt = command[i + 1]
                if nxt == "x":
                    word.append(chr(int(command[i + 2:i + 4], 16)))
                    i += 4
                    continue
                word.append(_C_UNESCAPES[nxt])
                i += 2
                continue
            if quote is None and ch in "\"'":
                quote = ch
            elif ch == quote:
                quote = None
            else:
                word.append(ch)
            i += 1
        assert quote is None, "unterminated quote"
        raw = "".join(word)
        # Specifier expansion: only %% is legal in our output.
        assert re.fullmatch(r"(?:[^%]|%%)*", raw), f"stray specifier in {raw!r}"
        raw = raw.replace("%%", "%")
        # Environment expansion: only $$ is legal in our output.
        assert re.fullmatch(r"(?:[^$]|\$\$)*", raw), f"stray $ in {raw!r}"
        words.append(raw.replace("$$", "$"))
    return words


@pytest.fixture
def options():
    return UnitOptions(
        exec_start=["/opt/venv/bin/tradehost", "run", "--config", "/srv/trading/supervisor.toml"],
        working_directory=Path("/srv/trading"),
        timeout_stop_sec=75,
    )


def test_render_unit_content(options):
    text = render_unit(options)
    sections = parse_unit(text)
    assert list(sections) == ["Unit", "Service", "Install"]

    assert unit_value(sections, "Unit", "Description") == "tradehost strategy supervisor"
    assert unit_value(sections, "Unit", "After") == "network-online.target"
    assert unit_value(sections, "Unit", "Wants") == "network-online.target"

    expected = {
        "Type": "notify",
        "NotifyAccess": "main",
        "ExecStart": "/opt/venv/bin/tradehost run --config /srv/trading/supervisor.toml",
        "ExecReload": "/bin/kill -HUP $MAINPID",
        "WorkingDirectory": "/srv/trading",
        "Environment": "PYTHONUNBUFFERED=1",
        "KillMode": "mixed",
        "KillSignal": "SIGTERM",
        "TimeoutStopSec": "75",
        "WatchdogSec": "30",
        "Restart": "on-failure",
        "RestartSec": "5",
        "SyslogIdentifier": "tradehost",
        "NoNewPrivileges": "yes",
        "PrivateTmp": "yes",
        "TasksMax": "4096",
    }
    for key, value in expected.items():
        assert unit_value(sections, "Service", key) == value, key
    assert "User" not in dict(sections["Service"])
    assert unit_value(sections, "Install", "WantedBy") == "multi-user.target"
    assert text.endswith("\n")


def test_render_unit_comments_explain_kill_mode_and_timeout(options):
    comments = "\n".join(line for line in render_unit(options).splitlines() if line.startswith("#"))
    assert "KillMode=mixed" in comments and "SIGTERM" in comments and "SIGKILL" in comments
    assert "TimeoutStopSec" in comments and "grace" in comments


def test_render_unit_user_watchdog_description():
    sections = parse_unit(render_unit(UnitOptions(
        exec_start=["/usr/bin/tradehost", "run"],
        working_directory=Path("/srv/trading"),
        timeout_stop_sec=40,
        watchdog_sec=12,
        user="trader",
        description="Trading at 100% (desk A)",
    )))
    assert unit_value(sections, "Service", "User") == "trader"
    assert unit_value(sections, "Service", "WatchdogSec") == "12"
    assert unit_value(sections, "Service", "TimeoutStopSec") == "40"
    assert unit_value(sections, "Unit", "Description") == "Trading at 100%% (desk A)"


def test_render_unit_watchdog_zero_omits_watchdog():
    sections = parse_unit(render_unit(UnitOptions(["/usr/bin/tradehost"], Path("/srv"), 30, watchdog_sec=0)))
    assert "WatchdogSec" not in dict(sections["Service"])


def test_exec_start_quoting():
    argv = ["/opt/my venv/bin/tradehost", "run", "--name", "my strat", "--pct=50%",
            "--price=$5", 'say "hi"', "back\\slash", "", ";", "tab\there", "line\nbreak"]
    quoted = quote_exec_argv(argv)
    assert quoted == (
        '"/opt/my venv/bin/tradehost" run --name "my strat" "--pct=50%%" "--price=$$5" '
        '"say \\"hi\\"" "back\\\\slash" "" ";" "tab\\there" "line\\nbreak"'
    )
    assert systemd_split(quoted) == argv


def test_render_unit_quotes_exec_start():
    argv = ["/opt/venv/bin/tradehost", "run", "--config", "/srv/my trading/100%/$HOME.toml"]
    text = render_unit(UnitOptions(argv, Path("/srv/my trading/100%"), 30))
    sections = parse_unit(text)
    exec_start = unit_value(sections, "Service", "ExecStart")
    assert exec_start == '/opt/venv/bin/tradehost run --config "/srv/my trading/100%%/$$HOME.toml"'
    assert systemd_split(exec_start) == argv
    assert unit_value(sections, "Service", "WorkingDirectory") == "/srv/my trading/100%%"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\0")), max_size=6))
def test_exec_start_quoting_round_trips(args):
    argv = ["/usr/bin/tradehost", *args]
    assert systemd_split(quote_exec_argv(argv)) == argv


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"exec_start": []}, ValueError),
        ({"exec_start": "/usr/bin/tradehost run"}, TypeError),
        ({"exec_start": ["tradehost", "run"]}, ValueError),
        ({"exec_start": ["/opt/$x/tradehost"]}, ValueError),
        ({"working_directory": Path("relative")}, ValueError),
        ({"timeout_stop_sec": 0}, ValueError),
        ({"timeout_stop_sec": 1.5}, TypeError),
        ({"watchdog_sec": -1}, ValueError),
        ({"user": "two words"}, ValueError),
        ({"description": "a\n[Service]\nExecStartPre=/bin/evil"}, ValueError),
    ],
)
def test_unit_options_validation(kwargs, error):
    base = {"exec_start": ["/usr/bin/tradehost", "run"], "working_directory": Path("/srv"), "timeout_stop_sec": 30}
    with pytest.raises(error):
        UnitOptions(**{**base, **kwargs})


def test_unit_options_is_frozen_and_hashable():
    options = UnitOptions(["/usr/bin/tradehost", "run"], "/srv", 30)
    assert options.exec_start == ("/usr/bin/tradehost", "run")
    assert options.working_directory == Path("/srv")
    hash(options)
    with pytest.raises(AttributeError):
        options.watchdog_sec = 5  # type: ignore[misc]


# -- systemd-analyze verify ---------------------------------------------------

SYSTEMD_ANALYZE = shutil.which("systemd-analyze")


def _tradehost_executable() -> str:
    script = Path(sys.executable).parent / "tradehost"
    if script.is_file() and os.access(script, os.X_OK):
        return str(script)
    return sys.executable


@pytest.mark.skipif(SYSTEMD_ANALYZE is None, reason="systemd-analyze not installed")
@pytest.mark.parametrize("with_user", [False, True])
def test_systemd_analyze_verify(tmp_path, with_user):
    import pwd

    unit_name = "tradehost-test.service"
    config = tmp_path / "my config" / "supervisor 100%.toml"
    config.parent.mkdir()
    config.write_text("")
    options = UnitOptions(
        exec_start=[_tradehost_executable(), "run", "--config", str(config), "--note=$HOME costs 5%"],
        working_directory=tmp_path,
        timeout_stop_sec=75,
        watchdog_sec=30,
        user=pwd.getpwuid(os.getuid()).pw_name if with_user else None,
    )
    unit_path = tmp_path / unit_name
    unit_path.write_text(render_unit(options))

    result = subprocess.run(
        [SYSTEMD_ANALYZE, "verify", "--man=no", str(unit_path)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
    )
    # Containers and CI boxes print warnings about unrelated system units; only
    # lines about our unit count.
    ours = [line for line in result.stderr.splitlines() if unit_name in line or str(unit_path) in line]
    assert result.returncode == 0, result.stderr
    assert ours == [], "\n".join(ours)
