"""The one input boundary: decode and size-check what clients send, before anything changes.

Every body the master reads (REST requests, agent registrations and status reports), every file
the CLI sends and the values the Python API takes pass :func:`decode_json` or :func:`check_value`
first. Both report *every* problem with the JSON path of the field, as :class:`SpecError`:

- the body must be UTF-8 JSON, at most ``max_body_bytes``;
- nesting at most ``max_depth`` deep (objects and lists);
- numbers finite (no ``NaN``, ``Infinity``, ``1e999``), integers at most ``max_int_digits`` digits
  (Python refuses to read longer ones as text, and no field needs them);
- strings valid Unicode (no lone surrogate such as ``"\\ud800"``: no store or client can hold
  it) and at most ``max_string_bytes`` bytes in UTF-8;
- lists and objects at most ``max_items`` entries.

A value that breaks one of these could not be stored and served back, so it never reaches the
store. User text appears in errors only as data (a problem's ``value``, shortened), never as a
template. The defaults are published in docs/limits.md; each is a master setting
(``TITUS_INPUT_<NAME>``, e.g. ``TITUS_INPUT_MAX_BODY_BYTES``).
"""
from __future__ import annotations

import json
import math
import os
import unicodedata
from dataclasses import dataclass, fields
from typing import Annotated, Any, Iterator, Optional, Union, get_args, get_origin

VALUE_CHARS = 120  # how much of a bad value an error echoes back


@dataclass
class InputLimits:
    """Bounds on any input, whatever its schema. Sizes in bytes of UTF-8."""

    max_body_bytes: int = 4 * 1024 * 1024
    max_agent_body_bytes: int = 64 * 1024 * 1024  # registrations and heartbeats of big agents
    max_depth: int = 32
    max_int_digits: int = 20  # int64 needs 19 digits and a sign
    max_string_bytes: int = 65_536
    max_name_chars: int = 255  # ids and names: what a store key column holds
    max_items: int = 100_000

    @classmethod
    def from_env(cls, env: Optional[dict] = None) -> "InputLimits":
        """Defaults, overridden by ``TITUS_INPUT_<FIELD>`` variables (integers)."""
        env = os.environ if env is None else env
        limits = cls()
        for f in fields(cls):
            raw = env.get("TITUS_INPUT_" + f.name.upper())
            if raw is not None:
                setattr(limits, f.name, int(raw))
        return limits


@dataclass
class Problem:
    """One bad field: its JSON path, what is wrong, and the value (as data)."""

    field: str
    message: str
    value: Any = None

    def wire(self) -> dict:
        """JSON-ready form (the value shortened and made safe to serialise; never a value
        that may hold a secret: the container's env, or the container as a whole)."""
        out = {"field": self.field, "message": self.message}
        if self.value is not None and not _may_hold_secrets(self.field):
            out["value"] = safe_value(self.value)
        return out


def _may_hold_secrets(field: str) -> bool:
    return field in ("container", "(body)") or field.startswith(("container.env",
                                                                 "container.attributes"))


class SpecError(ValueError):
    """Input was refused; ``problems`` names every bad field. Answered as HTTP 400."""

    def __init__(self, problems: list[Problem], what: str = "job descriptor"):
        self.problems = problems
        self.what = what
        super().__init__(f"invalid {what}: "
                         + "; ".join(f"{p.field}: {p.message}" for p in problems))

    def wire(self) -> dict:
        """The HTTP 400 body."""
        return {"error": f"invalid {self.what}", "problems": [p.wire() for p in self.problems]}


