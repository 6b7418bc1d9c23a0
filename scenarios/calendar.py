"""A company's working calendar: its time zone, working days, office hours and lunch.

A scenario's company may declare ``country`` (ISO 3166 alpha-2), ``timezone`` (IANA) and ``hours``.
What it leaves out comes from the country's office customs below; a company without a country
takes the country of the Azure region its resources run in (the team works near its data).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MON_FRI = (0, 1, 2, 3, 4)
SUN_THU = (6, 0, 1, 2, 3)
# Why an operate step runs when it does; the schedule (haymaker/agent/schedule.py) reads these.
CADENCES = ("morning", "routine", "hourly", "end-of-day", "weekly", "rare")
_HHMM = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]$")


@dataclass(frozen=True)
class Customs:
    """A country's usual office day: the zone of its business capital, days, hours and lunch."""

    timezone: str
    start: str
    end: str
    lunch: str  # "HH:MM-HH:MM"
    workdays: tuple[int, ...] = MON_FRI


COUNTRIES: dict[str, Customs] = {
    "AT": Customs("Europe/Vienna", "08:00", "17:00", "12:00-13:00"),
    "AU": Customs("Australia/Sydney", "08:30", "17:00", "12:30-13:15"),
    "BR": Customs("America/Sao_Paulo", "09:00", "18:00", "12:00-13:00"),
    "CA": Customs("America/Toronto", "09:00", "17:00", "12:00-13:00"),
    "CH": Customs("Europe/Zurich", "08:00", "17:30", "12:00-13:00"),
    "DE": Customs("Europe/Berlin", "08:00", "17:00", "12:00-13:00"),
    "DK": Customs("Europe/Copenhagen", "08:00", "16:00", "11:30-12:00"),
    "ES": Customs("Europe/Madrid", "09:00", "18:30", "14:00-15:00"),
    "FI": Customs("Europe/Helsinki", "08:00", "16:15", "11:00-11:30"),
    "FR": Customs("Europe/Paris", "09:00", "18:00", "12:30-13:30"),
    "GB": Customs("Europe/London", "09:00", "17:30", "12:30-13:30"),
    "IE": Customs("Europe/Dublin", "09:00", "17:30", "13:00-14:00"),
    "IL": Customs("Asia/Jerusalem", "09:00", "18:00", "12:30-13:15", SUN_THU),
    "IN": Customs("Asia/Kolkata", "09:30", "18:30", "13:00-14:00"),
    "IT": Customs("Europe/Rome", "09:00", "18:00", "13:00-14:00"),
    "JP": Customs("Asia/Tokyo", "09:00", "18:00", "12:00-13:00"),
    "NL": Customs("Europe/Amsterdam", "08:30", "17:00", "12:30-13:00"),
    "NO": Customs("Europe/Oslo", "08:00", "16:00", "11:30-12:00"),
    "NZ": Customs("Pacific/Auckland", "08:30", "17:00", "12:30-13:15"),
    "PL": Customs("Europe/Warsaw", "08:00", "16:00", "12:00-12:30"),
    "SE": Customs("Europe/Stockholm", "08:00", "17:00", "12:00-13:00"),
    "SG": Customs("Asia/Singapore", "09:00", "18:00", "12:00-13:00"),
    "US": Customs("America/New_York", "09:00", "17:00", "12:00-13:00"),
}

# Azure region -> (country, zone when the country's default zone is the wrong one).
REGIONS: dict[str, tuple[str, str | None]] = {
    "swedencentral": ("SE", None), "northeurope": ("IE", None), "westeurope": ("NL", None),
    "germanywestcentral": ("DE", None), "francecentral": ("FR", None), "uksouth": ("GB", None),
    "ukwest": ("GB", None), "norwayeast": ("NO", None), "switzerlandnorth": ("CH", None),
    "polandcentral": ("PL", None), "italynorth": ("IT", None), "spaincentral": ("ES", None),
    "austriaeast": ("AT", None), "denmarkeast": ("DK", None), "finlandcentral": ("FI", None),
    "eastus": ("US", None), "eastus2": ("US", None), "centralus": ("US", "America/Chicago"),
    "northcentralus": ("US", "America/Chicago"), "southcentralus": ("US", "America/Chicago"),
    "westus": ("US", "America/Los_Angeles"), "westus2": ("US", "America/Los_Angeles"),
    "westus3": ("US", "America/Phoenix"), "canadacentral": ("CA", None), "brazilsouth": ("BR", None),
    "japaneast": ("JP", None), "centralindia": ("IN", None), "australiaeast": ("AU", None),
    "southeastasia": ("SG", None), "israelcentral": ("IL", None), "newzealandnorth": ("NZ", None),
}
FALLBACK = Customs("UTC", "09:00", "17:00", "12:00-13:00")


