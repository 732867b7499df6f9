"""Tests for host.schedule: parsing, DST mapping, next_after and first_fire."""

from __future__ import annotations

import functools
import time
import zoneinfo
from datetime import datetime, timedelta, timezone

import pytest
from croniter import croniter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from host.errors import ScheduleError
from host.schedule import (
    ContinuousSchedule,
    CronSchedule,
    ManualSchedule,
    describe,
    first_fire,
    parse_schedule,
)

UTC = timezone.utc
LONDON = "Europe/London"
NEW_YORK = "America/New_York"
LORD_HOWE = "Australia/Lord_Howe"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def chain(schedule: CronSchedule, start: datetime, count: int) -> list[datetime]:
    out, t = [], start
    for _ in range(count):
        t = schedule.next_after(t)
        out.append(t)
    return out


def local(instant: datetime, tz: str) -> str:
    return instant.astimezone(zoneinfo.ZoneInfo(tz)).strftime("%H:%M%z")


# --- parsing -----------------------------------------------------------------


def test_five_fields_parse_to_cron_in_utc_by_default() -> None:
    schedule = parse_schedule("  */5 9-17 * * mon-fri ")
    assert schedule == CronSchedule("*/5 9-17 * * mon-fri", "UTC")
    assert schedule.next_after(utc(2026, 6, 5, 17, 56)) == utc(2026, 6, 8, 9, 0)  # Friday -> Monday


def test_six_fields_have_leading_seconds() -> None:
    schedule = parse_schedule("30 */10 * * * *")
    assert chain(schedule, utc(2026, 6, 1, 12, 0, 31), 2) == [utc(2026, 6, 1, 12, 10, 30), utc(2026, 6, 1, 12, 20, 30)]


def test_six_fields_accept_seven_as_sunday() -> None:
    schedule = parse_schedule("0 0 9 * * 7")
    assert schedule.next_after(utc(2026, 6, 1)) == utc(2026, 6, 7, 9)  # 2026-06-07 is a Sunday
    assert parse_schedule("0 0 9 * * 5-7").next_after(utc(2026, 6, 1)) == utc(2026, 6, 5, 9)


@pytest.mark.parametrize(
    ("alias", "equivalent"),
    [
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@monthly", "0 0 1 * *"),
        ("@weekly", "0 0 * * 0"),
        ("@daily", "0 0 * * *"),
        ("@midnight", "0 0 * * *"),
        ("@hourly", "0 * * * *"),
    ],
)
def test_aliases_expand_but_keep_their_name(alias: str, equivalent: str) -> None:
    schedule = parse_schedule(f" {alias} ", LONDON)
    assert isinstance(schedule, CronSchedule)
    assert describe(schedule) == alias
    start = utc(2026, 3, 29, 0, 30)
    assert chain(schedule, start, 3) == chain(parse_schedule(equivalent, LONDON), start, 3)


@pytest.mark.parametrize("text", [None, "", "   ", "@manual", "@MANUAL"])
def test_manual(text: str | None) -> None:
    assert parse_schedule(text) == ManualSchedule()


def test_continuous() -> None:
    assert parse_schedule(" @continuous ", LONDON) == ContinuousSchedule()


