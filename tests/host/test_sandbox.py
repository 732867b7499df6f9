"""The run sandbox: what it grants (pure), what a confined process can do (a real fork), and a real host."""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest

from host import sandbox
from host.sandbox import Entry, Grant, Reach, plan
from tests.host.conftest import Host, wait_for

LANDLOCK = sandbox.abi()
needs_landlock = pytest.mark.skipif(LANDLOCK == 0, reason="this kernel has no Landlock")

# ---------------------------------------------------------------- plan (pure)

TREE = {
    "/": [Entry("/etc", True), Entry("/srv", True), Entry("/bin", True, "/usr/bin"), Entry("/usr", True), Entry("/vmlinuz", False)],
    "/srv": [Entry("/srv/app", True), Entry("/srv/other", True), Entry("/srv/notes.txt", False)],
    "/srv/app": [
        Entry("/srv/app/state", True),
        Entry("/srv/app/strategies", True),
        Entry("/srv/app/supervisor.toml", False),
        Entry("/srv/app/key-link", False, "/srv/app/state/credentials.key"),
        Entry("/srv/app/up", True, "/srv"),
        Entry("/srv/app/data", True, "/srv/other/data"),
    ],
}


def entries(folder: str) -> Iterable[Entry]:
    return TREE.get(folder, [])


def test_everything_beside_the_protected_path_and_its_folders_is_granted_and_the_folders_only_listed() -> None:
    grants = plan(["/srv/app/state"], entries)
    assert [g for g in grants if g.reach is Reach.LIST] == [Grant("/", Reach.LIST), Grant("/srv", Reach.LIST), Grant("/srv/app", Reach.LIST)]
    granted = {g.path: g.reach for g in grants if g.reach is not Reach.LIST}
    assert granted["/etc"] is Reach.TREE and granted["/srv/other"] is Reach.TREE and granted["/srv/app/strategies"] is Reach.TREE
    # A file beside state/ or above it is read-only: one written there and renamed over a protected file would carry its grant.
    assert granted["/vmlinuz"] is Reach.READ_FILE and granted["/srv/notes.txt"] is Reach.READ_FILE
    assert granted["/srv/app/supervisor.toml"] is Reach.READ_FILE
    assert "/srv/app/state" not in granted


def test_a_symlink_is_granted_as_its_target_unless_that_leads_into_or_above_the_protected_path() -> None:
    granted = {g.path for g in plan(["/srv/app/state"], entries) if g.reach is not Reach.LIST}
    assert "/usr/bin" in granted and "/srv/other/data" in granted
    assert not any(p.startswith("/srv/app/state") for p in granted), "a link into state/ opens nothing"
    assert "/srv" not in granted, "a link to a folder above state/ would open state/ with it"
    assert "/srv/app/key-link" not in granted


def test_a_protected_path_inside_another_adds_nothing_and_a_missing_one_still_closes_its_folder() -> None:
    assert plan(["/srv/app/state", "/srv/app/state/logs"], entries) == plan(["/srv/app/state"], entries)
    grants = plan(["/srv/app/state", "/srv/app/not-there-yet.db"], entries)
    assert grants == plan(["/srv/app/state"], entries), "the folder was closed to writes already"
    alone = plan(["/srv/other/secret.db"], entries)
    assert Grant("/srv/other", Reach.LIST) in alone and Grant("/srv/app", Reach.TREE) in alone


def test_read_only_paths_are_granted_for_reading_and_their_folders_only_listed() -> None:
    grants = plan(["/srv/app/state"], entries, readonly=["/srv/app/strategies", "/usr", "/srv/app/state/inside"])
    granted = {g.path: g.reach for g in grants}
    assert granted["/srv/app/strategies"] is Reach.READ_TREE and granted["/usr"] is Reach.READ_TREE
    assert granted["/usr/bin"] is Reach.READ_TREE, "a link into a read-only tree is read-only too"
    assert granted["/srv/other"] is Reach.TREE and granted["/etc"] is Reach.TREE
    assert "/srv/app/state/inside" not in granted, "read-only inside a protected path stays closed"