@dataclass(frozen=True)
class WorkCalendar:
    timezone: str
    workdays: tuple[int, ...]
    start: time
    end: time
    lunch_start: time
    lunch_end: time
    country: str | None
    source: str  # where the calendar came from, for the plan

    @property
    def zone(self) -> ZoneInfo:
        return zone(self.timezone)

    def local(self, t: datetime) -> datetime:
        return t.astimezone(self.zone)

    def at(self, day: date, clock: time) -> datetime:
        """``clock`` o'clock on ``day`` in the company's zone (an aware datetime)."""
        return datetime.combine(day, clock, tzinfo=self.zone)

    def is_workday(self, day: date) -> bool:
        return day.weekday() in self.workdays

    def period(self, t: datetime) -> str:
        """``work``, ``lunch``, ``early`` (before hours), ``evening`` (after), ``night`` or ``weekend``."""
        local = self.local(t)
        clock = local.time()
        if not self.is_workday(local.date()):
            return "weekend"
        if self.start <= clock < self.end:
            return "lunch" if self.lunch_start <= clock < self.lunch_end else "work"
        if clock >= NIGHT_FROM or clock < NIGHT_UNTIL:
            return "night"
        return "early" if clock < self.start else "evening"

    def days(self, start: datetime, end: datetime) -> list[date]:
        """Local dates that ``[start, end)`` touches."""
        first, last = self.local(start).date(), self.local(end - timedelta(microseconds=1)).date()
        return [first + timedelta(days=i) for i in range((last - first).days + 1)]

    def hours_text(self) -> str:
        days = day_range(self.workdays)
        return (f"{days} {self.start:%H:%M}-{self.end:%H:%M}, "
                f"lunch {self.lunch_start:%H:%M}-{self.lunch_end:%H:%M}")


NIGHT_FROM, NIGHT_UNTIL = time(22, 0), time(6, 0)


@lru_cache(maxsize=None)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def day_range(days: tuple[int, ...]) -> str:
    """``Mon-Fri`` for consecutive days (wrapping past Sunday), else ``Mon,Wed``."""
    names = [DAYS[d].title() for d in days]
    consecutive = all((b - a) % 7 == 1 for a, b in zip(days, days[1:]))
    return f"{names[0]}-{names[-1]}" if consecutive and len(days) > 2 else ",".join(names)


def calendar_for(company: dict, location: str) -> WorkCalendar:
    """The company's calendar: its own fields first, then its country's customs, then its region's."""
    country = company.get("country")
    if country:
        customs, source = COUNTRIES[country], "company.country"
    else:
        country, region_zone = REGIONS.get(location, (None, None))
        customs = COUNTRIES[country] if country else FALLBACK
        if region_zone:
            customs = Customs(region_zone, customs.start, customs.end, customs.lunch, customs.workdays)
        source = f"region {location}" if country else f"region {location} (unknown: UTC)"
    timezone = company.get("timezone") or customs.timezone
    if company.get("timezone"):
        source = "company.timezone"
    hours = company.get("hours") or {}
    lunch = (hours.get("lunch") or customs.lunch).split("-")
    workdays = tuple(DAYS.index(d) for d in hours["days"]) if hours.get("days") else customs.workdays
    return WorkCalendar(timezone=timezone, workdays=workdays, start=_time(hours.get("start") or customs.start),
                        end=_time(hours.get("end") or customs.end), lunch_start=_time(lunch[0]),
                        lunch_end=_time(lunch[1]), country=country, source=source)


def company_problems(company: dict) -> list[tuple[str, str]]:
    """What is wrong with a company's calendar fields (the schema checked their shapes)."""
    out = []
    country, name = company.get("country"), company.get("timezone")
    if country and country not in COUNTRIES:
        out.append(("company.country", f"no office customs for {country!r}: use one of "
                                        f"{', '.join(sorted(COUNTRIES))} or add it to scenarios/calendar.py"))
    if name:
        try:
            zone(name)
        except (ZoneInfoNotFoundError, ValueError):
            out.append(("company.timezone", f"{name!r} is not an IANA time zone such as Europe/Vienna"))
    hours = company.get("hours") or {}
    if not out and hours:
        cal = calendar_for(company, "")
        if not cal.start < cal.end:
            out.append(("company.hours", f"start {cal.start:%H:%M} is not before end {cal.end:%H:%M}"))
        elif not cal.start <= cal.lunch_start < cal.lunch_end <= cal.end:
            out.append(("company.hours.lunch", f"lunch {cal.lunch_start:%H:%M}-{cal.lunch_end:%H:%M} must lie "
                                               f"inside {cal.start:%H:%M}-{cal.end:%H:%M}"))
    return out


def _time(text: str) -> time:
    if not _HHMM.match(text):
        raise ValueError(f"{text!r} is not HH:MM")
    h, m = text.split(":")
    return time(int(h), int(m))