def test_describe() -> None:
    assert describe(parse_schedule("0 9 * * 1-5", NEW_YORK)) == "0 9 * * 1-5"
    assert describe(parse_schedule("@continuous")) == "@continuous"
    assert describe(parse_schedule(None)) == "@manual"


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("61 * * * *", "invalid cron expression '61 * * * *': minute 61 out of range 0-59"),
        ("0 24 * * *", "'0 24 * * *': hour 24 out of range 0-23"),
        ("0 0 0 * *", "day-of-month 0 out of range 1-31"),
        ("0 0 * 13 *", "month 13 out of range 1-12"),
        ("0 0 * * 1-8", "day-of-week 8 out of range 0-7"),
        ("60 0 0 * * *", "second 60 out of range 0-59"),
        ("* * * *", "'* * * *': expected 5 fields"),
        ("0 0 * * * * 2026", "'0 0 * * * * 2026': expected 5 fields (minute hour day-of-month month day-of-week) "
                             "or 6 with leading seconds, got 7"),
        ("H * * * *", "hashed/random item 'H' in minute field"),
        ("0 H(0-5) * * *", "hashed/random item 'H(0-5)' in hour field"),
        ("R 1 * * *", "hashed/random item 'R' in minute field"),
        ("0 1 * * r", "hashed/random item 'r' in day-of-week field"),
        ("1,,2 * * * *", "empty item in minute field '1,,2'"),
        ("0 1, * * *", "empty item in hour field '1,'"),
        ("*/0 * * * *", "step 0 in minute field '*/0'"),
        ("x * * * *", "bad minute field 'x'"),
        ("0 0 * foo *", "bad month field 'foo'"),
        ("? * * * *", "bad minute field '?' (question mark can only used"),
        ("-1 * * * *", "bad minute field '-1' (negative numbers not allowed)"),
        ("0 0 30 2 *", "'0 0 30 2 *': day(s) [30] can never occur in month(s) [2]"),
        ("@fortnightly", "unknown schedule alias '@fortnightly'"),
    ],
)
def test_invalid_expressions(expression: str, message: str) -> None:
    with pytest.raises(ScheduleError) as info:
        parse_schedule(expression)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_croniter_extensions_that_are_valid_stay_valid() -> None:
    # Random/hashed are refused, but names, L, W and nth weekday are plain croniter syntax.
    for text in ["0 9 * jan-mar mon", "0 9 L * *", "0 9 15W * *", "0 9 * * 1#2", "0 12 ? * *"]:
        assert isinstance(parse_schedule(text), CronSchedule)


@pytest.mark.parametrize("tz", ["Mars/Olympus", "", "Europe", "../etc/passwd", "Europe/London "])
def test_unknown_timezone(tz: str) -> None:
    with pytest.raises(ScheduleError, match="timezone"):
        parse_schedule("0 9 * * *", tz)
    with pytest.raises(ScheduleError, match="timezone"):
        parse_schedule("@continuous", tz)


def test_schedule_error_is_a_value_error_and_direct_construction_validates() -> None:
    with pytest.raises(ValueError, match="minute 99"):
        CronSchedule("99 * * * *")
    with pytest.raises(ScheduleError, match="must be a string"):
        parse_schedule(5)  # type: ignore[arg-type]


# --- next_after in UTC -------------------------------------------------------


def test_next_after_is_strictly_after() -> None:
    schedule = parse_schedule("*/5 * * * *")
    assert schedule.next_after(utc(2026, 6, 1, 12, 3, 10)) == utc(2026, 6, 1, 12, 5)
    assert schedule.next_after(utc(2026, 6, 1, 12, 5)) == utc(2026, 6, 1, 12, 10)
    assert schedule.next_after(utc(2026, 6, 1, 12, 4, 59, 999999)) == utc(2026, 6, 1, 12, 5)


def test_next_after_accepts_any_aware_datetime_and_returns_utc() -> None:
    schedule = parse_schedule("0 12 * * *")
    after = datetime(2026, 6, 1, 13, 0, tzinfo=zoneinfo.ZoneInfo("Asia/Tokyo"))  # 04:00 UTC
    result = schedule.next_after(after)
    assert result == utc(2026, 6, 1, 12)
    assert result.tzinfo is UTC


def test_next_after_evaluates_the_local_wall_clock() -> None:
    schedule = parse_schedule("0 9 * * *", "Asia/Kolkata")  # +05:30
    assert schedule.next_after(utc(2026, 1, 1)) == utc(2026, 1, 1, 3, 30)


def test_next_after_rejects_naive_datetimes() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_schedule("* * * * *").next_after(datetime(2026, 1, 1))


