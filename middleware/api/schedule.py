"""The IVR schedule (ibizfone): holidays and office hours."""

from __future__ import annotations

from flask import Blueprint

from schemas.agents import (
    HolidayAnswerSchema,
    HolidayPathSchema,
    OfficeHoursAnswerSchema,
    OfficeHoursSchema,
)

from ..auth import FULL_ONLY, allow
from ..errors import Unsupported
from .common import cti
from .spec import describe

bp = Blueprint("schedule", __name__)


def _operation(answer, **inputs):
    """An operation of the IVR's schedule (501 while ibizfone is not configured)."""
    return describe(tags=["schedule"], responses={200: answer}, problems=(Unsupported,), **inputs)


@bp.put("/api/v1/schedule/holidays/<day>")
@allow(FULL_ONLY)
@_operation(HolidayAnswerSchema, path=HolidayPathSchema)
def set_holiday(day):
    """Make the day a holiday: callers hear the IVR's holiday message."""
    return cti().schedule.set_holiday(day)


@bp.put("/api/v1/schedule/office-hours")
@allow(FULL_ONLY)
@_operation(OfficeHoursAnswerSchema, body=OfficeHoursSchema)
def set_office_hours(body):
    """Set the office hours of one day, or of every day (``Daily``)."""
    return cti().schedule.set_office_hours(**body)
