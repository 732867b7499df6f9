"""Cron timing on APScheduler 3.x, with the host deciding what a fire means.

APScheduler keeps the clock: it wakes ``lead`` seconds before each slot
(so that the run's process is forked and its strategy imported by the
slot; the run waits for the slot to call ``run()``), applies the misfire grace
time and coalescing, and reports missed slots. Two small adapters keep the
rest ours: ``ScheduleTrigger`` computes slots with ``host.schedule`` (our
DST rules, seconds-first cron), and ``LaunchExecutor`` hands each fire,
with its slot time, to the supervisor instead of running a function in a
thread pool. Overlap is therefore decided by the supervisor, which knows
whether a run's process is still alive; APScheduler's ``max_instances``
only counts functions, not processes.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from apscheduler.executors.base import BaseExecutor
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.base import BaseTrigger

from .schedule import CronSchedule

__all__ = ["LaunchExecutor", "ScheduleTrigger", "Scheduler"]

log = logging.getLogger("tradehost.scheduler")

FireCallback = Callable[[str, datetime], None]


class ScheduleTrigger(BaseTrigger):
    """An APScheduler trigger backed by a ``CronSchedule``."""

    def __init__(self, schedule: CronSchedule, misfire_grace: float | None, lead: float = 0.0) -> None:
        self.schedule = schedule
        self.misfire_grace = misfire_grace
        self.lead = timedelta(seconds=lead)

    def get_next_fire_time(self, previous_fire_time: datetime | None, now: datetime) -> datetime | None:
        # Fire times are slots minus the lead: the run's process is started ahead of its slot.
        now = now + self.lead
        start = previous_fire_time + self.lead if previous_fire_time is not None else now
        # APScheduler enumerates every slot between the last fire and now; after
        # a suspend or clock jump that can be millions. Piles of missed runs are
        # never replayed, so start from the grace window: older slots are skipped
        # (the first of them is still reported as missed by LaunchExecutor).
        window = timedelta(seconds=self.misfire_grace or 0) + timedelta(seconds=1)
        if start < now - window:
            start = now - window
        return self.schedule.next_after(start) - self.lead

    def __str__(self) -> str:
        return f"cron[{self.schedule.expression!r}, {self.schedule.timezone}]"

    def __getstate__(self) -> dict[str, Any]:
        return {"schedule": self.schedule, "misfire_grace": self.misfire_grace, "lead": self.lead}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)


class LaunchExecutor(BaseExecutor):
    """Hands a due job and its slot to the supervisor instead of calling a function.

    The misfire check is the one APScheduler's own ``run_job`` applies (a slot
    later than the grace time is reported as missed, not fired), but with a
    fractional grace: APScheduler only accepts whole seconds.
    """

    def __init__(self, fire: FireCallback, missed: FireCallback, grace_of: Callable[[str], float | None], lead: float = 0.0) -> None:
        super().__init__()
        self._fire = fire
        self._missed = missed
        self._grace_of = grace_of
        self._lead = timedelta(seconds=lead)

    def submit_job(self, job: Any, run_times: list[datetime]) -> None:
        now = datetime.now(timezone.utc)
        seconds = self._grace_of(job.id)
        grace = None if seconds is None else timedelta(seconds=seconds)
        for run_time in run_times:
            slot = run_time + self._lead
            if grace is not None and now - slot > grace:
                log.warning("%s: slot %s missed by %s", job.id, slot.isoformat(), now - slot)
                self._missed(job.id, slot)
            else:
                self._fire(job.id, slot)

    def _do_submit_job(self, job: Any, run_times: list[datetime]) -> None:
        raise NotImplementedError("submit_job is overridden")


def _never_called() -> None:
    raise RuntimeError("LaunchExecutor does not call job functions")


class Scheduler:
    """The cron clock for all strategies; thread-safe, callbacks run in its thread."""

    def __init__(self, *, on_fire: FireCallback, on_missed: FireCallback, lead: float = 0.0) -> None:
        """``lead``: seconds before each slot that ``on_fire`` is called; it receives the slot itself."""
        self._grace: dict[str, float | None] = {}
        self._lead = lead
        executor = LaunchExecutor(on_fire, on_missed, lambda name: self._grace.get(name), lead)
        self._aps = BackgroundScheduler(timezone=timezone.utc, executors={"default": executor})
        self._lock = threading.Lock()

    def start(self) -> None:
        self._aps.start()

    def shutdown(self) -> None:
        if self._aps.running:
            self._aps.shutdown(wait=False)

    @property
    def alive(self) -> bool:
        thread = getattr(self._aps, "_thread", None)
        return bool(self._aps.running and thread is not None and thread.is_alive())

    def schedule(self, name: str, schedule: CronSchedule, *, first: datetime, misfire_grace: float | None, coalesce: bool) -> None:
        """Schedule (or reschedule) ``name``; ``first`` is its next slot."""
        with self._lock:
            self._grace[name] = misfire_grace
            self._aps.add_job(
                _never_called,
                trigger=ScheduleTrigger(schedule, misfire_grace, self._lead),
                id=name,
                name=name,
                next_run_time=first - timedelta(seconds=self._lead),
                misfire_grace_time=None,  # checked by LaunchExecutor
                coalesce=coalesce,
                replace_existing=True,
            )

    def unschedule(self, name: str) -> None:
        with self._lock:
            if self._aps.get_job(name) is not None:
                self._aps.remove_job(name)
            self._grace.pop(name, None)

    def next_run(self, name: str) -> datetime | None:
        """The next slot of ``name`` (not the earlier moment its process is started)."""
        job = self._aps.get_job(name)
        if job is None or job.next_run_time is None:
            return None
        return job.next_run_time + timedelta(seconds=self._lead)