def test_a_read_only_path_deeper_down_closes_the_folders_above_it_to_writes() -> None:
    grants = plan(["/srv/app/state"], entries, readonly=["/srv/other/venv"])
    assert Grant("/srv/other", Reach.LIST) in grants and Grant("/srv/app", Reach.LIST) in grants
    assert all(g.path != "/srv/other" or g.reach is Reach.LIST for g in grants)


def test_writable_folders_inside_read_only_ones_are_opened_again_unless_they_touch_a_protected_path() -> None:
    grants = plan(["/srv/app/state"], entries, readonly=["/srv/app"], writable=["/srv/app/data", "/srv/app/state/x", "/srv/app", "/srv"])
    assert Grant("/srv/app/data", Reach.TREE) in grants
    assert Grant("/srv/app/strategies", Reach.READ_TREE) in grants
    assert not any(g.reach is Reach.TREE and g.path in ("/srv/app/state/x", "/srv/app", "/srv") for g in grants)


def test_a_doubled_leading_slash_ends_at_the_root() -> None:
    assert [g for g in plan(["//srv/app/state"], entries) if g.reach is Reach.LIST][0] == Grant("//", Reach.LIST)


def test_two_protected_paths_in_different_folders_close_both() -> None:
    grants = plan(["/srv/app/state", "/etc/secret"], entries)
    granted = {g.path for g in grants if g.reach is not Reach.LIST}
    assert "/etc" not in granted and "/srv/app/state" not in granted
    assert Grant("/etc", Reach.LIST) in grants


def test_describe_says_what_is_in_force() -> None:
    assert sandbox.describe(0).startswith("off: this kernel has no Landlock")
    assert sandbox.describe(3) == "Landlock ABI 3: state/ closed to strategies"
    assert sandbox.describe(6) == "Landlock ABI 6: state/ closed to strategies, no signals outside their own run"


# ---------------------------------------------------------------- a real confined process

PROBES = {
    "read_state": lambda p: open(p["state"] / "secret").read(),
    "write_state": lambda p: open(p["state"] / "new", "w").write("x"),
    "list_state": lambda p: sorted(os.listdir(p["state"])),
    "read_data": lambda p: open(p["data"] / "prices.csv").read(),
    "write_data": lambda p: open(p["data"] / "out.csv", "w").write("x"),
    "write_project": lambda p: open(p["project"] / "stray.txt", "w").write("x"),
    "read_project": lambda p: open(p["project"] / "supervisor.toml").read(),
    "connect_state_socket": lambda p: socket.socket(socket.AF_UNIX).connect(str(p["state"] / "s.sock")),
    "signal_parent": lambda p: os.kill(p["parent"], 0),
    "signal_self": lambda p: os.kill(os.getpid(), 0),
    "read_code": lambda p: open(p["project"] / "code" / "mod.py").read(),
    "write_code": lambda p: open(p["project"] / "code" / "mod.py", "a").write("x"),
    "add_code": lambda p: open(p["project"] / "code" / "new.py", "w").write("x"),
}


