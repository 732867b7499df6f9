"""Schedule expressions: parsing, next fire instant, and restart catch-up.

A schedule is ``@continuous`` (one long-lived process), ``@manual`` (or no
schedule: runs only when triggered) or a cron expression evaluated in an IANA
timezone. Cron takes 5 fields (minute hour day-of-month month day-of-week), 6
fields with a leading seconds field (as in Spring and node-cron), or one of
the aliases @yearly @annually @monthly @weekly @daily @midnight @hourly.

Cron fields are matched against the local wall clock of the timezone. Each
matching wall time is mapped to real instants as cronie/Vixie cron does:

1. A wall time that exists once fires once.
2. A repeated wall time (autumn fall-back) fires at its first occurrence
   only, unless the hour field matches every hour (``*``, or equally
   ``0-23`` or ``*/1``): such a job runs at least hourly, so it fires at both
   occurrences and keeps following elapsed time.
3. A wall time that does not exist (spring-forward gap) fires once at the
   instant the gap ends, the transition itself, if the hour field is fixed;
   gap times of an every-hour expression are skipped, since nothing real
   happened then. Several gap times collapse into that single fire.

All instants returned are timezone-aware UTC datetimes.
"""

from __future__ import annotations

import copy
import functools
import math
import re
import zoneinfo
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone as dt_timezone
from itertools import pairwise
from typing import NamedTuple

from croniter import CroniterBadDateError, croniter

from host.errors import ScheduleError

__all__ = [
    "ContinuousSchedule",
    "CronSchedule",
    "ManualSchedule",
    "Schedule",
    "describe",
    "first_fire",
    "parse_schedule",
]

_UTC = dt_timezone.utc
_TICK = timedelta(microseconds=1)
_SECOND = timedelta(seconds=1)
# Offsets are probed this far around an instant to find nearby fall-backs.
# Real folds are at most a few hours, but tzdata holds a few near-24 h ones
# (Alaska 1867, Kwajalein 1969); at most one transition is assumed between
# neighbouring probes.
_PROBES = tuple(timedelta(hours=h) for h in (-26, -3, 0, 3, 26))
# first_fire gives up looking for a past slot beyond this; croniter itself
# never searches more than 50 years ahead.
_MAX_LOOKBACK = timedelta(days=366 * 100)

_ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_FIELDS_5 = ("minute", "hour", "day-of-month", "month", "day-of-week")
_FIELDS_6 = ("second", *_FIELDS_5)
_RANGES = {
    "second": (0, 59),
    "minute": (0, 59),
    "hour": (0, 23),
    "day-of-month": (1, 31),
    "month": (1, 12),
    "day-of-week": (0, 7),
}
# croniter's hashed (H) and random (R) items: neither is stable across restarts.
# No month or weekday name starts with h or r, so a leading letter is enough.
_HASH_OR_RANDOM = re.compile(r"^[hr](?![a-z])", re.IGNORECASE)
# A day-of-week value 7 (Sunday) that is not a step or an nth-weekday count.
_DOW_SEVEN = re.compile(r"(?<![/#\d])7(?!\d)")
_CRONITER_PREFIX = re.compile(r"^\[[^\]]*\]\s*(is not acceptable)?[.,]?\s*")


@dataclass(frozen=True)
class ContinuousSchedule:
    """``@continuous``: one long-lived process."""


@dataclass(frozen=True)
class ManualSchedule:
    """``@manual`` or no schedule: runs only when triggered."""


class _Fold(NamedTuple):
    """A fall-back transition: wall times in [at+after, at+before) occur twice."""

    at: datetime
    before: timedelta
    after: timedelta


class _Compiled(NamedTuple):
    """What evaluating a CronSchedule needs, built once per (expression, timezone)."""

    zone: zoneinfo.ZoneInfo
    cron: croniter
    hourly: bool


