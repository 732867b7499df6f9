"""The ``tradehost`` command line.

Control verbs (status, start, stop, restart, trigger, reload) come from
``host.commands.REGISTRY`` and talk to a running supervisor; ``run``,
``logs`` and ``service`` work locally. Errors are one line on stderr:
exit code 1 for a refused or failed command, 2 for bad usage or
configuration.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import reports
from .credentials import cli as credentials_cli
from .commands import REGISTRY
from .config import CONFIG_ENV, Config, load_config, load_config_for_control
from .errors import ConfigError, ControlError, TradehostError

__all__ = ["main"]

EXIT_FAILED = 1
EXIT_USAGE = 2


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, default=None, help=f"supervisor.toml to use (default: ${CONFIG_ENV} or ./supervisor.toml)")
    parser = argparse.ArgumentParser(prog="tradehost", description="Run Python trading strategies on cron schedules, each in its own process.")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="VERB")

    run = verbs.add_parser("run", parents=[common], help="run the supervisor in the foreground (what systemd runs)")
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])

    for command in REGISTRY.values():
        sub = verbs.add_parser(command.name, parents=[common], help=command.help)
        if command.name == "status":
            sub.add_argument("name", nargs="?", help="only this strategy")
            sub.add_argument("--json", action="store_true", help="print a JSON array, one object per strategy (with --router: one object, the router)")
            sub.add_argument("--router", action="store_true", help="only the broker router")
        elif command.takes_name:
            sub.add_argument("name", help="strategy name")

    logs = verbs.add_parser("logs", parents=[common], help="print a strategy's log (state/logs/NAME.log)")
    logs.add_argument("name", help="strategy name")
    logs.add_argument("-n", "--lines", type=int, default=50, help="how many lines (default 50)")
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")

    service = verbs.add_parser("service", parents=[common], help="print a systemd unit file for this host")
    service.add_argument("--user", default=None, help="run the service as this user")

    router = verbs.add_parser("router", parents=[common], help="run the broker router alone (when [router] enabled = false, e.g. on another machine)")
    router.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    halt = verbs.add_parser("halt", parents=[common], help="stop new orders (cancels still pass); --reducing allows only orders that shrink positions")
    halt.add_argument("strategy", nargs="?", help="only this strategy (default: all trading)")
    halt.add_argument("--reducing", action="store_true", help="allow orders that reduce exposure")
    halt.add_argument("--reason", default=None, help="recorded in the audit trail")
    resume = verbs.add_parser("resume", parents=[common], help="allow new orders again after halt")
    resume.add_argument("strategy", nargs="?", help="only this strategy (default: global)")
    resume.add_argument("--reason", default=None, help="recorded in the audit trail")
    for verb in (halt, resume):
        verb.add_argument("--json", action="store_true", help="print the result as JSON")
    reports.add_verbs(verbs, common)
    credentials_cli.add_verb(verbs, common)
    brokers = verbs.add_parser("brokers", parents=[common], help="each configured broker: type, environment, connected, last call latency, capabilities")
    brokers.add_argument("--json", action="store_true", help="print a JSON array, one object per broker")
    return parser


def _fail(message: str, code: int) -> int:
    print(f"tradehost: error: {message}", file=sys.stderr)
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.verb in REGISTRY:
            config, problem = load_config_for_control(args.config)
            if problem is not None:
                print(f"tradehost: warning: {problem}", file=sys.stderr)
        else:
            config = load_config(args.config)
    except ConfigError as exc:
        return _fail(str(exc), EXIT_USAGE)
    try:
        if args.verb == "run":
            return _run(config, args.log_level)
        if args.verb == "logs":
            return _logs(config, args.name, args.lines, args.follow)
        if args.verb == "service":
            print(_unit(config, args.user), end="")
            return 0
        if args.verb == "router":
            return _router(config, args.log_level)
        if args.verb in ("halt", "resume"):
            return _trading_state(config, args)
        if args.verb in reports.VERBS:
            return reports.handle(config, args)
        if args.verb == "credentials":
            return credentials_cli.handle(config, args)
        if args.verb == "brokers":
            return _brokers(config, args.json)
        if args.verb == "status":
            return _status(config, args)
        return _control(config, args)
    except ConfigError as exc:
        return _fail(str(exc), EXIT_USAGE)
    except TradehostError as exc:
        return _fail(str(exc), EXIT_FAILED)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


def _control(config: Config, args: argparse.Namespace) -> int:
    from .control import call

    command = REGISTRY[args.verb]
    request = {"name": args.name} if getattr(args, "name", None) is not None else {}
    result = call(config, command.name, request, timeout=command.timeout)
    if getattr(args, "json", False):
        print(json.dumps(result, indent=2))
    else:
        print(command.render(result))
    return 0


def _status(config: Config, args: argparse.Namespace) -> int:
    """The supervisor's answer, then the router's own (at most ``ROUTER_TIMEOUT``, never for ``status NAME``)."""
    from .commands import status
    from .control import call
    from .router.admin import ask_router

    if args.router and args.name is not None:
        return _fail("status takes a strategy NAME or --router, not both", EXIT_USAGE)
    process, rows = status.split_reply(call(config, "status", {} if args.name is None else {"name": args.name}, timeout=status.COMMAND.timeout))
    if args.name is not None or (args.json and not args.router):  # the JSON array stays what it always was: strategies only
        print(json.dumps(rows, indent=2) if args.json else status.render_table(rows))
        return 0
    router = None
    if process is not None:
        answer, error = ask_router(config, "status", timeout=status.ROUTER_TIMEOUT) if status.asks_router(process) else (None, None)
        router = status.router_view(process, answer, error)
    if args.router:
        print(json.dumps(router, indent=2) if args.json else status.render_router(router))
    else:
        print(status.render({"router": router, "strategies": rows}))
    return 0


def _run(config: Config, level: str) -> int:
    from .supervisor import Supervisor

    # Under systemd, journald stamps every line itself.
    stamp = "" if os.environ.get("JOURNAL_STREAM") else "%(asctime)s "
    logging.basicConfig(level=level, format=f"{stamp}%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
    return Supervisor(config).run()


def _router(config: Config, level: str) -> int:
    from .router.main import run_router

    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    return run_router(config, managed=False)


def _trading_state(config: Config, args: argparse.Namespace) -> int:
    from .router.admin import set_trading_state

    state = "ACTIVE" if args.verb == "resume" else ("REDUCING" if args.reducing else "HALTED")
    result = set_trading_state(config, state, args.strategy, args.reason)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        note = f" ({result['router']})" if "router" in result else ""
        print(f"{result['scope']}: {result['previous']} → {result['state']}{note}")
    return 0


def _brokers(config: Config, as_json: bool) -> int:
    from .router.admin import broker_status, render_brokers

    rows = broker_status(config)
    print(json.dumps(rows, indent=2) if as_json else render_brokers(rows))
    return 0


def _logs(config: Config, name: str, lines: int, follow: bool) -> int:
    from .logview import follow as follow_log
    from .logview import tail

    path = config.logs_dir / f"{name}.log"
    try:
        for line in tail(path, lines):
            print(line)
    except FileNotFoundError:
        known = (config.host.strategies_dir / f"{name}.py").exists() or (config.host.strategies_dir / name / "__init__.py").exists()
        if not known:
            raise ControlError(f"unknown strategy {name!r}: no strategies/{name}.py and no log {path}", code="UNKNOWN_STRATEGY") from None
        if not follow:
            raise ControlError(f"{name} has no log yet ({path})", code="NO_LOG") from None
    if follow:
        sys.stdout.flush()
        for line in follow_log(path):
            print(line, flush=True)
    return 0


def _unit(config: Config, user: str | None) -> str:
    from .systemd import UnitOptions, render_unit

    script = Path(sys.argv[0])
    if script.name == "tradehost" and script.exists():
        program = [str(script.absolute())]
    else:
        # Not started through the console script (python -m host): keep the same interpreter,
        # unresolved, so a virtual environment's python stays the one systemd runs.
        program = [str(Path(sys.executable).absolute()), "-m", "host"]
    options = UnitOptions(
        exec_start=[*program, "run", "--config", str(config.path)],
        working_directory=config.path.parent,
        timeout_stop_sec=int(_longest_grace(config) + config.host.shutdown_timeout + 10),
        user=user,
    )
    return render_unit(options)


def _longest_grace(config: Config) -> float:
    """The longest grace period of any strategy, its file's GRACE included."""
    from .strategy_file import discover, load_strategy

    graces = [config.max_grace()]
    for name, source in discover(config.host.strategies_dir).items():
        try:
            graces.append(load_strategy(source, defaults=config.defaults, overrides=config.overrides(name)).settings.grace)
        except TradehostError:
            continue
    return max(graces)