def _in_child(action: Callable[[], object]) -> object:
    """Run ``action`` in a forked child (where a sandbox cannot outlive the test); return what it returned."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        os.close(read)
        try:
            result = action()
        except BaseException as exc:
            result = {"error": repr(exc)}
        os.write(write, json.dumps(result).encode())
        os._exit(0)
    os.close(write)
    with os.fdopen(read) as pipe:
        output = pipe.read()
    os.waitpid(pid, 0)
    return json.loads(output)


def _outcome(action: Callable[[], object]) -> str:
    try:
        action()
        return "ok"
    except OSError as exc:
        return type(exc).__name__


def _probe_confined(project: Path, protect: list[str], version: int | None = None, readonly: tuple[str, ...] = ()) -> dict[str, str]:
    """Confine a child, try every probe; each probe's outcome ('ok' or the exception's name)."""
    paths = {"project": project, "state": project / "state", "data": project / "data", "parent": os.getpid()}

    def probe() -> dict[str, str]:
        results = {"abi": str(sandbox.confine(protect, readonly, version=version))}
        results.update({name: _outcome(lambda: check(paths)) for name, check in PROBES.items()})
        return results

    return _in_child(probe)  # type: ignore[return-value]


def _probe_restricted(ruleset: int, path: Path) -> str:
    """Restrict a child with a ruleset built earlier and read ``path``: 'ok' or the exception's name."""

    def probe() -> str:
        sandbox.restrict(ruleset)
        return _outcome(path.read_text)

    return _in_child(probe)  # type: ignore[return-value]


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    root = Path(os.path.realpath(tmp_path))
    (root / "state").mkdir()
    (root / "state" / "secret").write_text("key")
    (root / "data").mkdir()
    (root / "data" / "prices.csv").write_text("1.1")
    (root / "supervisor.toml").write_text("")
    (root / "code").mkdir()
    (root / "code" / "mod.py").write_text("VALUE = 1\n")
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(root / "state" / "s.sock"))
    server.listen()
    yield root
    server.close()


@needs_landlock
def test_a_confined_process_cannot_open_state_or_write_beside_it_but_reaches_everything_else(project: Path) -> None:
    results = _probe_confined(project, [str(project / "state")], readonly=(str(project / "code"),))
    assert "error" not in results, results
    assert results["read_code"] == "ok" and results["write_code"] == "PermissionError" and results["add_code"] == "PermissionError"
    assert results["read_state"] == "PermissionError" and results["write_state"] == "PermissionError"
    assert results["write_project"] == "PermissionError", "the folder holding state/ takes no new files"
    assert results["list_state"] == "ok" and results["read_project"] == "ok"
    assert results["read_data"] == "ok" and results["write_data"] == "ok"
    assert results["connect_state_socket"] == "ok", "ctx reaches the router through a socket in state/"
    assert results["signal_self"] == "ok"
    if LANDLOCK >= 6:
        assert results["signal_parent"] == "PermissionError"
    assert not (project / "state" / "new").exists() and not (project / "stray.txt").exists()


@needs_landlock
def test_an_older_abi_is_used_as_far_as_it_goes(project: Path) -> None:
    results = _probe_confined(project, [str(project / "state")], version=1)
    assert results["abi"] == "1"
    assert results["read_state"] == "PermissionError" and results["read_data"] == "ok"
    assert results["signal_parent"] == "ok", "ABI 1 has no signal scoping"


@needs_landlock
def test_the_fork_servers_ruleset_is_reused_until_a_folder_above_state_changes(project: Path) -> None:
    rulesets = sandbox.Rulesets()
    protect = [str(project / "state")]
    first = rulesets.get(protect)
    assert first is not None and rulesets.get(protect) == first, "nothing changed: the same ruleset"
    assert _probe_restricted(first, project / "data" / "prices.csv") == "ok"
    assert _probe_restricted(first, project / "state" / "secret") == "PermissionError"
    (project / "later").mkdir()
    (project / "later" / "notes.txt").write_text("new")
    second = rulesets.get(protect)
    assert second is not None
    assert _probe_restricted(second, project / "later" / "notes.txt") == "ok", "a folder added beside state/ is open to the next run"
    assert _probe_restricted(second, project / "state" / "secret") == "PermissionError"