def test_no_dst_case_costs_one_croniter_step(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = 0
    real = croniter.get_next

    def counting(self: croniter, *args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        return real(self, *args, **kwargs)

    monkeypatch.setattr(croniter, "get_next", counting)
    for tz in ["UTC", LONDON, NEW_YORK]:
        schedule = parse_schedule("* * * * * *", tz)
        calls = 0
        schedule.next_after(utc(2026, 6, 1, 12, 0, 0, 500))
        assert calls <= 2, tz


# --- DST: Europe/London ------------------------------------------------------
# 2026-03-29 01:00 GMT -> 02:00 BST (01:00 UTC); 2026-10-25 02:00 BST -> 01:00 GMT (01:00 UTC).


def test_london_spring_forward_fixed_hour_fires_when_the_gap_ends() -> None:
    schedule = parse_schedule("30 1 * * *", LONDON)
    fires = chain(schedule, utc(2026, 3, 28, 12), 3)
    assert fires == [utc(2026, 3, 29, 1, 0), utc(2026, 3, 30, 0, 30), utc(2026, 3, 31, 0, 30)]
    assert local(fires[0], LONDON) == "02:00+0100"


def test_london_spring_forward_frequent_job_skips_the_gap() -> None:
    fires = chain(parse_schedule("*/15 * * * *", LONDON), utc(2026, 3, 29, 0, 20), 5)
    assert fires == [utc(2026, 3, 29, 0, 30) + timedelta(minutes=15 * i) for i in range(5)]
    assert [local(f, LONDON) for f in fires] == ["00:30+0000", "00:45+0000", "02:00+0100", "02:15+0100", "02:30+0100"]


def test_london_fall_back_fixed_hour_fires_at_first_occurrence_only() -> None:
    schedule = parse_schedule("30 1 * * *", LONDON)
    assert chain(schedule, utc(2026, 10, 24, 12), 2) == [utc(2026, 10, 25, 0, 30), utc(2026, 10, 26, 1, 30)]
    # From inside either pass of the repeated hour, 01:30 is not run again that day.
    assert schedule.next_after(utc(2026, 10, 25, 0, 40)) == utc(2026, 10, 26, 1, 30)
    assert schedule.next_after(utc(2026, 10, 25, 1, 10)) == utc(2026, 10, 26, 1, 30)


def test_london_fall_back_frequent_job_fires_at_both_occurrences() -> None:
    fires = chain(parse_schedule("*/30 * * * *", LONDON), utc(2026, 10, 24, 23, 10), 7)
    assert fires == [utc(2026, 10, 24, 23, 30) + timedelta(minutes=30 * i) for i in range(7)]
    assert [local(f, LONDON) for f in fires[1:6]] == [
        "01:00+0100", "01:30+0100", "01:00+0000", "01:30+0000", "02:00+0000",
    ]


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (utc(2026, 10, 25, 0, 40), utc(2026, 10, 25, 1, 0)),  # first pass: the second 01:00 is next
        (utc(2026, 10, 25, 1, 0), utc(2026, 10, 25, 1, 30)),
        (utc(2026, 10, 25, 1, 10), utc(2026, 10, 25, 1, 30)),  # second pass
        (utc(2026, 10, 25, 1, 40), utc(2026, 10, 25, 2, 0)),
    ],
)
def test_london_fall_back_frequent_job_from_inside_the_fold(after: datetime, expected: datetime) -> None:
    assert parse_schedule("*/30 * * * *", LONDON).next_after(after) == expected


def test_every_second_across_transitions() -> None:
    schedule = parse_schedule("* * * * * *", LONDON)
    assert schedule.next_after(utc(2026, 3, 29, 0, 59, 59)) == utc(2026, 3, 29, 1, 0, 0)
    assert chain(schedule, utc(2026, 10, 25, 0, 59, 58), 3) == [
        utc(2026, 10, 25, 0, 59, 59), utc(2026, 10, 25, 1), utc(2026, 10, 25, 1, 0, 1),
    ]


@pytest.mark.parametrize("expression", ["* * * * * *", "* * 1 * * *", "*/15 * * * *"])
@pytest.mark.parametrize(
    "after",
    [
        utc(2026, 3, 29, 0, 59, 59),  # just before the gap
        utc(2026, 10, 25, 0, 0, 5),  # first pass of the repeated hour
        utc(2026, 10, 25, 0, 59, 30),
        utc(2026, 10, 25, 1, 0, 5),  # second pass
        utc(2026, 10, 25, 1, 59, 59),
    ],
)
def test_transitions_cost_a_few_croniter_steps(
    monkeypatch: pytest.MonkeyPatch, expression: str, after: datetime
) -> None:
    # Walking the wall clock through a gap or a repeated hour one match at a
    # time would take up to 3600 croniter steps per call.
    calls = 0
    real = croniter.get_next

    def counting(self: croniter, *args: object, **kwargs: object) -> object:
        nonlocal calls
        calls += 1
        return real(self, *args, **kwargs)

    schedule = parse_schedule(expression, LONDON)
    expected = schedule.next_after(after)
    monkeypatch.setattr(croniter, "get_next", counting)
    assert schedule.next_after(after) == expected
    assert calls <= 4


