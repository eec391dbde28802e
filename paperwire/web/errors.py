"""Request parameters the framework refused, said in plain words for the HTML pages (the JSON API
keeps its terse `{"error": "field: reason"}`)."""

from __future__ import annotations

import re
from typing import Any

from fastapi.exceptions import RequestValidationError

# What a parameter is called in a sentence.
LABELS = {
    "q": "search", "page": "page", "p": "page", "period": "period", "mode": "search mode", "cat": "category",
    "from": "start date", "to": "end date", "date": "date", "week": "week", "month": "month",
    "limit": "number of results", "sort": "order", "tag": "tag", "next": "return address", "action": "action",
    "username": "name", "password": "password", "email": "email address",
}
_CHOICES = re.compile(r"^\^\(([\w|.-]+)\)\$$")


def plain_validation_error(exc: RequestValidationError) -> tuple[str, set[str]]:
    """One sentence about the first refused parameter, and the names of every refused parameter."""
    errors = exc.errors()
    names = {str(e.get("loc", ("", ""))[-1]) for e in errors if len(e.get("loc", ())) > 1}
    if not errors:
        return "The request could not be read.", names
    return _sentence(errors[0]), names


def _sentence(error: dict[str, Any]) -> str:
    loc = error.get("loc", ())
    name = str(loc[-1]) if len(loc) > 1 else ""
    label = LABELS.get(name, f"“{name}” value" if name else "request")
    kind, ctx = error.get("type", ""), error.get("ctx") or {}
    value = error.get("input")
    shown = f"“{str(value)[:40]}”" if isinstance(value, str | int | float) else "that value"
    if kind == "missing":
        return f"The {label} is missing."
    if kind == "string_too_long":
        return f"The {label} is too long: at most {ctx.get('max_length')} characters."
    if kind == "string_too_short":
        return f"The {label} is too short: at least {ctx.get('min_length')} characters."
    if kind in ("int_parsing", "int_from_float", "float_parsing"):
        return f"The {label} must be a number, not {shown}."
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bounds = _bounds(error)
        if name in ("page", "p"):
            return f"There is no page {shown.strip('“”')}: page numbers run {bounds}."
        return f"The {label} must be {bounds}; {shown} is not."
    if kind == "string_pattern_mismatch":
        choices = _CHOICES.match(str(ctx.get("pattern", "")))
        if choices:
            options = choices.group(1).split("|")
            listed = ", ".join(options[:-1]) + f" or {options[-1]}" if len(options) > 1 else options[0]
            return f"{_capital(shown)} is not a {label} here: choose {listed}."
        return f"{_capital(shown)} is not a valid {label}."
    return f"The {label} is not valid."


def _bounds(error: dict[str, Any]) -> str:
    ctx = error.get("ctx") or {}
    low = ctx.get("ge", ctx.get("gt"))
    high = ctx.get("le", ctx.get("lt"))
    if low is not None and high is not None:
        return f"from {low} to {high}"
    if low is not None:
        return f"from {low} up"
    return f"up to {high}"


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