@functools.lru_cache(maxsize=1024)
def _compiled(expression: str, timezone: str) -> _Compiled:
    zone = _load_zone(timezone)
    text, seconds = _compile(expression)
    cron = croniter(text, datetime(2000, 1, 1), ret_type=datetime, second_at_beginning=seconds)
    # croniter orders fields minute, hour, ... (seconds moved last); ["*"] means all 24 hours.
    return _Compiled(zone, cron, cron.expanded[1] == ["*"])


@dataclass(frozen=True)
class CronSchedule:
    """A cron expression evaluated on the wall clock of an IANA timezone."""

    expression: str
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        for name in ("expression", "timezone"):
            if not isinstance(getattr(self, name), str):
                raise ScheduleError(f"cron {name} must be a string, got {type(getattr(self, name)).__name__}")
        object.__setattr__(self, "expression", self.expression.strip())
        _compiled(self.expression, self.timezone)  # validate now, not at first use

    def next_after(self, after: datetime) -> datetime:
        """Return the first fire instant strictly after the aware datetime ``after``, in UTC."""
        after = _as_utc(after, "after")
        compiled = _compiled(self.expression, self.timezone)
        try:
            return _next_after(compiled, after)
        except (CroniterBadDateError, OverflowError) as exc:  # nothing within 50 years, or past year 9999
            raise ScheduleError(f"cron expression {self.expression!r} never fires after {after.isoformat()}") from exc


Schedule = ContinuousSchedule | ManualSchedule | CronSchedule


def parse_schedule(expression: str | None, timezone: str = "UTC") -> Schedule:
    """Parse a schedule setting; raise ScheduleError naming what is wrong."""
    if expression is not None and not isinstance(expression, str):
        raise ScheduleError(f"schedule must be a string, got {type(expression).__name__}")
    _load_zone(timezone)
    text = (expression or "").strip()
    if not text or text.lower() == "@manual":
        return ManualSchedule()
    if text.lower() == "@continuous":
        return ContinuousSchedule()
    return CronSchedule(text, timezone)


def describe(schedule: Schedule) -> str:
    """Return the short display form: the cron text, ``@continuous`` or ``@manual``."""
    if isinstance(schedule, CronSchedule):
        return schedule.expression
    if isinstance(schedule, ContinuousSchedule):
        return "@continuous"
    return "@manual"


def first_fire(
    schedule: CronSchedule,
    *,
    now: datetime,
    since: datetime | None,
    misfire_grace: float | None,
) -> datetime:
    """Return the slot to run when the scheduler (re)starts.

    That is the latest slot s with since < s <= now that is at most
    ``misfire_grace`` seconds old, so a slot missed while down runs once;
    failing that, the first slot after max(now, since).
    """
    now = _as_utc(now, "now")
    since = None if since is None else _as_utc(since, "since")
    if misfire_grace is not None and misfire_grace < 0:
        raise ValueError(f"misfire_grace must be >= 0 seconds, got {misfire_grace}")
    floor = since
    if misfire_grace is not None:
        oldest = now - timedelta(seconds=misfire_grace) - _TICK
        floor = oldest if floor is None else max(floor, oldest)
    missed = _latest_slot(schedule, now, floor)
    if missed is not None:
        return missed
    return schedule.next_after(now if since is None else max(now, since))


def _latest_slot(schedule: CronSchedule, now: datetime, floor: datetime | None) -> datetime | None:
    """Return the latest slot s with floor < s <= now, or None, without enumerating slots."""
    # Gallop back from now until a window (lo, now] holds a slot...
    hi, step = now, _SECOND
    while True:
        lo = now - step
        if floor is not None and lo <= floor:
            lo = floor
        found = schedule.next_after(lo)
        if found <= now:
            break
        if lo == floor or step > _MAX_LOOKBACK:
            return None
        hi, step = lo, step * 2
    # ...then bisect, keeping next_after(lo) = found <= now < next_after(hi).
    while hi - lo > _TICK:
        later = schedule.next_after(found)
        if later > now:
            return found
        lo, found = found, later
        mid = lo + (hi - lo) / 2
        candidate = schedule.next_after(mid)
        if candidate <= now:
            lo, found = mid, candidate
        else:
            hi = mid
    return found