def test_every_second_across_transitions() -> None:
    schedule = parse_schedule("* * * * * *", LONDON)
    assert schedule.next_after(utc(2026, 3, 29, 0, 59, 59)) == utc(2026, 3, 29, 1, 0, 0)
    assert chain(schedule, utc(2026, 10, 25, 0, 59, 58), 3) == [
        utc(2026, 10, 25, 0, 59, 59), utc(2026, 10, 25, 1), utc(2026, 10, 25, 1, 0, 1),
    ]
    during_one = parse_schedule("* * 1 * * *", LONDON)  # every second of 01:xx, fixed hour
    assert during_one.next_after(utc(2026, 3, 29, 0, 30)) == utc(2026, 3, 29, 1)
    assert during_one.next_after(utc(2026, 3, 29, 1)) == utc(2026, 3, 30, 0)
    assert during_one.next_after(utc(2026, 10, 25, 0, 59, 59)) == utc(2026, 10, 26, 1)
    assert during_one.next_after(utc(2026, 10, 25, 1, 0, 5)) == utc(2026, 10, 26, 1)


def test_hourly_job_off_the_hour_gains_no_fire_at_the_transition() -> None:
    fires = chain(parse_schedule("30 * * * *", LONDON), utc(2026, 3, 29, 0), 3)
    assert fires == [utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1, 30), utc(2026, 3, 29, 2, 30)]
    fires = chain(parse_schedule("20 * * * *", LORD_HOWE), utc(2026, 10, 3, 14, 30), 3)
    assert [local(f, LORD_HOWE) for f in fires] == ["01:20+1030", "03:20+1100", "04:20+1100"]


# --- DST: America/New_York ---------------------------------------------------
# 2026-03-08 02:00 EST -> 03:00 EDT (07:00 UTC); 2026-11-01 02:00 EDT -> 01:00 EST (06:00 UTC).


def test_new_york_spring_forward() -> None:
    assert parse_schedule("30 2 * * *", NEW_YORK).next_after(utc(2026, 3, 8)) == utc(2026, 3, 8, 7)
    # Every gap time of a fixed-hour job collapses into one fire at the transition.
    assert chain(parse_schedule("*/10 2 * * *", NEW_YORK), utc(2026, 3, 8, 6), 2) == [
        utc(2026, 3, 8, 7), utc(2026, 3, 9, 6),
    ]
    assert chain(parse_schedule("0 * * * *", NEW_YORK), utc(2026, 3, 8, 5, 30), 3) == [
        utc(2026, 3, 8, 6), utc(2026, 3, 8, 7), utc(2026, 3, 8, 8),
    ]


def test_new_york_fall_back() -> None:
    assert chain(parse_schedule("30 1 * * *", NEW_YORK), utc(2026, 11, 1), 2) == [
        utc(2026, 11, 1, 5, 30), utc(2026, 11, 2, 6, 30),
    ]
    fires = chain(parse_schedule("0 * * * *", NEW_YORK), utc(2026, 11, 1, 3, 30), 4)
    assert fires == [utc(2026, 11, 1, 4), utc(2026, 11, 1, 5), utc(2026, 11, 1, 6), utc(2026, 11, 1, 7)]
    assert [local(f, NEW_YORK) for f in fires] == ["00:00-0400", "01:00-0400", "01:00-0500", "02:00-0500"]


# --- DST: Australia/Lord_Howe (30-minute shift) ------------------------------
# 2026-04-05 02:00 +11 -> 01:30 +10:30 (15:00 UTC on 04-04); 2026-10-04 02:00 +10:30 -> 02:30 +11 (15:30 UTC on 10-03).


