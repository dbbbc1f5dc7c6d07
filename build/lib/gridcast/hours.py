"""Hour arithmetic shared by the sources, the replay server and the medallion: one home for it."""

from __future__ import annotations

from datetime import datetime, timedelta

HOUR_S = 3600
HOUR = timedelta(hours=1)


def floor_hour(moment: datetime) -> datetime:
    """The start of the hour ``moment`` falls in (its time zone kept).

    Args:
        moment: any datetime, aware or naive.

    Returns:
        ``moment`` with minutes, seconds and microseconds set to zero.
    """
    return moment.replace(minute=0, second=0, microsecond=0)