@needs_landlock
def test_a_folder_swapped_for_a_link_to_state_between_plan_and_grant_is_not_granted(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    decoy = project / "decoy"
    decoy.symlink_to(project / "state")  # what a run could swap in after the listing

    real_entries = sandbox._real_entries

    def listing(folder: str) -> Iterable[Entry]:
        yield from real_entries(folder)
        if folder == str(project):
            yield Entry(str(decoy), True, str(decoy))  # as planned before the swap: a plain folder

    monkeypatch.setattr(sandbox, "_real_entries", listing)
    ruleset = sandbox.build([str(project / "state")], LANDLOCK)
    try:
        assert _probe_restricted(ruleset, project / "state" / "secret") == "PermissionError"
        assert _probe_restricted(ruleset, project / "data" / "prices.csv") == "ok"
    finally:
        os.close(ruleset)


@needs_landlock
def test_setting_a_folders_modification_time_back_does_not_keep_a_stale_ruleset(project: Path) -> None:
    rulesets = sandbox.Rulesets()
    protect = [str(project / "state")]
    before = os.stat(project)
    rulesets.get(protect)
    (project / "later").mkdir()
    (project / "later" / "notes.txt").write_text("new")
    os.utime(project, ns=(before.st_atime_ns, before.st_mtime_ns))  # what a run could do to freeze the cache
    assert _probe_restricted(rulesets.get(protect), project / "later" / "notes.txt") == "ok"


def test_the_hosts_code_and_the_programs_on_its_path_are_never_reopened(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import host

    tools = tmp_path / "bin"
    tools.mkdir()
    monkeypatch.setenv("PATH", f"{tools}{os.pathsep}{os.environ['PATH']}")
    code = sandbox.host_code()
    assert str(tools) in code and sys.prefix in code and os.path.dirname(host.__file__) in code
    assert (os.geteuid() == 0) == ("/etc" in code)
    for path in (str(tools), str(tools / "sub"), sys.prefix, os.path.join(os.path.dirname(host.__file__), "x"), "/"):
        assert sandbox.reopens_code(path), path
    assert not sandbox.reopens_code(str(tmp_path / "data"))
    holder = os.path.dirname(os.path.dirname(host.__file__))
    assert not sandbox.reopens_code(os.path.join(holder, "data")), "a folder in the project may be opened"
    assert sandbox.reopens_code(holder)


@needs_landlock
def test_a_writable_folder_swapped_for_a_link_is_not_opened(project: Path) -> None:
    out = project / "data" / "out"
    out.mkdir()
    checked = str(out)  # what the supervisor resolved and checked
    out.rmdir()
    out.symlink_to(project / "code")  # what a run could put there before the next build
    ruleset = sandbox.build([str(project / "state")], LANDLOCK, [str(project)], [checked])
    try:
        assert _in_child(lambda: (sandbox.restrict(ruleset), _outcome(lambda: open(project / "code" / "new.py", "w").close()))[1]) == "PermissionError"
    finally:
        os.close(ruleset)
    assert not (project / "code" / "new.py").exists()


@needs_landlock
def test_the_fork_server_keeps_one_ruleset_at_a_time(project: Path) -> None:
    rulesets = sandbox.Rulesets()
    first = rulesets.get([str(project / "state")])
    second = rulesets.get([str(project / "state")], [str(project / "code")])
    assert first is not None and second is not None and first != second  # the second was built while the first was open
    with pytest.raises(OSError):
        os.fstat(first)


def test_certificates_preloaded_packages_and_file_entries_on_the_import_path_are_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = tmp_path / "ca.pem"
    monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
    monkeypatch.setattr(sys, "path", [*sys.path, str(tmp_path / "lib.zip"), str(tmp_path / "not-yet")])
    code = sandbox.host_code(["zmq.asyncio"])
    assert str(bundle) in code and str(tmp_path / "lib.zip") in code and str(tmp_path / "not-yet") in code
    assert any(p.endswith(os.sep + "zmq") for p in code), "where a preloaded package lives"
    assert sandbox.reopens_code(str(tmp_path / "not-yet" / "sub"))


@pytest.mark.skipif(os.geteuid() != 0, reason="system folders are read-only to a root host's runs only")
def test_a_project_under_a_system_folder_may_still_open_its_folders() -> None:
    assert sandbox.reopens_code("/opt") and not sandbox.reopens_code("/opt/tradehost/data")


def test_without_landlock_there_is_no_ruleset() -> None:
    assert sandbox.Rulesets(version=0).get(["/tmp/state"]) is None


def test_without_landlock_nothing_is_confined(project: Path) -> None:
    results = _probe_confined(project, [str(project / "state")], version=0)
    assert results["abi"] == "0" and results["read_state"] == "ok" and results["write_project"] == "ok"


# ---------------------------------------------------------------- a real host

SNOOP = """
    SCHEDULE = "@continuous"
    import json, os, signal, sqlite3, time
    def run(ctx):
        found = {}
        def attempt(name, action):
            try:
                action()
                found[name] = "ok"
            except (OSError, sqlite3.Error) as exc:
                found[name] = type(exc).__name__
        state = os.path.join(os.getcwd(), "state")
        attempt("read_database", lambda: open(os.path.join(state, "tradehost.db"), "rb").read(16))
        attempt("sqlite_database", lambda: sqlite3.connect(os.path.join(state, "tradehost.db")).execute("SELECT count(*) FROM runs").fetchone())
        attempt("write_state", lambda: open(os.path.join(state, "planted.key"), "w").write("x"))
        attempt("rewrite_config", lambda: open(os.path.join(os.getcwd(), "supervisor.toml"), "a").write("# sandbox = false"))
        import host
        probe = os.path.join(os.path.dirname(host.__file__), f".sandbox-probe-{os.getpid()}")
        attempt("plant_host_code", lambda: (open(probe, "w").close(), os.unlink(probe)))
        attempt("edit_strategy", lambda: open(__file__, "a").write("# edited"))
        attempt("plant_program", lambda: open(os.path.join(os.environ["PATH"].split(os.pathsep)[0], "file"), "w").write("#!/bin/sh"))
        attempt("plant_login", lambda: open(os.path.join(os.environ["HOME"], ".profile"), "a").write("./evil\\n"))
        attempt("use_cache", lambda: open(os.path.join(os.environ["HOME"], ".cache", "lib.db"), "w").write("x"))
        attempt("write_made", lambda: open(os.path.join(os.getcwd(), "made", "x.csv"), "w").write("x"))
        attempt("read_outside", lambda: open(os.path.join(os.getcwd(), "data", "in.txt")).read())
        attempt("write_outside", lambda: open(os.path.join(os.getcwd(), "data", "out.txt"), "w").write("x"))
        attempt("write_project_folder", lambda: open(os.path.join(os.getcwd(), "notes", "planted.py"), "w").write("x"))
        attempt("stop_fork_server", lambda: os.kill(os.getppid(), signal.SIGSTOP))
        supervisor = int(open(f"/proc/{os.getppid()}/stat").read().rsplit(")", 1)[1].split()[1])  # the fork server's parent
        attempt("signal_supervisor", lambda: os.kill(supervisor, 0))
        attempt("read_control_token", lambda: open(os.path.join(state, "control.token")).read())
        import zmq
        control = zmq.Context.instance().socket(zmq.REQ)
        control.setsockopt(zmq.LINGER, 0)
        control.connect("ipc://" + os.path.join(state, "control.sock"))
        control.send_json({"v": 1, "cmd": "stop", "args": {"name": "snoop"}})
        found["control_stop"] = control.recv_json()["error"]["code"] if control.poll(5000) else "no answer"
        ctx.state["seen"] = 1
        found["ctx_state"] = ctx.state["seen"]
        print("FOUND " + json.dumps(found, sort_keys=True), flush=True)
        while not ctx.sleep(1):
            pass
"""


def _found(host: Host, name: str) -> dict[str, object]:
    line = wait_for(lambda: next((l for l in host.log(name).splitlines() if "FOUND " in l), None), 15, message=f"{name} to report")
    return json.loads(line.split("FOUND ", 1)[1])


def _snoop(host: Host, tmp_path: Path, host_settings: str, source: str) -> tuple[dict[str, object], Path]:
    """Run the snooping strategy on a host with these [host] settings; what it found, and the folder first on its PATH."""
    tools = tmp_path / "bin"  # first on the host's PATH: a program planted there would run at its next start
    tools.mkdir()
    host.env["PATH"] = f"{tools}{os.pathsep}{host.env['PATH']}"
    home = tmp_path / "home"  # the operator's next login reads its start-up files
    home.mkdir()
    (home / ".profile").write_text("# login\n")
    host.env["HOME"] = str(home)
    host.write_config(f"[host]\nwatch_interval = 0.1\ndebounce = 0.2\n{host_settings}\n[router]\nenabled = false\n")
    (host.root / "notes").mkdir()
    (host.root / "data").mkdir()
    (host.root / "data" / "in.txt").write_text("prices")
    host.write_strategy("snoop", source)
    host.start()
    return _found(host, "snoop"), tools


@needs_landlock
def test_a_strategy_cannot_read_the_state_database_or_signal_the_host_but_ctx_works(host: Host, tmp_path: Path) -> None:
    found, tools = _snoop(host, tmp_path, 'writable = ["data", "strategies", "made"]', SNOOP)
    assert found["read_database"] == "PermissionError" and found["sqlite_database"] == "OperationalError"
    assert found["write_state"] == "PermissionError" and not (host.state / "planted.key").exists()
    assert found["rewrite_config"] == "PermissionError", "a run that could rewrite the config could reload itself out of the sandbox"
    assert found["plant_host_code"] == "PermissionError", "what a run planted in the host's code would run unconfined at the next start"
    assert found["edit_strategy"] == "PermissionError", "[host] writable never reopens the strategies"
    assert found["plant_program"] == "PermissionError" and not (tools / "file").exists()
    assert found["plant_login"] == "PermissionError" and (tmp_path / "home" / ".profile").read_text() == "# login\n"
    assert found["use_cache"] == "ok", "~/.cache is made before the runs, when the home folder itself is closed to new entries"
    assert found["write_made"] == "ok", "a [host] writable folder is made at start"
    assert "[host] writable: " in host.stderr() and "left read-only" in host.stderr()
    assert ("the host runs as root" in host.stderr()) == (os.geteuid() == 0)
    assert found["read_outside"] == "ok" and found["write_outside"] == "ok", "[host] writable opens data/"
    assert found["write_project_folder"] == "PermissionError", "the rest of the project folder is read-only"
    assert found["ctx_state"] == 1, "the run channel's socket in state/ is still reachable"
    assert found["read_control_token"] == "PermissionError" and found["control_stop"] == "UNAUTHORIZED"
    if LANDLOCK >= 6:
        assert found["stop_fork_server"] == "PermissionError" and found["signal_supervisor"] == "PermissionError"
    assert host.status()["snoop"]["state"] == "running"
    assert "strategy sandbox: Landlock ABI" in host.stderr()
    host.write_strategy("writer", """
        def run(ctx):
            open("results.csv", "w").write("x")   # the working folder is the (read-only) project folder
    """)
    wait_for(lambda: "writer" in host.status(), 10, message="the writer to register")
    assert host.cli("trigger", "writer").returncode == 0
    run, = host.finished_runs("writer", 1, timeout=15)
    assert run["outcome"] == "failed" and run["error"].endswith("[host] writable opens folders)"), run
    host.stop()


def test_sandbox_false_leaves_runs_unconfined(host: Host, tmp_path: Path) -> None:
    found, _ = _snoop(host, tmp_path, "sandbox = false", SNOOP.replace("signal.SIGSTOP", "0"))
    assert found["read_database"] == "ok" and found["write_state"] == "ok" and found["rewrite_config"] == "ok"
    assert found["read_control_token"] == "ok" and found["control_stop"] == "UNAUTHORIZED", "the token is still asked for"
    assert found["plant_host_code"] == "ok" and found["edit_strategy"] == "ok" and found["plant_program"] == "ok"
    assert "strategy sandbox: off ([host] sandbox = false)" in host.stderr()
    host.stop()