def _next_after(compiled: _Compiled, after: datetime) -> datetime:
    folds = _folds_near(compiled.zone, after)
    best = _first_occurrence_after(compiled, after, folds)
    if compiled.hourly:
        for fold in folds:
            second = _second_occurrence_after(compiled, after, fold)
            if second is not None and second < best:
                best = second
    return best


def _first_occurrence_after(compiled: _Compiled, after: datetime, folds: list[_Fold]) -> datetime:
    """Return the first fire after ``after`` that is not a second occurrence."""
    # The earliest instant of a wall time (its first occurrence, or the gap's
    # end) grows with the wall time, so the first match past the latest wall
    # time already shown on the clock is the answer, gaps aside.
    zone = compiled.zone
    shown = _wall(after, zone)
    for fold in folds:
        if fold.at <= after:  # `after` is in the repeated pass: the clock already showed more
            shown = max(shown, _naive(fold.at + fold.before) - _TICK)
    it = _iterate_from(compiled, shown)
    while True:
        first, _, in_gap = _instants(zone, it.get_next(datetime))
        if in_gap and compiled.hourly:
            it.set_current(_wall(first, zone) - _TICK, force=True)  # skip the rest of the gap
            continue
        if first > after:
            return first


def _second_occurrence_after(compiled: _Compiled, after: datetime, fold: _Fold) -> datetime | None:
    """Return the first second-occurrence fire of ``fold`` after ``after``, if any."""
    start = max(_naive(after + fold.after), _naive(fold.at + fold.after) - _TICK)
    first, last, _ = _instants(compiled.zone, _iterate_from(compiled, start).get_next(datetime))
    return last if first < last and last > after else None


def _iterate_from(compiled: _Compiled, wall: datetime) -> croniter:
    # A copy is cheaper than re-parsing, and keeps concurrent callers apart.
    it = copy.copy(compiled.cron)
    it.set_current(wall, force=True)
    return it


def _instants(zone: zoneinfo.ZoneInfo, wall: datetime) -> tuple[datetime, datetime, bool]:
    """Return (first, last, in_gap) for a naive wall time; a gap time maps to the gap's end."""
    early = wall.replace(tzinfo=zone, fold=0).astimezone(_UTC)
    late = wall.replace(tzinfo=zone, fold=1).astimezone(_UTC)
    if late < early:  # PEP 495: in a gap, fold=1 applies the later (larger) offset
        end = _transition(zone, late, early)
        return end, end, True
    return early, late, False


def _folds_near(zone: zoneinfo.ZoneInfo, at: datetime) -> list[_Fold]:
    """Return the fall-backs whose repeated span could straddle ``at``."""
    if zone.key == "UTC":
        return []
    probes = [at + p for p in _PROBES]
    offsets = [_offset(zone, p) for p in probes]
    folds = []
    for (lo, before), (hi, after) in pairwise(zip(probes, offsets)):
        if before > after:
            moment = _transition(zone, lo, hi)
            size = before - after
            if moment - size <= at < moment + size:
                folds.append(_Fold(moment, before, after))
    return folds


def _transition(zone: zoneinfo.ZoneInfo, lo: datetime, hi: datetime) -> datetime:
    """Return the instant in (lo, hi] where the UTC offset changes, found by bisection."""
    # tzdata transitions fall on whole seconds, so bisect over epoch seconds.
    lo_s, hi_s = math.floor(lo.timestamp()), math.ceil(hi.timestamp())
    before = _offset(zone, datetime.fromtimestamp(lo_s, _UTC))
    while hi_s - lo_s > 1:
        mid = (lo_s + hi_s) // 2
        if _offset(zone, datetime.fromtimestamp(mid, _UTC)) == before:
            lo_s = mid
        else:
            hi_s = mid
    return datetime.fromtimestamp(hi_s, _UTC)


def _offset(zone: zoneinfo.ZoneInfo, instant: datetime) -> timedelta:
    return instant.astimezone(zone).utcoffset()  # type: ignore[return-value]


def _wall(instant: datetime, zone: zoneinfo.ZoneInfo) -> datetime:
    return instant.astimezone(zone).replace(tzinfo=None)


