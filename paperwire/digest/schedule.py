"""Digests on a schedule inside `paperwire serve`, for sites that would rather not set up cron.

PAPERWIRE_DIGEST_AT (HH:MM, the server's local time) turns it on: once a day at or after that time
the daily digests are queued and delivered, and on PAPERWIRE_DIGEST_WEEKDAY (mon … sun, default
mon) the weekly ones too. In between, every check delivers mail that is due for a retry. The work
is the same as `paperwire digest send`, and as safe to repeat: a digest is queued once per
subscriber and period day, so a restart after the day's run queues nothing twice.

With several server processes on one home only one runs the schedule (an flock on
HOME/digest-schedule.lock). With several nodes on one database each runs its own, and one actor takes
each period day: a node runs a period's digests only while it holds the store's exclusive lock of
the period's schedule (an advisory lock on PostgreSQL, as harvests take), and records the day as done
in the store, so the other nodes pass while it runs and find the day done afterwards. A node killed
part-way records nothing and releases the lock: the next node's check runs the day (queueing is
idempotent, so nothing is queued twice).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time
from pathlib import Path
from typing import Any

from paperwire.digest.deliver import deliver
from paperwire.digest.digests import period_key
from paperwire.digest.run import send_digests
from paperwire.digest.settings import MailConfigError, MailSettings, load_mail_settings
from paperwire.host import FileLock
from paperwire.store import open_store
from paperwire.store.digest_windows import DigestWindows
from paperwire.store.mail import MailStore

log = logging.getLogger("paperwire.digest")

LOCK_NAME = "digest-schedule.lock"
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
CHECK_SECONDS = 60.0


class ScheduleConfigError(ValueError):
    """A schedule setting that cannot work; the message names the setting."""


@dataclass(frozen=True)
class DigestTimes:
    at: time
    weekday: int  # 0 = Monday

    def due(self, now: datetime, done: dict[str, str]) -> list[str]:
        """Periods whose run for today is due at `now` and not yet `done` (period → day last run)."""
        if now.time() < self.at:
            return []
        today = now.date().isoformat()
        periods = ["daily"] + (["weekly"] if now.weekday() == self.weekday else [])
        return [p for p in periods if done.get(p) != today]


def parse_times(config: dict[str, Any]) -> DigestTimes | None:
    """The schedule from PAPERWIRE_DIGEST_AT / PAPERWIRE_DIGEST_WEEKDAY; None when not asked for."""
    at_text = str(config.get("PAPERWIRE_DIGEST_AT") or "").strip()
    if not at_text:
        return None
    try:
        at = time.fromisoformat(at_text)
    except ValueError:
        raise ScheduleConfigError(f"PAPERWIRE_DIGEST_AT: not a time of day (HH:MM): {at_text[:20]!r}") from None
    day = str(config.get("PAPERWIRE_DIGEST_WEEKDAY") or "mon").strip().lower()[:3]
    if day not in WEEKDAYS:
        raise ScheduleConfigError(f"PAPERWIRE_DIGEST_WEEKDAY: use one of {', '.join(WEEKDAYS)}")
    return DigestTimes(at, WEEKDAYS.index(day))


class DigestScheduler:
    """A background thread that runs the digests when they are due (see the module docstring)."""

    def __init__(self, home: Path, config: dict[str, Any], times: DigestTimes, *,
                 index: Callable[[], Any] | None = None, now: Callable[[], datetime] | None = None) -> None:
        self.home, self.config, self.times = Path(home), config, times
        self.index = index  # the server's loaded search index, asked for only when a digest needs it
        self.now = now or (lambda: datetime.now().astimezone())
        self.check_seconds = float(config.get("PAPERWIRE_DIGEST_CHECK_SECONDS") or CHECK_SECONDS)
        self.done: dict[str, str] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock: FileLock | None = None

    def start(self) -> bool:
        """Start unless another process runs the schedule; True if this one does."""
        lock = FileLock(self.home / LOCK_NAME)
        if not lock.acquire(wait=False):
            return False
        self._lock = lock
        self._thread = threading.Thread(target=self._loop, name="paperwire-digests", daemon=True)
        self._thread.start()
        at = self.times.at.strftime("%H:%M")
        log.info("digests: daily at %s, weekly on %s", at, WEEKDAYS[self.times.weekday])
        return True

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # a bad day must not stop tomorrow's digests
                log.exception("scheduled digests failed")
            self._stop.wait(self.check_seconds)

    def tick(self) -> list[dict[str, Any]]:
        """One check: run what is due, else deliver retries that are due. Returns the run reports."""
        try:
            settings = load_mail_settings(self.home, self.config)
        except MailConfigError as exc:
            log.error("scheduled digests: mail is not configured: %s", exc)
            return []
        now = self.now()
        reports = []
        store = open_store(self.home)
        try:
            for period in self.times.due(now, self.done):
                data = self._run(store, settings, period, now)
                if data is not None:
                    reports.append({"period": period, **data})
                    log.info("scheduled %s digests: %s queued, %s sent, %s failed", period, data["queued"],
                             data["sent"], data["failed"])
            if not reports:
                mail = MailStore(store)
                due_at = mail.next_attempt_at()
                if due_at is not None and due_at <= now.timestamp() and mail.queued_count():
                    deliver(self.home, store, settings)
        finally:
            store.close()
        return reports


    def _run(self, store: Any, settings: MailSettings, period: str, now: datetime) -> dict[str, Any] | None:
        """The period's digests for today unless another node runs them or ran them: the run's report,
        or None when this node left it."""
        day = now.date()
        with store.exclusive(f"digest-schedule-{period}", wait=False) as ours:
            if not ours:
                return None  # another node is running it: the next check finds it done
            windows = DigestWindows(store)
            if not windows.scheduled_run_done(period, period_key(period, day)):
                report = send_digests(self.home, store, settings, period, day=day,
                                      index=_Lazy(self.index) if self.index else None, config=self.config)
                windows.record_scheduled_run(period, period_key(period, day), day.isoformat())
                self.done[period] = day.isoformat()
                return report.to_dict()
        self.done[period] = day.isoformat()
        return None


class _Lazy:
    """The server's index, fetched on first attribute use (most digests never need it)."""

    def __init__(self, get: Callable[[], Any]) -> None:
        self._get = get
        self._index: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._index is None:
            self._index = self._get()
        return getattr(self._index, name)

