"""Tests for host.scheduler: the catch-up bound, the executor and the real APScheduler clock."""

from __future__ import annotations

import pickle
import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from types import SimpleNamespace

import pytest

from host.schedule import CronSchedule, parse_schedule
from host.scheduler import LaunchExecutor, Scheduler, ScheduleTrigger

UTC = timezone.utc
EVERY_SECOND = "* * * * * *"
YEARLY = "0 0 1 1 *"


def every_second() -> CronSchedule:
    schedule = parse_schedule(EVERY_SECOND)
    assert isinstance(schedule, CronSchedule)
    return schedule


# ------------------------------------------------------------ ScheduleTrigger


@pytest.mark.parametrize("grace", [None, 0.0, 5.0, 60.0])
def test_catch_up_after_a_month_is_bounded_and_fast(grace: float | None) -> None:
    trigger = ScheduleTrigger(every_second(), grace)
    now = datetime(2025, 3, 10, 12, 0, 0, 500000, tzinfo=UTC)
    started = time.perf_counter()
    fire = trigger.get_next_fire_time(now - timedelta(days=31), now)
    elapsed = time.perf_counter() - started
    assert elapsed < 0.1
    assert fire is not None
    window = timedelta(seconds=(grace or 0) + 1)
    assert now - window < fire <= now - window + timedelta(seconds=1)
    assert fire.microsecond == 0


def test_recent_previous_fire_gives_the_next_slot() -> None:
    trigger = ScheduleTrigger(every_second(), 10.0)
    now = datetime(2025, 3, 10, 12, 0, 0, tzinfo=UTC)
    assert trigger.get_next_fire_time(now - timedelta(seconds=3), now) == now - timedelta(seconds=2)
    assert trigger.get_next_fire_time(None, now) == now + timedelta(seconds=1)


def test_apscheduler_run_time_enumeration_stays_short() -> None:
    """What APScheduler does with the trigger: walk from the last fire up to now."""
    trigger = ScheduleTrigger(every_second(), 2.0)
    now = datetime(2025, 3, 10, 12, 0, 0, tzinfo=UTC)
    run_times = []
    fire = now - timedelta(days=31)
    started = time.perf_counter()
    while fire <= now:
        run_times.append(fire)
        fire = trigger.get_next_fire_time(fire, now)
    assert time.perf_counter() - started < 0.2
    # the stale one, then only the slots inside the grace window (after now - grace - 1 s)
    assert run_times == [now - timedelta(days=31)] + [now - timedelta(seconds=s) for s in (2, 1, 0)]


def test_trigger_str_and_pickle() -> None:
    trigger = ScheduleTrigger(CronSchedule("*/5 * * * *", "Europe/London"), 30.0)
    assert str(trigger) == "cron['*/5 * * * *', Europe/London]"
    copy = pickle.loads(pickle.dumps(trigger))
    assert copy.misfire_grace == 30.0
    assert copy.schedule == trigger.schedule
    now = datetime(2025, 6, 1, 10, 1, tzinfo=UTC)
    assert copy.get_next_fire_time(None, now) == trigger.get_next_fire_time(None, now)


# ------------------------------------------------------------ LaunchExecutor


class Recorder:
    def __init__(self) -> None:
        self.fired: list[tuple[str, datetime, datetime]] = []
        self.missed: list[tuple[str, datetime]] = []
        self.lock = threading.Lock()
        self.event = threading.Event()

    def fire(self, name: str, slot: datetime) -> None:
        with self.lock:
            self.fired.append((name, slot, datetime.now(UTC)))
        self.event.set()

    def miss(self, name: str, slot: datetime) -> None:
        with self.lock:
            self.missed.append((name, slot))
        self.event.set()


def test_executor_splits_fired_and_missed_with_fractional_grace() -> None:
    rec = Recorder()
    executor = LaunchExecutor(rec.fire, rec.miss, {"job": 0.5}.get)
    now = datetime.now(UTC)
    old, recent = now - timedelta(seconds=2), now - timedelta(seconds=0.1)
    executor.submit_job(SimpleNamespace(id="job"), [old, recent])
    assert rec.missed == [("job", old)]
    assert [(name, slot) for name, slot, _ in rec.fired] == [("job", recent)]


def test_executor_without_grace_fires_however_late() -> None:
    rec = Recorder()
    executor = LaunchExecutor(rec.fire, rec.miss, lambda _name: None)
    ancient = datetime.now(UTC) - timedelta(days=400)
    executor.submit_job(SimpleNamespace(id="job"), [ancient])
    assert [slot for _, slot, _ in rec.fired] == [ancient]
    assert rec.missed == []


# ------------------------------------------------------------ Scheduler (real clock)


@pytest.fixture
def rec() -> Recorder:
    return Recorder()


@pytest.fixture
def scheduler(rec: Recorder) -> Iterator[Scheduler]:
    sched = Scheduler(on_fire=rec.fire, on_missed=rec.miss)
    sched.start()
    yield sched
    sched.shutdown()


