"""Working-day arithmetic for the statutory clocks: weekends off, configured holidays off, 调休 days on."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta


class Calendar:
    def __init__(self, holidays: Iterable[date] = (), workdays: Iterable[date] = ()):
        self.holidays = frozenset(holidays)
        self.workdays = frozenset(workdays)

    def is_working_day(self, day: date) -> bool:
        if day in self.workdays:
            return True
        return day.weekday() < 5 and day not in self.holidays

    def add_working_days(self, start: date, days: int) -> date:
        """The day by which ``days`` working days after ``start`` have passed: the clock starts the day after
        the application (filed on a Friday with 2 days → Tuesday)."""
        if days < 0:
            raise ValueError("a clock cannot run backwards")
        current, counted = start, 0
        while counted < days:
            current += timedelta(days=1)
            if self.is_working_day(current):
                counted += 1
        return current

    def working_days_between(self, start: date, end: date) -> int:
        """Working days after ``start`` up to and including ``end`` (0 when end <= start)."""
        count, current = 0, start
        while current < end:
            current += timedelta(days=1)
            if self.is_working_day(current):
                count += 1
        return count