def safe_value(value: Any) -> Any:
    """``value`` as JSON data that can always be written: short, finite, valid Unicode.

    Anything else becomes a shortened ``repr`` (repr escapes lone surrogates)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < 10 ** 18 else _short(repr(value))
    if isinstance(value, float):
        return value if math.isfinite(value) else repr(value)
    if isinstance(value, str) and len(value) <= VALUE_CHARS and unicode_ok(value):
        return value
    try:
        text = json.dumps(value, allow_nan=False, ensure_ascii=False)
        text.encode("utf-8")
        if len(text) <= VALUE_CHARS:
            return value
    except (TypeError, ValueError, RecursionError):
        pass
    return _short(repr(value) if not isinstance(value, str) else ascii(value))


def _short(text: str) -> str:
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text if len(text) <= VALUE_CHARS else text[:VALUE_CHARS] + f"... ({len(text)} chars)"


def unicode_ok(text: str) -> bool:
    """Whether ``text`` encodes as UTF-8 (no lone surrogate)."""
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:
        return False


class _Bad:
    """A number the decoder refused to build (kept as text so the walk can name its field)."""

    __slots__ = ("text", "why")

    def __init__(self, text: str, why: str):
        self.text = text
        self.why = why


def _parse_int(limits: InputLimits):
    def parse(text: str):
        digits = len(text) - (text[0] == "-")
        if digits > limits.max_int_digits:
            return _Bad(text, f"integer of {digits} digits, more than {limits.max_int_digits}")
        return int(text)
    return parse


def _parse_float(text: str):
    value = float(text)
    return value if math.isfinite(value) else _Bad(text, "number out of range")


def _parse_constant(text: str):
    return _Bad(text, "must be a finite number")


def decode_json(raw: bytes, limits: Optional[InputLimits] = None, what: str = "request",
                max_bytes: Optional[int] = None, empty: Any = None) -> Any:
    """Decode a request body, or raise :class:`SpecError` naming every bad field.

    ``raw``: the body bytes (``b""`` gives ``empty``). ``max_bytes`` overrides the body bound.
    """
    limits = limits or InputLimits()
    bound = limits.max_body_bytes if max_bytes is None else max_bytes
    if len(raw) > bound:
        raise BodyTooLarge(len(raw), bound)
    if not raw.strip():
        return empty
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SpecError([Problem("(body)", f"not UTF-8: byte {exc.start} is invalid")],
                        what) from None
    try:
        data = json.loads(text, parse_int=_parse_int(limits), parse_float=_parse_float,
                          parse_constant=_parse_constant)
    except RecursionError:
        raise SpecError([Problem("(body)", f"nested deeper than {limits.max_depth}")],
                        what) from None
    except json.JSONDecodeError as exc:
        raise SpecError([Problem("(body)", f"not valid JSON: {exc.msg} at position {exc.pos}")],
                        what) from None
    problems = list(problems_of(data, limits))
    if problems:
        raise SpecError(problems, what)
    return data


def check_value(data: Any, limits: Optional[InputLimits] = None, what: str = "request",
                path: str = "") -> Any:
    """Raise :class:`SpecError` if already-decoded ``data`` breaks a bound; else return it."""
    problems = list(problems_of(data, limits or InputLimits(), path))
    if problems:
        raise SpecError(problems, what)
    return data


def problems_of(data: Any, limits: InputLimits, root: str = "", cap: int = 50) -> Iterator[Problem]:
    """Every bound ``data`` breaks (at most ``cap``), walked without recursion."""
    found = 0
    stack = [(root, data, 1)]
    while stack and found < cap:
        path, value, depth = stack.pop()
        problem = _problem(path, value, depth, limits)
        if problem is not None:
            found += 1
            yield problem
            continue
        if isinstance(value, dict):
            for key, item in value.items():
                key_problem = _text_problem(_join(path, "(key)"), key, limits)
                if key_problem is not None:
                    found += 1
                    yield key_problem
                    continue
                stack.append((_join(path, key), item, depth + 1))
        elif isinstance(value, (list, tuple)):
            for i, item in enumerate(value):
                stack.append((_join(path, i), item, depth + 1))


def _problem(path: str, value: Any, depth: int, limits: InputLimits) -> Optional[Problem]:
    where = path or "(body)"
    if isinstance(value, str):
        return _text_problem(where, value, limits)
    if isinstance(value, _Bad):
        return Problem(where, value.why, value.text)
    if isinstance(value, float) and not math.isfinite(value):
        return Problem(where, "must be a finite number", repr(value))
    if (isinstance(value, int) and not isinstance(value, bool)
            and abs(value) >= 10 ** limits.max_int_digits):
        return Problem(where, f"integer of more than {limits.max_int_digits} digits")
    if isinstance(value, (dict, list, tuple)):
        if depth > limits.max_depth:
            return Problem(where, f"nested deeper than {limits.max_depth}")
        if len(value) > limits.max_items:
            return Problem(where, f"has {len(value)} entries, more than {limits.max_items}")
    return None


def _text_problem(where: str, text: Any, limits: InputLimits) -> Optional[Problem]:
    if not isinstance(text, str):
        return None
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError as exc:
        return Problem(where, f"not valid Unicode: lone surrogate at character {exc.start}", text)
    if size > limits.max_string_bytes:
        return Problem(where, f"is {size} bytes, more than {limits.max_string_bytes}", text)
    return None


def _join(path: str, key: Any) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]" if path else f"[{key}]"
    key = str(key)
    if not unicode_ok(key):
        key = ascii(key)
    return f"{path}.{key}" if path else key


class BodyTooLarge(ValueError):
    """A body over its byte bound (HTTP 413)."""

    def __init__(self, size: int, bound: int):
        self.size = size
        self.bound = bound
        super().__init__(f"the body is {size} bytes, more than {bound}")


def check_name(problems: list, field: str, value: Any, limits: InputLimits,
               required: bool = True) -> None:
    """Append a problem unless ``value`` is an id or name a store key column can hold."""
    if not isinstance(value, str):
        problems.append(Problem(field, "must be a string", value))
        return
    if required and not value.strip():
        problems.append(Problem(field, "must not be empty", value))
        return
    if not unicode_ok(value):
        problems.append(Problem(field, "not valid Unicode (lone surrogate)", value))
    elif len(value) > limits.max_name_chars:
        problems.append(Problem(field, f"is {len(value)} characters, more than "
                                       f"{limits.max_name_chars}", value))
    elif not plain_text(value):
        problems.append(Problem(field, "must not hold control, format or line-separator "
                                       "characters", value))


# Unicode categories no name needs, and which forge log lines or hide text: controls (C0, DEL,
# C1), formats (U+202E right-to-left override, U+FEFF, zero-width), line/paragraph separators.
_HIDDEN = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co", "Cn"})


def plain_text(text: str) -> bool:
    """Whether ``text`` is free of control, format and separator characters."""
    return not any(unicodedata.category(c) in _HIDDEN for c in text)


def _number_type(annotation: Any) -> bool:
    """Whether a field annotation is a number: ``int`` or ``float``, maybe ``Annotated`` or
    ``Optional`` (``bool`` itself is not a number here)."""
    if get_origin(annotation) is Annotated:
        return _number_type(get_args(annotation)[0])
    if get_origin(annotation) is Union:
        args = [a for a in get_args(annotation) if a is not type(None)]
        return bool(args) and all(_number_type(a) for a in args)
    return annotation in (int, float)


def no_bool_for_number(model: Any, value: Any, info: Any) -> Any:
    """Body of a pydantic ``field_validator("*", mode="before")``: ``true`` or ``false``
    where a number goes is refused (pydantic would read them as 1 and 0, which is a client's
    bug, not its wish; the protobuf JSON mapping Titus clients follow refuses them too)."""
    if isinstance(value, bool) and info.field_name:
        field = model.model_fields.get(info.field_name)
        if field is not None and _number_type(field.annotation):
            raise ValueError("must be a number, not true or false")
    return value