def test_lord_howe_fall_back_by_thirty_minutes() -> None:
    assert parse_schedule("45 1 * * *", LORD_HOWE).next_after(utc(2026, 4, 4, 12)) == utc(2026, 4, 4, 14, 45)
    fires = chain(parse_schedule("*/15 * * * *", LORD_HOWE), utc(2026, 4, 4, 14, 20), 6)
    assert fires == [utc(2026, 4, 4, 14, 30) + timedelta(minutes=15 * i) for i in range(6)]
    assert [local(f, LORD_HOWE) for f in fires] == [
        "01:30+1100", "01:45+1100", "01:30+1030", "01:45+1030", "02:00+1030", "02:15+1030",
    ]


def test_lord_howe_spring_forward_by_thirty_minutes() -> None:
    fires = chain(parse_schedule("15 2 * * *", LORD_HOWE), utc(2026, 10, 3, 12), 2)
    assert fires == [utc(2026, 10, 3, 15, 30), utc(2026, 10, 4, 15, 15)]
    assert local(fires[0], LORD_HOWE) == "02:30+1100"
    fires = chain(parse_schedule("*/15 * * * *", LORD_HOWE), utc(2026, 10, 3, 15, 0), 3)
    assert fires == [utc(2026, 10, 3, 15, 15), utc(2026, 10, 3, 15, 30), utc(2026, 10, 3, 15, 45)]
    assert [local(f, LORD_HOWE) for f in fires] == ["01:45+1030", "02:30+1100", "02:45+1100"]


# --- first_fire --------------------------------------------------------------

DAILY_9 = parse_schedule("0 9 * * *")


def test_first_fire_runs_a_missed_slot_within_grace() -> None:
    now = utc(2026, 6, 2, 9, 0, 30)
    assert first_fire(DAILY_9, now=now, since=utc(2026, 6, 1, 9), misfire_grace=60) == utc(2026, 6, 2, 9)
    assert first_fire(DAILY_9, now=now, since=None, misfire_grace=30) == utc(2026, 6, 2, 9)


def test_first_fire_skips_a_slot_missed_beyond_grace() -> None:
    now = utc(2026, 6, 2, 9, 5)
    assert first_fire(DAILY_9, now=now, since=utc(2026, 6, 1, 9), misfire_grace=60) == utc(2026, 6, 3, 9)
    assert first_fire(DAILY_9, now=now, since=None, misfire_grace=299.9) == utc(2026, 6, 3, 9)


def test_first_fire_without_grace_runs_the_latest_missed_slot_once() -> None:
    now = utc(2026, 6, 2, 15)
    assert first_fire(DAILY_9, now=now, since=utc(2026, 5, 1, 9), misfire_grace=None) == utc(2026, 6, 2, 9)
    every_5 = parse_schedule("*/5 * * * *")
    assert first_fire(every_5, now=utc(2026, 6, 2, 12, 7), since=utc(2026, 6, 2, 9), misfire_grace=None) == utc(
        2026, 6, 2, 12, 5
    )


def test_first_fire_never_reruns_a_slot_that_ran() -> None:
    ran = utc(2026, 6, 2, 9)
    assert first_fire(DAILY_9, now=utc(2026, 6, 2, 9, 0, 30), since=ran, misfire_grace=None) == utc(2026, 6, 3, 9)
    assert first_fire(DAILY_9, now=ran, since=ran, misfire_grace=60) == utc(2026, 6, 3, 9)


def test_first_fire_when_now_is_a_slot_and_when_since_is_ahead() -> None:
    on_slot = utc(2026, 6, 2, 9)
    assert first_fire(DAILY_9, now=on_slot, since=utc(2026, 6, 1, 12), misfire_grace=0) == on_slot
    # A clock that went backwards: nothing after `since` is due yet.
    ahead = utc(2026, 6, 3, 9)
    assert first_fire(DAILY_9, now=utc(2026, 6, 2, 8), since=ahead, misfire_grace=None) == utc(2026, 6, 4, 9)


def test_first_fire_in_the_repeated_hour() -> None:
    schedule = parse_schedule("*/30 * * * *", LONDON)
    now = utc(2026, 10, 25, 1, 10)  # 01:10 GMT, second pass
    assert first_fire(schedule, now=now, since=utc(2026, 10, 25), misfire_grace=None) == utc(2026, 10, 25, 1)
    fixed = parse_schedule("30 1 * * *", LONDON)
    assert first_fire(fixed, now=utc(2026, 10, 25, 1, 40), since=utc(2026, 10, 24, 0, 30), misfire_grace=None) == utc(
        2026, 10, 25, 0, 30
    )


