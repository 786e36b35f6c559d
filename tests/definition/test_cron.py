"""Slot arithmetic of cron schedules: parsing, DST days in Europe/Zurich, catch-up plans."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone, tzinfo
from itertools import pairwise
from zoneinfo import ZoneInfo

import pytest

from jupyter_workflows.definition.cron import CronSchedule, ScheduleError, plan_slots, resolve_zone

ZURICH = ZoneInfo("Europe/Zurich")
UTC = timezone.utc


def at(*parts: int, tz: tzinfo = UTC) -> float:
    return datetime(*parts, tzinfo=tz).timestamp()  # type: ignore[misc,arg-type]


def local_times(schedule: CronSchedule, slots: list[float]) -> list[str]:
    return [schedule.local(slot).strftime("%H:%M%z") for slot in slots]


def slots_of_day(schedule: CronSchedule, day: datetime) -> list[float]:
    """Every slot from local midnight of ``day`` to the next local midnight."""
    start = day.replace(tzinfo=schedule.zone).timestamp()
    end = (day + timedelta(days=1)).replace(tzinfo=schedule.zone).timestamp()
    found: list[float] = []
    for slot in schedule.following(start - 1):
        if slot >= end:
            return found
        found.append(slot)
    raise AssertionError("unreachable")


# -- parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "reason"),
    [
        ("61 * * * *", "out of range"),
        ("* * * *", "expected 'minute hour day-of-month month day-of-week'"),
        ("0 * * * * *", "expected 'minute hour"),  # seconds only with seconds=True
        ("every hour", "expected 'minute hour"),
        ("0 0 30 2 *", "never matches a date"),
        ("0 25 * * *", "out of range"),
    ],
)
def test_bad_expressions_say_why_and_what_is_expected(expression: str, reason: str) -> None:
    with pytest.raises(ScheduleError) as caught:
        CronSchedule.parse(expression, "UTC")
    message = str(caught.value)
    assert f"'{expression}'" in message
    assert reason in message


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "../../etc/passwd", "", "Europe/"])
def test_unknown_time_zones_are_refused(zone: str) -> None:
    with pytest.raises(ScheduleError, match="unknown time zone .*IANA name"):
        CronSchedule.parse("0 * * * *", zone)


def test_aliases_and_whitespace() -> None:
    daily = CronSchedule.parse("@daily", "Europe/Zurich")
    assert daily.expression == "0 0 * * *"
    assert daily.fixed_time
    assert not CronSchedule.parse("@hourly", "UTC").fixed_time
    assert CronSchedule.parse("  0   */6 * *  * ", "UTC").expression == "0 */6 * * *"


def test_seconds_form_has_six_fields_seconds_first() -> None:
    schedule = CronSchedule.parse("*/2 * * * * *", "UTC", seconds=True)
    start = at(2026, 1, 5, 10, 0, 0)
    assert [slot - start for slot in schedule.upcoming(start, 3)] == [2, 4, 6]
    with pytest.raises(ScheduleError, match="six fields"):
        CronSchedule.parse("* * * * *", "UTC", seconds=True)


def test_no_zone_means_this_machines_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Europe/Zurich")
    zone, name = resolve_zone(None)
    assert name == "Europe/Zurich"
    winter = datetime(2026, 1, 5, 12, tzinfo=zone)
    summer = datetime(2026, 7, 5, 12, tzinfo=zone)
    assert (winter.utcoffset(), summer.utcoffset()) == (timedelta(hours=1), timedelta(hours=2))


# -- next slots ---------------------------------------------------------------------------------


def test_next_slot_is_strictly_after_the_moment() -> None:
    schedule = CronSchedule.parse("*/15 * * * *", "UTC")
    assert schedule.next_after(at(2026, 1, 5, 10, 0)) == at(2026, 1, 5, 10, 15)
    assert schedule.next_after(at(2026, 1, 5, 10, 0) - 0.25) == at(2026, 1, 5, 10, 0)
    assert schedule.next_after(at(2026, 1, 5, 10, 0) + 0.25) == at(2026, 1, 5, 10, 15)
    assert isinstance(schedule.next_after(0.0), float)


def test_slots_are_computed_in_the_schedules_zone() -> None:
    schedule = CronSchedule.parse("0 6 * * *", "Europe/Zurich")
    winter, summer = (schedule.next_after(at(2026, m, 5)) for m in (1, 7))
    assert winter == at(2026, 1, 5, 5, 0)  # 06:00 CET is 05:00 UTC
    assert summer == at(2026, 7, 5, 4, 0)  # 06:00 CEST is 04:00 UTC
    assert schedule.iso(winter) == "2026-01-05T06:00:00+01:00"


def test_preceding_includes_a_slot_exactly_at_the_moment() -> None:
    schedule = CronSchedule.parse("*/15 * * * *", "UTC")
    slots = schedule.preceding(at(2026, 1, 5, 10, 15))
    assert [next(slots), next(slots)] == [at(2026, 1, 5, 10, 15), at(2026, 1, 5, 10, 0)]


# -- daylight saving, Europe/Zurich: 2026-03-29 02:00 -> 03:00, 2026-10-25 03:00 -> 02:00 --------


def test_spring_forward_a_missing_slot_fires_once_at_the_next_valid_time() -> None:
    daily = CronSchedule.parse("30 2 * * *", "Europe/Zurich")
    assert local_times(daily, slots_of_day(daily, datetime(2026, 3, 29))) == ["03:00+0200"]
    assert local_times(daily, slots_of_day(daily, datetime(2026, 3, 30))) == ["02:30+0200"]
    # Both 02:00 and 02:30 are missing: they collapse into one run at 03:00.
    twice = CronSchedule.parse("0,30 2 * * *", "Europe/Zurich")
    assert local_times(twice, slots_of_day(twice, datetime(2026, 3, 29))) == ["03:00+0200"]
    spread = CronSchedule.parse("30 1-3 * * *", "Europe/Zurich")
    assert local_times(spread, slots_of_day(spread, datetime(2026, 3, 29))) == [
        "01:30+0100",
        "03:00+0200",
        "03:30+0200",
    ]


def test_fall_back_a_repeated_slot_fires_once_at_its_first_occurrence() -> None:
    daily = CronSchedule.parse("30 2 * * *", "Europe/Zurich")
    slots = slots_of_day(daily, datetime(2026, 10, 25))
    assert local_times(daily, slots) == ["02:30+0200"]
    assert slots == [at(2026, 10, 25, 0, 30)]  # in UTC: the first 02:30 is 00:30Z
    twice = CronSchedule.parse("0,30 2 * * *", "Europe/Zurich")
    assert local_times(twice, slots_of_day(twice, datetime(2026, 10, 25))) == [
        "02:00+0200",
        "02:30+0200",
    ]


def test_wildcard_hours_keep_their_real_time_rhythm_on_dst_days() -> None:
    """As cron(8): an hourly job runs 23 times on the short day and 25 on the long one."""
    hourly = CronSchedule.parse("0 * * * *", "Europe/Zurich")
    short = slots_of_day(hourly, datetime(2026, 3, 29))
    long = slots_of_day(hourly, datetime(2026, 10, 25))
    assert len(short) == 23 and "02:00+0100" not in local_times(hourly, short)
    assert len(long) == 25
    assert local_times(hourly, long)[2:4] == ["02:00+0200", "02:00+0100"]
    assert all(b - a == 3600 for a, b in pairwise(long))


@pytest.mark.parametrize(
    "expression", ["30 2 * * *", "0,30 2 * * *", "*/20 * * * *", "30 1-3 * * *", "15 * * * *"]
)
@pytest.mark.parametrize("day", [datetime(2026, 3, 29), datetime(2026, 10, 25)])
def test_going_backwards_finds_the_same_slots(expression: str, day: datetime) -> None:
    """Catch-up walks backwards from now; it must agree with the forward walk on DST days."""
    schedule = CronSchedule.parse(expression, "Europe/Zurich")
    forward = slots_of_day(schedule, day)
    start = day.replace(tzinfo=ZURICH).timestamp()
    end = (day + timedelta(days=1)).replace(tzinfo=ZURICH).timestamp()
    backward = []
    for slot in schedule.preceding(end - 1):
        if slot < start:
            break
        backward.append(slot)
    assert forward and backward[::-1] == forward


# -- catch-up plans -----------------------------------------------------------------------------

FIVE = CronSchedule.parse("*/5 * * * *", "UTC")
T0 = at(2026, 1, 5, 10, 0)
MIN = 60.0


def test_nothing_due_nothing_planned() -> None:
    plan = plan_slots(FIVE, T0, T0 + 4 * MIN, catchup="all")
    assert (plan.fire, plan.missed, plan.newest) == ((), None, None)


def test_an_on_time_slot_always_fires() -> None:
    for catchup in ("none", "latest", "all"):
        plan = plan_slots(FIVE, T0, T0 + 5 * MIN + 2, catchup=catchup)  # type: ignore[arg-type]
        assert plan.fire == (T0 + 5 * MIN,) and plan.missed is None
        assert plan.newest == T0 + 5 * MIN


def test_after_downtime_none_runs_nothing_but_moves_on() -> None:
    plan = plan_slots(FIVE, T0, T0 + 22 * MIN, catchup="none")
    assert plan.fire == ()
    assert plan.missed == (T0 + 5 * MIN, T0 + 20 * MIN)
    assert plan.newest == T0 + 20 * MIN


def test_after_downtime_latest_runs_the_newest_missed_slot() -> None:
    plan = plan_slots(FIVE, T0, T0 + 22 * MIN, catchup="latest")
    assert plan.fire == (T0 + 20 * MIN,)
    assert plan.missed == (T0 + 5 * MIN, T0 + 15 * MIN)


def test_latest_with_an_on_time_slot_runs_only_that_one() -> None:
    plan = plan_slots(FIVE, T0, T0 + 20 * MIN + 1, catchup="latest")
    assert plan.fire == (T0 + 20 * MIN,)
    assert plan.missed == (T0 + 5 * MIN, T0 + 15 * MIN)


def test_after_downtime_all_runs_every_missed_slot_oldest_first() -> None:
    plan = plan_slots(FIVE, T0, T0 + 22 * MIN, catchup="all")
    assert plan.fire == tuple(T0 + k * 5 * MIN for k in (1, 2, 3, 4))
    assert plan.missed is None


def test_all_is_bounded_by_max_catchup() -> None:
    plan = plan_slots(FIVE, T0, T0 + 22 * MIN, catchup="all", max_catchup=2)
    assert plan.fire == (T0 + 15 * MIN, T0 + 20 * MIN)
    assert plan.missed == (T0 + 5 * MIN, T0 + 10 * MIN)


def test_a_slot_at_the_mark_is_never_planned_again() -> None:
    plan = plan_slots(FIVE, T0 + 5 * MIN, T0 + 5 * MIN, catchup="all", grace=0)
    assert plan.fire == ()
    plan = plan_slots(FIVE, T0 + 5 * MIN, T0 + 10 * MIN, catchup="all", grace=0)
    assert plan.fire == (T0 + 10 * MIN,)


def test_zero_grace_makes_every_past_slot_a_missed_one() -> None:
    plan = plan_slots(FIVE, T0, T0 + 5 * MIN + 1, catchup="none", grace=0)
    assert plan.fire == () and plan.missed == (T0 + 5 * MIN, T0 + 5 * MIN)


def test_a_year_of_downtime_is_planned_without_walking_every_slot() -> None:
    every_minute = CronSchedule.parse("* * * * *", "UTC")
    started = time.perf_counter()
    now = T0 + 365 * 86400 + 90
    plan = plan_slots(every_minute, T0, now, catchup="all", max_catchup=100, grace=0)
    elapsed = time.perf_counter() - started
    newest = T0 + 365 * 86400 + MIN
    assert plan.fire[-1] == newest and len(plan.fire) == 100
    assert plan.missed == (T0 + MIN, newest - 100 * MIN)
    assert elapsed < 1.0  # a forward walk over 525,600 slots takes about 10 s here


def test_catch_up_over_the_fall_back_night_runs_the_repeated_slot_once() -> None:
    daily = CronSchedule.parse("30 2 * * *", "Europe/Zurich")
    mark = at(2026, 10, 24, 12, 0, tz=ZURICH)
    plan = plan_slots(daily, mark, at(2026, 10, 27, 12, 0, tz=ZURICH), catchup="all")
    assert [daily.iso(slot) for slot in plan.fire] == [
        "2026-10-25T02:30:00+02:00",
        "2026-10-26T02:30:00+01:00",
        "2026-10-27T02:30:00+01:00",
    ]
