"""Office hours: SCHEDULE="Mon-Fri 08:00-19:00 Europe/Berlin" parsed once, validated before any
call, and turned into what both the scheduled actions and the cost estimate use.

A schedule is a set of weekdays, one daily window (start before end, same day) and an IANA time
zone. Application Auto Scaling takes the windows as cron expressions with that `Timezone`, so
daylight-saving changes follow the zone; a month counts as 730 hours (AWS's convention), that
is 730 / 168 weeks.
"""

from __future__ import annotations

import re
import zoneinfo
from dataclasses import dataclass
from datetime import datetime, timedelta

DAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
HOURS_PER_MONTH = 730
WEEKS_PER_MONTH = HOURS_PER_MONTH / (7 * 24)
EXAMPLE = "Mon-Fri 08:00-19:00 Europe/Berlin"


class ScheduleError(ValueError):
    """What is wrong with a SCHEDULE value, said as what is accepted."""


@dataclass(frozen=True)
class Schedule:
    days: tuple[int, ...]  # 0 = Monday, in order
    start: int  # minutes after midnight
    end: int  # minutes after midnight, up to 24:00
    timezone: str

    @property
    def hours_per_day(self) -> float:
        return (self.end - self.start) / 60

    @property
    def hours_per_week(self) -> float:
        return self.hours_per_day * len(self.days)

    @property
    def hours_per_month(self) -> float:
        """Awake hours in an average month of 730 hours."""
        return self.hours_per_week * WEEKS_PER_MONTH

    @property
    def start_cron(self) -> str:
        return _cron(self.start, self.days)

    @property
    def end_cron(self) -> str:
        return _cron(self.end, self.days)

    def awake_at(self, moment: datetime) -> bool:
        """True inside the hours, in the schedule's own time zone (`moment` must be aware)."""
        local = moment.astimezone(zoneinfo.ZoneInfo(self.timezone))
        minutes = local.hour * 60 + local.minute
        return local.weekday() in self.days and self.start <= minutes < self.end

    def next_start(self, moment: datetime) -> datetime:
        """The first start of the hours after `moment`, in the schedule's time zone."""
        return self._next(moment, self.start)

    def next_end(self, moment: datetime) -> datetime:
        """The first end of the hours after `moment` (when the app goes to sleep)."""
        return self._next(moment, self.end)

    def _next(self, moment: datetime, minutes: int) -> datetime:
        zone = zoneinfo.ZoneInfo(self.timezone)
        local = moment.astimezone(zone)
        for offset in range(8):
            day = local.date() + timedelta(days=offset)
            if day.weekday() not in self.days:
                continue
            # wall-clock time on that day in the zone (a window ending at 24:00 ends at the
            # next midnight), so a daylight-saving change keeps the local hour
            midnight = datetime(day.year, day.month, day.day, tzinfo=zone)
            at = (midnight.replace(tzinfo=None) + timedelta(minutes=minutes)).replace(tzinfo=zone)
            if at > local:
                return at
        raise AssertionError("a schedule has at least one day")  # pragma: no cover

    def __str__(self) -> str:
        window = f"{_clock(self.start)}-{_clock(self.end)}"
        return f"{_days_text(self.days)} {window} {self.timezone}"


def parse(raw: str) -> Schedule:
    """A Schedule from "DAYS HH:MM-HH:MM ZONE"; raises ScheduleError saying what is accepted."""
    parts = raw.split()
    if len(parts) != 3:
        raise ScheduleError(f"days, hours and a time zone, such as {EXAMPLE!r}")
    days_text, hours_text, zone = parts
    start, end = _window(hours_text)
    return Schedule(_days(days_text), start, end, _zone(zone))


def _days(text: str) -> tuple[int, ...]:
    chosen: set[int] = set()
    for part in text.upper().split(","):
        first, _, last = part.partition("-")
        if first not in DAYS or (last and last not in DAYS):
            raise ScheduleError(
                f"days as Mon-Fri, Mon,Wed,Fri or Sat-Sun (three-letter names), not {text!r}"
            )
        low, high = DAYS.index(first), DAYS.index(last or first)
        if high < low:
            raise ScheduleError(f"a day range from earlier to later in the week, not {part}")
        chosen.update(range(low, high + 1))
    return tuple(sorted(chosen))


def _window(text: str) -> tuple[int, int]:
    match = re.fullmatch(r"([0-2][0-9]):([0-5][0-9])-([0-2][0-9]):([0-5][0-9])", text)
    if not match:
        raise ScheduleError(f"hours as HH:MM-HH:MM on a 24-hour clock, not {text!r}")
    hours = [int(match.group(i)) for i in (1, 3)]
    minutes = [int(match.group(i)) for i in (2, 4)]
    if max(hours) > 24 or any(h == 24 and m for h, m in zip(hours, minutes, strict=True)):
        raise ScheduleError(f"hours between 00:00 and 24:00, not {text!r}")
    start, end = (h * 60 + m for h, m in zip(hours, minutes, strict=True))
    if start >= end:
        raise ScheduleError(f"a start before the end on the same day, not {text!r}")
    return start, end


def _zone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ScheduleError(
            f"an IANA time zone such as Europe/Berlin or UTC, not {name!r}"
        ) from None
    return name


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _cron(minutes: int, days: tuple[int, ...]) -> str:
    """Application Auto Scaling's cron: minutes hours day-of-month month day-of-week year. A
    window ending at 24:00 ends at 23:59 (cron has no 24th hour)."""
    minutes = min(minutes, 24 * 60 - 1)
    return f"cron({minutes % 60} {minutes // 60} ? * {_days_cron(days)} *)"


def _days_cron(days: tuple[int, ...]) -> str:
    return ",".join(DAYS[day] for day in days)


def _days_text(days: tuple[int, ...]) -> str:
    if days == tuple(range(days[0], days[-1] + 1)) and len(days) > 1:
        return f"{DAYS[days[0]].title()}-{DAYS[days[-1]].title()}"
    return ",".join(DAYS[day].title() for day in days)