def test_first_fire_after_long_downtime_is_instant() -> None:
    schedule = parse_schedule("* * * * * *", LONDON)
    now = utc(2026, 6, 30, 12, 0, 0, 250000)
    started = time.perf_counter()
    assert first_fire(schedule, now=now, since=now - timedelta(days=31), misfire_grace=None) == utc(2026, 6, 30, 12)
    assert first_fire(schedule, now=now, since=now - timedelta(days=31), misfire_grace=86400) == utc(2026, 6, 30, 12)
    next_second = utc(2026, 6, 30, 12, 0, 1)
    assert first_fire(schedule, now=now, since=now - timedelta(days=31), misfire_grace=0.1) == next_second
    assert first_fire(DAILY_9, now=now, since=now - timedelta(days=365), misfire_grace=None) == utc(2026, 6, 30, 9)
    assert time.perf_counter() - started < 0.2


def test_first_fire_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        first_fire(DAILY_9, now=datetime(2026, 1, 1), since=None, misfire_grace=None)
    with pytest.raises(ValueError, match="misfire_grace"):
        first_fire(DAILY_9, now=utc(2026, 1, 1), since=None, misfire_grace=-1)


# --- properties --------------------------------------------------------------

ZONES = [
    "UTC", LONDON, NEW_YORK, LORD_HOWE, "Europe/Berlin", "Australia/Sydney",
    "America/Sao_Paulo", "America/St_Johns", "Pacific/Chatham", "Asia/Kolkata",
]
MINUTES = ["*", "*/15", "0", "30", "0,45", "5-20/5"]
HOURS = ["*", "1", "2", "1-3", "*/2", "0,12", "0-23"]
DAYS = ["*", "*", "1", "15"]
WEEKDAYS = ["*", "*", "0", "1-5"]
SECONDS = [None, None, "0", "*/20"]


def _transitions(tz: str) -> list[datetime]:
    """Offset changes of ``tz`` in 2020-2030, found from daily probes and bisection."""
    zone = zoneinfo.ZoneInfo(tz)
    found, day = [], utc(2020, 1, 1)
    while day.year < 2031:
        lo, hi = day, day + timedelta(days=1)
        if lo.astimezone(zone).utcoffset() != hi.astimezone(zone).utcoffset():
            while hi - lo > timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                same = mid.astimezone(zone).utcoffset() == lo.astimezone(zone).utcoffset()
                lo, hi = (mid, hi) if same else (lo, mid)
            found.append(hi)
        day += timedelta(days=1)
    return found


TRANSITIONS = {tz: _transitions(tz) for tz in ZONES}


@st.composite
def cron_schedules(draw: st.DrawFn, *, with_seconds: bool = True) -> CronSchedule:
    fields = [draw(st.sampled_from(options)) for options in (MINUTES, HOURS, DAYS, ["*"], WEEKDAYS)]
    second = draw(st.sampled_from(SECONDS)) if with_seconds else None
    text = " ".join(fields if second is None else [second, *fields])
    return parse_schedule(text, draw(st.sampled_from(ZONES)))


@st.composite
def instants(draw: st.DrawFn, schedule: CronSchedule) -> datetime:
    """An instant in 2020-2030, usually within hours of one of the zone's DST transitions."""
    near = TRANSITIONS[schedule.timezone]
    if near and draw(st.integers(0, 3)):
        base = draw(st.sampled_from(near))
        return base + timedelta(seconds=draw(st.integers(-3 * 3600, 3 * 3600)), microseconds=draw(st.integers(0, 1)))
    return draw(st.datetimes(datetime(2020, 1, 1), datetime(2030, 12, 31), timezones=st.just(UTC)))


def _hourly(schedule: CronSchedule) -> bool:
    fields = schedule.expression.split()
    return fields[-4] in ("*", "0-23")


@functools.cache
def _expanded(expression: str) -> list[list[object]]:
    fields = expression.split()
    expanded, _ = croniter.expand(expression, second_at_beginning=len(fields) == 6)
    return expanded if len(fields) == 6 else [*expanded, [0]]


