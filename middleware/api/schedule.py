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
from .common import cti, json_body, load
from .spec import describe

bp = Blueprint("schedule", __name__)

holiday_path, holiday_out = HolidayPathSchema(), HolidayAnswerSchema()
office_hours_in, office_hours_out = OfficeHoursSchema(), OfficeHoursAnswerSchema()


@bp.put("/api/v1/schedule/holidays/<day>")
@allow(FULL_ONLY)
@describe(
    tags=["schedule"],
    path_params={"day": "The holiday, YYYY-MM-DD"},
    responses={200: HolidayAnswerSchema},
    problems=(401, 422, 501, 502, 503, 504),
)
def set_holiday(day):
    """Make the day a holiday: callers hear the IVR's holiday message."""
    day = load(holiday_path, {"day": day})["day"]
    return holiday_out.dump(cti().schedule.set_holiday(day))


@bp.put("/api/v1/schedule/office-hours")
@allow(FULL_ONLY)
@describe(
    tags=["schedule"],
    body=OfficeHoursSchema,
    responses={200: OfficeHoursAnswerSchema},
    problems=(401, 413, 422, 501, 502, 503, 504),
)
def set_office_hours():
    """Set the office hours of one day, or of every day (``Daily``)."""
    body = load(office_hours_in, json_body())
    return office_hours_out.dump(cti().schedule.set_office_hours(**body))
