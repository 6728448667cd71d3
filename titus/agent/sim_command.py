"""What a simple command would do, for the ``sim`` runtime: how long it runs, how it exits.

The sim runtime runs no process; it reads the task's entry point and command (joined as
Docker joins them: entry point first) and honours the few commands whose effect is only time
and an exit status:

- ``sleep N...`` (``/bin/sleep`` too): N seconds, with GNU sleep's suffixes ``s``, ``m``,
  ``h``, ``d``, decimals (``0.5``, ``1.5h``) and several arguments summed (``sleep 1m 30s``);
  ``sleep inf`` runs until killed. A bad argument (``sleep -1``, ``sleep nan``) fails at once
  with status 1, as GNU sleep does.
- ``exit N`` ends with status N (modulo 256, as a shell does; no N: the last status);
  ``true`` and ``:`` succeed, ``false`` fails; ``echo`` and ``printf`` take no time.
- ``sh -c "SCRIPT"`` (also ``bash``, ``dash``, ``ash``, ``/bin/sh``): a SCRIPT made only of the
  commands above separated by ``;``, ``&&``, ``||`` or new lines, with a shell's meaning of
  those separators (``sleep 1; exit 1`` runs a second, then fails).

Anything else (an unknown program, a pipe, a redirection, a variable in a ``sleep``
argument, a command longer than :data:`MAX_COMMAND_CHARS`) is not understood:
:func:`simulate` returns None and the task runs for the runtime's default duration. Parsing
never raises: every string a job can hold (huge, NaN, lone surrogates) yields a plan or None.
"""
from __future__ import annotations

import math
import os
import re
import shlex
from dataclasses import dataclass
from typing import Optional

# Longest command (all arguments together) read; a longer one runs for the default duration.
MAX_COMMAND_CHARS = 8192
# Longest sleep honoured: "sleep inf" and anything longer run this long, i.e. until killed.
MAX_SLEEP_SEC = 10 * 365 * 86400.0

_SHELLS = {"sh", "bash", "dash", "ash", "busybox-sh"}
_UNIT_SEC = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_NUMBER = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_SEPARATORS = {";", "&&", "||"}


@dataclass(frozen=True)
class SimPlan:
    """What the command does: runs ``duration_sec`` seconds, then exits ``exit_code``."""

    duration_sec: float
    exit_code: int


class _NotUnderstood(Exception):
    """The command holds something the simulation cannot honour."""


def simulate(argv: list[str]) -> Optional[SimPlan]:
    """The plan of ``argv`` (entry point + command), or None when it is not understood (an
    empty command too: the image's own default is unknown here)."""
    try:
        if not argv or sum(len(str(a)) for a in argv) > MAX_COMMAND_CHARS:
            return None
        argv = [str(a) for a in argv]
        program = os.path.basename(argv[0])
        if program in _SHELLS and len(argv) >= 3 and argv[1] == "-c":
            return _script(argv[2])
        duration, status, _ = _run([argv], 0.0, 0)
        return SimPlan(duration, status)
    except (_NotUnderstood, ValueError):
        return None


def _script(text: str) -> SimPlan:
    """A shell script of simple commands and separators."""
    # a new line separates commands as ';' does (a quoted new line only ever sits in an
    # echo's argument here, where the change is harmless)
    text = text.replace("\r\n", ";").replace("\n", ";").replace("\r", ";")
    lexer = shlex.shlex(text, posix=True, punctuation_chars=";&|")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    commands: list[tuple[str, list[str]]] = []  # (separator before it, argv)
    separator, words = ";", []
    for token in lexer:
        if token and token not in _SEPARATORS and set(token) <= set(";&|"):
            raise _NotUnderstood(token)  # a pipe, a background job, ";;" ...
        if token not in _SEPARATORS:
            words.append(token)
            continue
        if not words:
            if token != ";":
                raise _NotUnderstood(token)  # "&& x" with nothing before it
            continue
        commands.append((separator, words))
        separator, words = token, []
    if words:
        commands.append((separator, words))
    elif separator != ";":
        raise _NotUnderstood(separator)  # "sleep 1 &&" with nothing after it
    duration, status = 0.0, 0
    for separator, argv in commands:
        if separator == "&&" and status != 0 or separator == "||" and status == 0:
            continue
        duration, status, stop = _run([argv], duration, status)
        if stop:
            break
    return SimPlan(duration, status)


def _run(commands: list[list[str]], duration: float, status: int) -> tuple[float, int, bool]:
    """Run simple commands; returns (duration so far, last status, whether ``exit`` ran)."""
    for argv in commands:
        program, args = os.path.basename(argv[0]), argv[1:]
        if any(c in a for a in argv for c in "<>") or (
                program not in ("echo", "printf") and any(c in a for a in argv for c in "$`")):
            # a redirection, or a value only the shell knows (an echo's words do not matter)
            raise _NotUnderstood("expansion or redirection")
        if program == "sleep":
            seconds = _sleep_seconds(args)
            if seconds is None:
                status = 1  # GNU sleep: "invalid time interval", at once
            else:
                duration = min(MAX_SLEEP_SEC, duration + seconds)
                status = 0
        elif program == "exit":
            if len(args) > 1:
                return duration, 1, True  # the shell refuses: "too many arguments"
            if args:
                if not re.fullmatch(r"[+-]?\d{1,30}", args[0]):
                    return duration, 2, True  # "Illegal number"
                status = int(args[0]) % 256
            return duration, status, True
        elif program in ("true", ":", "echo", "printf"):
            status = 0
        elif program == "false":
            status = 1
        else:
            raise _NotUnderstood(program)
    return duration, status, False


def _sleep_seconds(args: list[str]) -> Optional[float]:
    """Seconds of GNU ``sleep ARGS`` (the sum), or None for an invalid interval."""
    if not args:
        return None
    total = 0.0
    for arg in args:
        text = arg.strip().lower()
        if text in ("inf", "infinity"):
            return MAX_SLEEP_SEC
        unit = text[-1:] if text[-1:] in "smhd" else ""
        number = text[:len(text) - len(unit)]
        if not _NUMBER.fullmatch(number):
            return None  # negative, NaN, hex, words ...
        value = float(number) * _UNIT_SEC[unit]
        if not math.isfinite(value):
            return MAX_SLEEP_SEC  # 1e999: as long as "inf"
        total += value
    return min(total, MAX_SLEEP_SEC)
