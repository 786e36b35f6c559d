"""Cron slot arithmetic: when an expression fires, in a time zone, across daylight-saving days.

Slots are UTC epoch seconds (floats); ``CronSchedule.local`` turns one into an aware datetime
in the schedule's zone. Expressions have the five classic fields (croniter 7 reads them);
``seconds=True`` allows a sixth, leading seconds field, which only tests use.

Daylight-saving days follow cron(8): a wall-clock time that does not exist (02:30 on the
spring-forward day in Europe/Zurich) fires once, at the next valid time (03:00). A wall-clock
time that happens twice (02:30 on the fall-back day) fires once, at its first occurrence, for
a *fixed-time* expression (neither the minute nor the hour field starts with ``*``: "30 2 * *
*", "@daily"). A wildcard expression ("*/15 * * * *", "@hourly") keeps its real-time rhythm
and fires in the repeated hour as well, as cron does.

``plan_slots`` applies a catch-up policy to the slots that fell due since the last handled one.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone, tzinfo
from typing import Any, Literal

from ..errors import ScheduleError

CatchUp = Literal["none", "latest", "all"]

EXPECTED = "expected 'minute hour day-of-month month day-of-week', e.g. \"0 */6 * * *\""
ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# A slot found this many seconds after it fell due still counts as on time (a busy machine);
# older ones were missed (the scheduler was down or suspended): the catch-up policy decides.
ON_TIME_GRACE = 60.0


@dataclass(frozen=True)
class CronSchedule:
    """A parsed cron expression in a time zone; build it with ``CronSchedule.parse``."""

    expression: str
    zone: tzinfo
    zone_name: str
    seconds: bool = False

    @classmethod
    def parse(
        cls, expression: str, timezone_name: str | None = None, *, seconds: bool = False
    ) -> CronSchedule:
        """Check ``expression`` and ``timezone_name`` (IANA, None = this machine's zone).

        Raises ScheduleError with the reason and what was expected.
        """
        zone, zone_name = resolve_zone(timezone_name)
        text = " ".join(expression.split())
        text = ALIASES.get(text.lower(), text)
        want = 6 if seconds else 5
        if len(text.split()) != want:
            what = "six fields, seconds first" if seconds else EXPECTED
            raise ScheduleError(f"invalid cron schedule '{expression}': {what}")
        schedule = cls(text, zone, zone_name, seconds)
        try:
            schedule._iterator(datetime.now(zone)).get_next(datetime)
        except Exception as exc:  # croniter's errors say what is wrong with the field
            raise ScheduleError(
                f"invalid cron schedule '{expression}': {_croniter_reason(exc)}; {EXPECTED}"
            ) from None
        return schedule

    @property
    def fixed_time(self) -> bool:
        """True when minute and hour are fixed values: such slots fire once on fall-back days."""
        fields = self.expression.split()
        minute, hour = fields[1:3] if self.seconds else fields[0:2]
        return not (minute.startswith("*") or hour.startswith("*"))

    def local(self, slot: float) -> datetime:
        """The slot as an aware datetime in the schedule's zone."""
        return datetime.fromtimestamp(slot, self.zone)

    def iso(self, slot: float) -> str:
        """ISO 8601 with the zone's offset, e.g. ``2026-03-29T03:00:00+02:00``."""
        return self.local(slot).isoformat()

    def next_after(self, moment: float) -> float:
        """The first slot strictly after ``moment``."""
        return next(self.following(moment))

    def upcoming(self, moment: float, count: int) -> list[float]:
        """The next ``count`` slots strictly after ``moment``."""
        slots = self.following(moment)
        return [next(slots) for _ in range(count)]

    def following(self, moment: float) -> Iterator[float]:
        """Slots strictly after ``moment``, oldest first, without end."""
        iterator = self._iterator(self.local(moment))
        last = moment
        while True:
            slot = iterator.get_next(datetime).timestamp()
            if slot > last and self._counts(slot):
                last = slot
                yield slot

    def preceding(self, moment: float) -> Iterator[float]:
        """Slots at or before ``moment``, newest first, without end (stop it yourself)."""
        # Start one whole second later: get_prev is strictly before its start, and a slot at
        # exactly ``moment`` is due.
        iterator = self._iterator(self.local(math.floor(moment) + 1))
        last = math.inf
        while True:
            slot = iterator.get_prev(datetime).timestamp()
            if slot <= moment and slot < last and self._counts(slot):
                last = slot
                yield slot

    def _counts(self, slot: float) -> bool:
        # fold=1 marks the second occurrence of a repeated wall-clock time (computed here:
        # croniter's own fold values are unreliable when going backwards).
        return not (self.fixed_time and self.local(slot).fold == 1)

    def _iterator(self, start: datetime) -> Any:  # a croniter (imported only when needed)
        from croniter import croniter

        return croniter(self.expression, start, second_at_beginning=self.seconds)


def resolve_zone(name: str | None) -> tuple[tzinfo, str]:
    """The zone called ``name`` (IANA), or this machine's zone for None; ScheduleError if
    unknown."""
    from zoneinfo import ZoneInfo

    if name is None:
        return local_zone()
    try:
        return ZoneInfo(name), name
    except (KeyError, ValueError, OSError):  # not found is a KeyError, a malformed name not
        pass
    raise ScheduleError(f"unknown time zone '{name}': expected an IANA name like Europe/Zurich")


def local_zone() -> tuple[tzinfo, str]:
    """This machine's zone with its daylight-saving rules (TZ, else /etc/localtime, else UTC)."""
    from zoneinfo import ZoneInfo

    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return ZoneInfo(name), name
        except (ValueError, OSError, KeyError):
            pass
    try:
        with open("/etc/localtime", "rb") as file:
            return ZoneInfo.from_file(file, key="localtime"), _localtime_name()
    except (OSError, ValueError):
        return timezone.utc, "UTC"


def _localtime_name() -> str:
    target = os.path.realpath("/etc/localtime")
    marker = "zoneinfo/"
    return target.split(marker, 1)[1] if marker in target else "local time"


def _croniter_reason(exc: Exception) -> str:
    from croniter import CroniterBadDateError

    if isinstance(exc, CroniterBadDateError):
        return "it never matches a date"
    return str(exc) or type(exc).__name__


@dataclass(frozen=True)
class SlotPlan:
    """What to do with the slots due since the last handled one.

    ``fire``: slots to run now, oldest first. ``missed``: (first, last) of the due slots that
    the catch-up policy does not run, or None. ``newest``: the newest due slot (the new mark),
    or None when nothing fell due.
    """

    fire: tuple[float, ...]
    missed: tuple[float, float] | None
    newest: float | None


def plan_slots(
    schedule: CronSchedule,
    mark: float,
    now: float,
    *,
    catchup: CatchUp,
    max_catchup: int = 100,
    grace: float = ON_TIME_GRACE,
) -> SlotPlan:
    """Plan the slots in ``(mark, now]``: those at most ``grace`` seconds old are on time and
    always fire; older ones were missed and fire per ``catchup``: ``none`` not at all,
    ``latest`` the newest one unless an on-time slot fires, ``all`` the newest
    ``max_catchup``. Looks at no more slots than it needs, however long the downtime.
    """
    on_time: list[float] = []
    missed: list[float] = []
    for slot in schedule.preceding(now):
        if slot <= mark:
            break
        if now - slot <= grace:
            on_time.append(slot)
            continue
        missed.append(slot)
        if len(missed) > _wanted(catchup, max_catchup, on_time):
            break  # one more than we fire: the newest slot left out
    wanted = _wanted(catchup, max_catchup, on_time)
    fire = [*reversed(missed[:wanted]), *reversed(on_time)]
    left_out = missed[wanted:]
    dropped = (schedule.next_after(mark), left_out[0]) if left_out else None
    newest = on_time[0] if on_time else (missed[0] if missed else None)
    return SlotPlan(tuple(fire), dropped, newest)


def _wanted(catchup: CatchUp, max_catchup: int, on_time: list[float]) -> int:
    if catchup == "all":
        return max_catchup
    if catchup == "latest":
        return 0 if on_time else 1
    return 0
