"""Lexicon string formats that are not identifiers: datetime, language tag, generic URI.

Split out of :mod:`plaza.atproto.syntax`, which re-exports everything here.

- **datetime**: the intersection of RFC 3339, ISO 8601 and WHATWG HTML that the
  Lexicon spec asks for: ``YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)``, upper-case
  ``T`` and ``Z``, whole seconds required, ``-00:00`` refused; and the meaning must
  hold: a real calendar date, hours 0-23, minutes and seconds 0-59, and not before
  ``0000-01-01T00:00:00Z`` once the offset is applied.
- **language**: a well-formed BCP 47 tag (RFC 5646 section 2.1) with atproto's
  restriction that the primary language subtag is an ISO 639 code in lower case
  (``ja``, ``ban``) or a registered 5-8 letter one; private-use ``x-…`` tags and the
  26 grandfathered tags are accepted in any case. Tags that are well formed but not
  valid (a repeated variant or extension singleton, RFC 5646 section 2.2.9) are refused.
- **uri**: RFC 3986 ``URI`` syntax with a non-empty part after the scheme, at most
  8 KiB.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Final

from plaza.atproto.errors import InvalidSyntaxError

URI_MAX: Final = 8192

_DATETIME_RE: Final = re.compile(
    r"([0-9]{4})-([0-9]{2})-([0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2})"
    r"(?:\.([0-9]+))?(Z|[+-][0-9]{2}:[0-9]{2})"
)
_DAYS_IN_MONTH: Final = (0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)
# Days from 0000-03-01 (proleptic Gregorian) to 1970-01-01; see _days_from_civil.
_EPOCH_DAYS: Final = 719468


def _show(value: str) -> str:
    return repr(value if len(value) <= 80 else value[:77] + "...")


def _require_str(kind: str, value: object) -> str:
    if type(value) is not str:
        raise InvalidSyntaxError(f"{kind} must be a string, got {type(value).__name__}")
    return value


# -- datetime -----------------------------------------------------------------------


def _is_leap(year: int) -> bool:
    return year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)


def _days_from_civil(y: int, m: int, d: int) -> int:
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm)."""
    y -= m <= 2
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - _EPOCH_DAYS


_YEAR_ZERO: Final = _days_from_civil(0, 1, 1) * 86400  # 0000-01-01T00:00:00Z, in epoch seconds


def _datetime_parts(value: str, *, want_time: bool = True) -> tuple[int, int]:
    """Validate; return (UTC seconds since the Unix epoch, fraction in microseconds).

    With ``want_time=False`` only validates (and returns zeros) unless the year is
    0000, where the offset decides validity.
    """
    value = _require_str("datetime", value)
    m = _DATETIME_RE.fullmatch(value)
    if m is None:
        raise InvalidSyntaxError(f"invalid datetime {_show(value)}: {_datetime_rule(value)}")
    ys, mos, ds, hs, mis, ss, frac, tz = m.groups()
    year, month, day = int(ys), int(mos), int(ds)
    hour, minute, second = int(hs), int(mis), int(ss)
    if not 1 <= month <= 12:
        raise _dt_fail(value, f"month {month:02d} does not exist")
    if not 1 <= day <= _DAYS_IN_MONTH[month] and not (month == 2 and day == 29 and _is_leap(year)):
        raise _dt_fail(value, f"day {day:02d} does not exist in {year:04d}-{month:02d}")
    if hour > 23 or minute > 59 or second > 59:
        raise _dt_fail(value, "time of day out of range (00:00:00 to 23:59:59)")
    offset = 0
    if tz != "Z":
        if tz == "-00:00":
            raise _dt_fail(value, "'-00:00' (negative zero offset) is not allowed")
        oh, om = int(tz[1:3]), int(tz[4:6])
        if oh > 23 or om > 59:
            raise _dt_fail(value, f"timezone offset {tz} out of range")
        offset = (oh * 3600 + om * 60) * (1 if tz[0] == "+" else -1)
    if not want_time and year > 0:
        return 0, 0
    seconds = (
        _days_from_civil(year, month, day) * 86400 + hour * 3600 + minute * 60 + second - offset
    )
    if seconds < _YEAR_ZERO:
        raise _dt_fail(value, "normalizes to a time before year 0000")
    micros = int((frac or "0")[:6].ljust(6, "0"))
    return seconds, micros