def _naive(instant: datetime) -> datetime:
    return instant.replace(tzinfo=None)


def _as_utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got naive {value.isoformat()}")
    return value.astimezone(_UTC)


def _load_zone(name: str) -> zoneinfo.ZoneInfo:
    if not isinstance(name, str) or not name.strip():
        raise ScheduleError(f"invalid timezone {name!r}: expected an IANA name such as 'Europe/London'")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        raise ScheduleError(f"unknown timezone {name!r}: expected an IANA name such as 'Europe/London'") from None


def _compile(expression: str) -> tuple[str, bool]:
    """Validate a cron expression; return the croniter text and whether it has seconds."""
    text = expression.strip()
    if not text:
        raise ScheduleError("invalid cron expression '': it is empty")
    if text.startswith("@"):
        if text.lower() not in _ALIASES:
            known = " ".join(["@continuous", "@manual", *_ALIASES])
            raise ScheduleError(f"unknown schedule alias {text!r}: expected one of {known}")
        return _ALIASES[text.lower()], False
    fields = text.split()
    if len(fields) not in (5, 6):
        raise ScheduleError(
            f"invalid cron expression {expression!r}: expected 5 fields (minute hour day-of-month month "
            f"day-of-week) or 6 with leading seconds, got {len(fields)}"
        )
    names = _FIELDS_5 if len(fields) == 5 else _FIELDS_6
    for name, value in zip(names, fields):
        _check_field(expression, name, value)
    if len(fields) == 6:
        # croniter rejects Sunday=7 when seconds lead; 5-field cron and Spring accept it.
        fields[-1] = _DOW_SEVEN.sub("0", fields[-1])
    _check_with_croniter(expression, names, fields)
    return " ".join(fields), len(fields) == 6


def _check_field(expression: str, name: str, value: str) -> None:
    """Catch the common mistakes in one field with a precise message."""
    low, high = _RANGES[name]
    for item in value.split(","):
        if not item:
            raise ScheduleError(f"invalid cron expression {expression!r}: empty item in {name} field {value!r}")
        if _HASH_OR_RANDOM.match(item):
            raise ScheduleError(
                f"invalid cron expression {expression!r}: hashed/random item {item!r} in {name} field "
                "is not supported (not stable across restarts)"
            )
        span, _, step = item.partition("/")
        if step.isdigit() and int(step) == 0:
            raise ScheduleError(f"invalid cron expression {expression!r}: step 0 in {name} field {value!r}")
        for bound in span.split("#")[0].split("-"):
            if bound.isdigit() and not low <= int(bound) <= high:
                raise ScheduleError(
                    f"invalid cron expression {expression!r}: {name} {int(bound)} out of range {low}-{high}"
                )


def _check_with_croniter(expression: str, names: tuple[str, ...], fields: list[str]) -> None:
    """Let croniter judge each field alone, then the whole expression."""
    seconds = len(fields) == 6
    for index, name in enumerate(names):
        alone = ["*"] * len(fields)
        alone[index] = fields[index]
        reason = _croniter_reason(" ".join(alone), seconds)
        if reason is not None:
            raise ScheduleError(
                f"invalid cron expression {expression!r}: bad {name} field {fields[index]!r} "
                f"({reason or 'unrecognised syntax'})"
            )
    reason = _croniter_reason(" ".join(fields), seconds)
    if reason is not None:
        raise ScheduleError(f"invalid cron expression {expression!r}: {reason or 'rejected by croniter'}")


def _croniter_reason(text: str, seconds: bool) -> str | None:
    """Return None if croniter accepts ``text``, else its complaint without the echoed expression."""
    try:
        # strict: also reject dates that never occur, such as 30 February.
        croniter.expand(text, second_at_beginning=seconds, strict=True)
    except Exception as exc:  # croniter raises assorted types on malformed input
        reason = _CRONITER_PREFIX.sub("", str(exc).strip().splitlines()[-1] if str(exc).strip() else "")
        return reason[:1].lower() + reason[1:]
    return None
