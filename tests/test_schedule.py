"""SCHEDULE: office hours parsed once, refused with what is accepted, and the hours and cron
expressions both the scheduled actions and the cost estimate use."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import pytest

from dashscale.config import load_config
from dashscale.errors import ConfigError
from dashscale.schedule import parse

BASE = {"APP_NAME": "demo", "AWS_REGION": "eu-west-1"}


def test_office_hours_in_berlin() -> None:
    office = parse("Mon-Fri 08:00-19:00 Europe/Berlin")
    assert office.days == (0, 1, 2, 3, 4)
    assert (office.start, office.end) == (8 * 60, 19 * 60)
    assert office.hours_per_week == 55
    # 55 hours a week in a month of 730 hours (730 / 168 weeks), worked out by hand
    assert office.hours_per_month == pytest.approx(55 * 730 / 168)
    assert office.start_cron == "cron(0 8 ? * MON,TUE,WED,THU,FRI *)"
    assert office.end_cron == "cron(0 19 ? * MON,TUE,WED,THU,FRI *)"
    assert str(office) == "Mon-Fri 08:00-19:00 Europe/Berlin"


def test_lists_ranges_minutes_and_the_end_of_the_day() -> None:
    odd = parse("mon,wed-fri 09:30-17:15 America/New_York")
    assert odd.days == (0, 2, 3, 4)
    assert odd.start_cron == "cron(30 9 ? * MON,WED,THU,FRI *)"
    assert odd.hours_per_week == pytest.approx(4 * 7.75)
    weekend = parse("Sat-Sun 00:00-24:00 UTC")
    assert weekend.hours_per_week == 48
    assert weekend.end_cron == "cron(59 23 ? * SAT,SUN *)"  # cron has no 24th hour


def test_awake_follows_the_time_zone_and_daylight_saving() -> None:
    office = parse("Mon-Fri 08:00-19:00 Europe/Berlin")
    # Monday 7 December 2026: Berlin is UTC+1; Monday 6 July 2026: UTC+2 (summer time)
    assert office.awake_at(datetime(2026, 12, 7, 7, 0, tzinfo=timezone.utc))
    assert not office.awake_at(datetime(2026, 12, 7, 6, 59, tzinfo=timezone.utc))
    assert office.awake_at(datetime(2026, 7, 6, 6, 0, tzinfo=timezone.utc))
    assert not office.awake_at(datetime(2026, 7, 6, 17, 0, tzinfo=timezone.utc))
    assert not office.awake_at(datetime(2026, 12, 5, 12, 0, tzinfo=timezone.utc))  # Saturday


@pytest.mark.parametrize(
    ("value", "said"),
    [
        ("Mon-Fri", "days, hours and a time zone"),
        ("Mon-Fri 8-19 UTC", "HH:MM-HH:MM"),
        ("Fri-Mon 08:00-19:00 UTC", "earlier to later"),
        ("Monday 08:00-19:00 UTC", "three-letter names"),
        ("Mon-Fri 19:00-08:00 UTC", "a start before the end"),
        ("Mon-Fri 08:00-25:00 UTC", "between 00:00 and 24:00"),
        ("Mon-Fri 08:00-19:00 Mars/Olympus", "an IANA time zone"),
        ("Mon-Fri 08:00-19:00 Berlin", "an IANA time zone"),
    ],
)
def test_a_bad_schedule_is_refused_with_what_is_accepted(
    tmp_path: Path, value: str, said: str
) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(environ={**BASE, "SCHEDULE": value}, project_dir=tmp_path)
    assert raised.value.message.startswith(f"SCHEDULE={value!r} is invalid: expected ")
    assert said in raised.value.message
    assert raised.value.exit_code == 2


def test_the_configuration_holds_the_parsed_schedule(tmp_path: Path) -> None:
    config = load_config(
        environ={**BASE, "SCHEDULE": "Mon-Fri 08:00-19:00 UTC"}, project_dir=tmp_path
    )
    assert config.schedule == parse("Mon-Fri 08:00-19:00 UTC")
    assert load_config(environ=BASE, project_dir=tmp_path).schedule is None