def _matches(schedule: CronSchedule, wall: datetime) -> bool:
    """Whether a naive wall time matches the generated expression's fields."""
    minute, hour, day, month, weekday, second = _expanded(schedule.expression)

    def has(values: list[object], value: int) -> bool:
        return values == ["*"] or value in values

    cron_weekday = (wall.weekday() + 1) % 7
    if day != ["*"] and weekday != ["*"]:
        day_ok = has(day, wall.day) or has(weekday, cron_weekday)
    else:
        day_ok = has(day, wall.day) and has(weekday, cron_weekday)
    return (
        has(second, wall.second) and has(minute, wall.minute) and has(hour, wall.hour)
        and has(month, wall.month) and day_ok
    )


def _is_gap_end(schedule: CronSchedule, instant: datetime) -> bool:
    zone = zoneinfo.ZoneInfo(schedule.timezone)
    before = (instant - timedelta(seconds=1)).astimezone(zone).utcoffset()
    return not _hourly(schedule) and before < instant.astimezone(zone).utcoffset()


def _oracle_fires(schedule: CronSchedule, instant: datetime) -> bool:
    """The DST rules, applied instant by instant (whole minutes, 5-field expressions)."""
    zone = zoneinfo.ZoneInfo(schedule.timezone)
    wall = instant.astimezone(zone).replace(tzinfo=None)
    first = wall.replace(tzinfo=zone, fold=0).astimezone(UTC) == instant
    if _matches(schedule, wall) and (first or _hourly(schedule)):
        return True
    if not _is_gap_end(schedule, instant):
        return False
    skipped = (instant - timedelta(seconds=1)).astimezone(zone).replace(tzinfo=None) + timedelta(seconds=1)
    while skipped < wall:
        if _matches(schedule, skipped):
            return True
        skipped += timedelta(minutes=1)
    return False


PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(st.data())
def test_property_next_after_is_later_increasing_and_skips_nothing(data: st.DataObject) -> None:
    schedule = data.draw(cron_schedules())
    t = data.draw(instants(schedule))
    first = schedule.next_after(t)
    second = schedule.next_after(first)
    assert first > t
    assert first.tzinfo is UTC
    assert second > first
    assert schedule.next_after(first - timedelta(microseconds=1)) == first
    assert schedule.next_after(second - timedelta(microseconds=1)) == second


@PROPERTY_SETTINGS
@given(st.data())
def test_property_fires_match_the_local_wall_clock(data: st.DataObject) -> None:
    schedule = data.draw(cron_schedules())
    t = data.draw(instants(schedule))
    for fire in chain(schedule, t, 3):
        wall = fire.astimezone(zoneinfo.ZoneInfo(schedule.timezone)).replace(tzinfo=None)
        assert _matches(schedule, wall) or _is_gap_end(schedule, fire), (schedule, fire, wall)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_property_next_after_agrees_with_a_minute_by_minute_oracle(data: st.DataObject) -> None:
    schedule = data.draw(cron_schedules(with_seconds=False))
    t = data.draw(instants(schedule))
    result = schedule.next_after(t)
    minute = t.replace(second=0, microsecond=0) + timedelta(minutes=1)
    horizon = min(result, t + timedelta(hours=30))
    while minute < horizon:
        assert not _oracle_fires(schedule, minute), (schedule, t, minute, result)
        minute += timedelta(minutes=1)
    if result <= t + timedelta(hours=30):
        assert _oracle_fires(schedule, result), (schedule, t, result)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_property_first_fire_agrees_with_enumeration(data: st.DataObject) -> None:
    schedule = data.draw(cron_schedules(with_seconds=False))
    now = data.draw(instants(schedule))
    since = now - timedelta(seconds=data.draw(st.integers(-3600, 6 * 3600)))
    grace = data.draw(st.sampled_from([None, 0.0, 60.0, 1800.0, 7200.0]))
    slots, s = [], schedule.next_after(since)
    while s <= now:
        slots.append(s)
        s = schedule.next_after(s)
    due = [s for s in slots if grace is None or (now - s).total_seconds() <= grace]
    expected = due[-1] if due else schedule.next_after(max(now, since))
    assert first_fire(schedule, now=now, since=since, misfire_grace=grace) == expected
