import datetime as dt

from django import template

register = template.Library()


@register.filter
def when(value):
    """The API's ISO 8601 timestamps as '2026-11-28 03:23 UTC'; anything else unchanged."""
    if not isinstance(value, str) or not value:
        return value or ""
    try:
        t = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if t.tzinfo is not None:
        t = t.astimezone(dt.timezone.utc)
    return t.strftime("%Y-%m-%d %H:%M UTC")