def _dt_fail(value: str, rule: str) -> InvalidSyntaxError:
    return InvalidSyntaxError(f"invalid datetime {_show(value)}: {rule}")


def _datetime_rule(value: str) -> str:
    if not value.isascii():
        return "must contain only ASCII characters"
    if value != value.strip():
        return "leading or trailing whitespace"
    if not re.match(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        return "must start with a four-digit year, two-digit month and day (YYYY-MM-DD)"
    if len(value) < 11 or value[10] != "T":
        return "date and time must be separated by an upper-case 'T'"
    if not re.match(r"[0-9]{2}:[0-9]{2}:[0-9]{2}(?![0-9])", value[11:]):
        return "the time must be HH:MM:SS with whole seconds"
    tail = value[19:]
    if tail.startswith("."):
        m = re.match(r"\.[0-9]+", tail)
        if m is None:
            return "a '.' must be followed by fractional-second digits"
        tail = tail[m.end() :]
    if not tail:
        return "a timezone ('Z' or ±HH:MM) is required"
    if tail == "z":
        return "the UTC designator must be an upper-case 'Z'"
    return f"timezone {tail!r} must be 'Z' or ±HH:MM"


def validate_datetime(value: str) -> str:
    """Return ``value`` if it is a valid atproto datetime (see the module docstring)."""
    _datetime_parts(value, want_time=False)
    return value


def is_valid_datetime(value: object) -> bool:
    """True when :func:`validate_datetime` accepts ``value``."""
    try:
        _datetime_parts(value, want_time=False)  # type: ignore[arg-type]
    except InvalidSyntaxError:
        return False
    return True


def datetime_to_micros(value: str) -> int:
    """Validate; microseconds since the Unix epoch in UTC (negative before 1970).

    Precision past microseconds is truncated. Works for the whole valid range,
    including year 0000, which :class:`datetime.datetime` cannot hold.
    """
    seconds, micros = _datetime_parts(value)
    return seconds * 1_000_000 + micros


def parse_datetime(value: str) -> datetime:
    """Validate; an aware UTC :class:`~datetime.datetime` (microsecond precision).

    Raises :class:`InvalidSyntaxError` for valid datetimes before year 1 or after
    year 9999, which Python's ``datetime`` cannot represent.
    """
    micros = datetime_to_micros(value)
    try:
        return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    except OverflowError as exc:
        raise _dt_fail(value, "outside the years 0001-9999 that Python can represent") from exc


def format_datetime(when: datetime, *, micros: bool = False) -> str:
    """The preferred atproto form of an aware datetime: UTC, ``Z``, milliseconds
    (microseconds with ``micros=True``), zero-padded: ``1985-04-12T23:20:50.120Z``."""
    if when.tzinfo is None:
        raise ValueError("format_datetime needs an aware datetime")
    utc = when.astimezone(UTC)
    frac = f"{utc.microsecond:06d}" if micros else f"{utc.microsecond // 1000:03d}"
    # Not strftime: "%Y" does not zero-pad years before 1000 on every platform.
    return (
        f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}"
        f"T{utc.hour:02d}:{utc.minute:02d}:{utc.second:02d}.{frac}Z"
    )


# -- language tags ------------------------------------------------------------------