def test_every_second_fires_on_time_then_unschedule_stops(scheduler: Scheduler, rec: Recorder) -> None:
    assert scheduler.alive
    schedule = every_second()
    first = schedule.next_after(datetime.now(UTC) + timedelta(seconds=0.2))
    scheduler.schedule("tick", schedule, first=first, misfire_grace=5.0, coalesce=True)
    assert scheduler.next_run("tick") == first

    time.sleep((first - datetime.now(UTC)).total_seconds() + 1.6)
    with rec.lock:
        fired = list(rec.fired)
    assert rec.missed == []
    assert len(fired) >= 2
    slots = [slot for _, slot, _ in fired]
    assert slots[0] == first
    assert all(name == "tick" for name, _, _ in fired)
    assert all(slot.microsecond == 0 and slot.tzinfo is not None for slot in slots)
    assert all(b - a == timedelta(seconds=1) for a, b in zip(slots, slots[1:]))
    for _, slot, at in fired:
        late = (at - slot).total_seconds()
        assert 0 <= late < 0.05, f"slot {slot} fired {late * 1000:.1f} ms late"
    assert scheduler.next_run("tick") == slots[-1] + timedelta(seconds=1)

    scheduler.unschedule("tick")
    assert scheduler.next_run("tick") is None
    count = len(rec.fired)
    would_be_next = slots[-1] + timedelta(seconds=1)
    time.sleep(max(0.0, (would_be_next - datetime.now(UTC)).total_seconds()) + 0.15)
    assert len(rec.fired) == count
    scheduler.unschedule("tick")  # unscheduling twice is harmless


def test_first_slot_in_the_past_beyond_grace_is_missed(scheduler: Scheduler, rec: Recorder) -> None:
    first = datetime.now(UTC) - timedelta(seconds=10)
    scheduler.schedule("late", CronSchedule(YEARLY), first=first, misfire_grace=1.0, coalesce=True)
    assert rec.event.wait(2.0)
    time.sleep(0.05)
    assert rec.missed == [("late", first)]
    assert rec.fired == []
    next_run = scheduler.next_run("late")
    assert next_run is not None and next_run > datetime.now(UTC)
    assert (next_run.month, next_run.day, next_run.hour, next_run.minute, next_run.second) == (1, 1, 0, 0, 0)


def test_first_slot_in_the_past_within_grace_fires_at_once(scheduler: Scheduler, rec: Recorder) -> None:
    first = datetime.now(UTC) - timedelta(seconds=2)
    scheduler.schedule("soon", CronSchedule(YEARLY), first=first, misfire_grace=30.0, coalesce=True)
    assert rec.event.wait(2.0)
    assert [(name, slot) for name, slot, _ in rec.fired] == [("soon", first)]
    assert rec.missed == []


def test_reschedule_replaces_the_job(scheduler: Scheduler, rec: Recorder) -> None:
    far = datetime.now(UTC) + timedelta(hours=1)
    scheduler.schedule("job", CronSchedule(YEARLY), first=far, misfire_grace=None, coalesce=True)
    later = far + timedelta(days=1)
    scheduler.schedule("job", CronSchedule(YEARLY), first=later, misfire_grace=None, coalesce=True)
    assert scheduler.next_run("job") == later
    assert scheduler.next_run("unknown") is None


def test_shutdown_makes_it_not_alive(rec: Recorder) -> None:
    sched = Scheduler(on_fire=rec.fire, on_missed=rec.miss)
    assert not sched.alive
    sched.start()
    assert sched.alive
    sched.shutdown()
    assert not sched.alive
    sched.shutdown()  # idempotent


def test_lead_fires_ahead_of_each_slot_and_reports_the_slot(rec: Recorder) -> None:
    sched = Scheduler(on_fire=rec.fire, on_missed=rec.miss, lead=0.3)
    sched.start()
    try:
        schedule = every_second()
        first = schedule.next_after(datetime.now(UTC) + timedelta(seconds=0.5))
        sched.schedule("early", schedule, first=first, misfire_grace=5.0, coalesce=True)
        assert sched.next_run("early") == first, "next_run names the slot, not the earlier launch"
        time.sleep((first - datetime.now(UTC)).total_seconds() + 1.2)
        with rec.lock:
            fired = list(rec.fired)
    finally:
        sched.shutdown()
    slots = [slot for _, slot, _ in fired]
    assert slots[:2] == [first, first + timedelta(seconds=1)]
    for _, slot, at in fired:
        early = (slot - at).total_seconds()
        assert 0.25 < early <= 0.3 + 1e-3, f"fired {early * 1000:.0f} ms before its slot"


def test_trigger_with_lead_returns_slots_minus_lead() -> None:
    trigger = ScheduleTrigger(every_second(), misfire_grace=5.0, lead=0.25)
    now = datetime(2026, 3, 1, 12, 0, 0, 500000, tzinfo=UTC)
    fire = trigger.get_next_fire_time(now - timedelta(seconds=0.25), now)
    assert fire == datetime(2026, 3, 1, 12, 0, 0, 750000, tzinfo=UTC)
