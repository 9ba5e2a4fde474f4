"""The business day: the date a transaction settles on (field 15 on responses, `business_date`
on its journal row), which moves to the next day at the configured cutover time or when an
operator cuts over early.

A day runs from one cutover to the next and is named after the calendar day (UTC) it ends on:
with the cutover at 22:00, a purchase at 22:30 on 1 December belongs to 2 December. With the
cutover at 00:00 the business date is the UTC date. An early cutover (`cardswitch admin
cutover`) starts the next business date at once; the scheduled cutover then has nothing to move
until the calendar catches up. The date never goes back.
"""

from __future__ import annotations

import datetime

DAY = datetime.timedelta(days=1)


class BusinessDay:
    def __init__(self, cutover: datetime.time, now: datetime.datetime,
                 known: datetime.date | None = None) -> None:
        """`now` is the wall clock (UTC); `known`, the date the journal last recorded (the date
        never goes back, even across a restart)."""
        self.cutover = cutover
        self._shift = (DAY - datetime.timedelta(hours=cutover.hour, minutes=cutover.minute)) % DAY
        self._set(max(self.scheduled(now), known or datetime.date.min))

    def _set(self, date: datetime.date) -> None:
        """The date, and what every transaction reads of it, made once per day rather than per
        transaction: `iso` (journal rows) and `field15` (responses, MMDD)."""
        self.date = date
        self.iso = date.isoformat()
        self.field15 = f"{date.month:02d}{date.day:02d}"

    def scheduled(self, now: datetime.datetime) -> datetime.date:
        """The business date the cutover time alone gives at `now`."""
        return (now + self._shift).date()

    def follow(self, now: datetime.datetime, known: datetime.date | None = None) -> bool:
        """Move on to the scheduled date, or to a later one another instance cut over to
        (`known`); True when the date changed."""
        later = max(self.scheduled(now), known or self.date)
        if later <= self.date:
            return False
        self._set(later)
        return True

    def cut_over(self) -> datetime.date:
        """An early cutover: the next business date starts now."""
        self._set(self.date + DAY)
        return self.date