# RFC 5646 section 2.2.8: irregular and regular grandfathered tags, matched ignoring case.
_GRANDFATHERED: Final = frozenset(
    {
        "en-gb-oed",
        "i-ami",
        "i-bnn",
        "i-default",
        "i-enochian",
        "i-hak",
        "i-klingon",
        "i-lux",
        "i-mingo",
        "i-navajo",
        "i-pwn",
        "i-tao",
        "i-tay",
        "i-tsu",
        "sgn-be-fr",
        "sgn-be-nl",
        "sgn-ch-de",
        "art-lojban",
        "cel-gaulish",
        "no-bok",
        "no-nyn",
        "zh-guoyu",
        "zh-hakka",
        "zh-min",
        "zh-min-nan",
        "zh-xiang",
    }
)
_SUBTAG: Final = re.compile(r"[A-Za-z0-9]{1,8}")
_PRIMARY: Final = re.compile(r"[a-z]{2,3}|[a-z]{5,8}")
_ALPHA3: Final = re.compile(r"[A-Za-z]{3}")
_SCRIPT: Final = re.compile(r"[A-Za-z]{4}")
_REGION: Final = re.compile(r"[A-Za-z]{2}|[0-9]{3}")
_VARIANT: Final = re.compile(r"[A-Za-z0-9]{5,8}|[0-9][A-Za-z0-9]{3}")
_SINGLETON: Final = re.compile(r"[0-9A-WYZa-wyz]")
_EXT_SUBTAG: Final = re.compile(r"[A-Za-z0-9]{2,8}")
# Language, optional script and region: most tags in practice, accepted without parsing.
_COMMON_TAG: Final = re.compile(r"[a-z]{2,3}(?:-[A-Z][a-z]{3})?(?:-(?:[A-Z]{2}|[0-9]{3}))?")


@dataclass(frozen=True, slots=True)
class LanguageTag:
    """The parts of a BCP 47 language tag (subtags keep their original case)."""

    tag: str
    language: str | None = None
    extlangs: tuple[str, ...] = ()
    script: str | None = None
    region: str | None = None
    variants: tuple[str, ...] = ()
    extensions: tuple[tuple[str, tuple[str, ...]], ...] = ()
    private_use: tuple[str, ...] = ()
    grandfathered: bool = False


def _lang_fail(value: str, rule: str) -> InvalidSyntaxError:
    return InvalidSyntaxError(f"invalid language tag {_show(value)}: {rule}")


def parse_language(value: str) -> LanguageTag:
    """Parse and validate a language tag (see the module docstring for the rules)."""
    value = _require_str("language tag", value)
    if value.lower() in _GRANDFATHERED:
        return LanguageTag(tag=value, grandfathered=True)
    subtags = value.split("-")
    for s in subtags:
        if not _SUBTAG.fullmatch(s):
            raise _lang_fail(value, f"subtag {s!r} must be 1-8 ASCII letters or digits")
    if subtags[0].lower() == "x":
        return LanguageTag(tag=value, private_use=_private_use(value, subtags[1:]))
    if not _PRIMARY.fullmatch(subtags[0]):
        raise _lang_fail(
            value,
            "the primary language subtag must be 2-3 (or 5-8) lower-case letters",
        )
    i, n = 1, len(subtags)
    extlangs: list[str] = []
    if len(subtags[0]) <= 3:
        while i < n and len(extlangs) < 3 and _ALPHA3.fullmatch(subtags[i]):
            extlangs.append(subtags[i])
            i += 1
    script = region = None
    if i < n and _SCRIPT.fullmatch(subtags[i]):
        script = subtags[i]
        i += 1
    if i < n and _REGION.fullmatch(subtags[i]):
        region = subtags[i]
        i += 1
    variants: list[str] = []
    while i < n and _VARIANT.fullmatch(subtags[i]):
        if subtags[i].lower() in (v.lower() for v in variants):
            raise _lang_fail(value, f"variant {subtags[i]!r} is repeated")
        variants.append(subtags[i])
        i += 1
    extensions: list[tuple[str, tuple[str, ...]]] = []
    while i < n and _SINGLETON.fullmatch(subtags[i]):
        singleton = subtags[i]
        if singleton.lower() in (e[0].lower() for e in extensions):
            raise _lang_fail(value, f"extension singleton {singleton!r} is repeated")
        i += 1
        start = i
        while i < n and _EXT_SUBTAG.fullmatch(subtags[i]):
            i += 1
        if i == start:
            raise _lang_fail(value, f"extension {singleton!r} needs at least one subtag")
        extensions.append((singleton, tuple(subtags[start:i])))
    private: tuple[str, ...] = ()
    if i < n and subtags[i].lower() == "x":
        private = _private_use(value, subtags[i + 1 :])
        i = n
    if i < n:
        raise _lang_fail(value, f"unexpected subtag {subtags[i]!r}")
    return LanguageTag(
        tag=value,
        language=subtags[0],
        extlangs=tuple(extlangs),
        script=script,
        region=region,
        variants=tuple(variants),
        extensions=tuple(extensions),
        private_use=private,
    )


def _private_use(value: str, rest: list[str]) -> tuple[str, ...]:
    if not rest:
        raise _lang_fail(value, "'x' must be followed by at least one private-use subtag")
    return tuple(rest)


def validate_language(value: str) -> str:
    """Return ``value`` if it is a valid language tag."""
    if type(value) is str and _COMMON_TAG.fullmatch(value):
        return value
    parse_language(value)
    return value


def is_valid_language(value: object) -> bool:
    """True when :func:`validate_language` accepts ``value``."""
    try:
        parse_language(value)  # type: ignore[arg-type]
    except InvalidSyntaxError:
        return False
    return True


# -- generic URIs (RFC 3986) --------------------------------------------------------

_PCT = r"%[0-9A-Fa-f]{2}"
_UNRESERVED_SUB = r"A-Za-z0-9\-._~!$&'()*+,;="
_PCHAR = rf"(?:[{_UNRESERVED_SUB}:@]|{_PCT})"
_SEGMENT = rf"{_PCHAR}*"
_AUTHORITY = (
    rf"(?:(?:[{_UNRESERVED_SUB}:]|{_PCT})*@)?"
    rf"(?:\[(?:[0-9A-Fa-f:.]+|v[0-9A-Fa-f]+\.[{_UNRESERVED_SUB}:]+)\]"
    rf"|(?:[{_UNRESERVED_SUB}]|{_PCT})*)"
    r"(?::[0-9]*)?"
)
_URI_RE: Final = re.compile(
    r"[A-Za-z][A-Za-z0-9+.-]*:"
    rf"(?:(?://{_AUTHORITY}(?:/{_SEGMENT})*)|(?:/?{_PCHAR}+(?:/{_SEGMENT})*)|/)"
    rf"(?:\?(?:{_PCHAR}|[/?])*)?"
    rf"(?:#(?:{_PCHAR}|[/?])*)?"
)


def validate_uri(value: str) -> str:
    """Return ``value`` if it is an RFC 3986 URI with something after the scheme."""
    value = _require_str("URI", value)
    if len(value) > URI_MAX:
        raise InvalidSyntaxError(
            f"invalid URI {_show(value)}: too long ({len(value)} > {URI_MAX} characters)"
        )
    if _URI_RE.fullmatch(value):
        return value
    if not re.match(r"[A-Za-z][A-Za-z0-9+.-]*:", value):
        rule = "must start with a scheme (a letter, then letters, digits, '+', '-' or '.') and ':'"
    elif re.search(r"\s", value):
        rule = "whitespace is not allowed"
    elif re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*:", value):
        rule = "nothing follows the scheme"
    else:
        rule = "characters or structure not allowed by RFC 3986"
    raise InvalidSyntaxError(f"invalid URI {_show(value)}: {rule}")


def is_valid_uri(value: object) -> bool:
    """True when :func:`validate_uri` accepts ``value``."""
    try:
        validate_uri(value)  # type: ignore[arg-type]
    except InvalidSyntaxError:
        return False
    return True
