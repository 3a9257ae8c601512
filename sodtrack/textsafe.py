"""Text from users, made safe to print, log and write into a spreadsheet cell.

Uploads, their header names and their file names are user-supplied: they can hold control
characters (a vertical tab pasted from Word, an ESC starting an ANSI sequence that recolours
or rewrites the terminal, a newline that forges a log line) and lone surrogates (text decoded
with ``surrogateescape``), which a terminal runs, a log reader splits, and XML (XLSX) and
UTF-8 cannot hold at all.

One notation everywhere: such a character is written as the visible text ``<U+XXXX>``
(``\\x0b`` → ``<U+000B>``, ESC → ``<U+001B>``). Excel, LibreOffice and a terminal show it as
it is; re-uploading a rejects file reads it back as those eight characters, never as the
original control character (delete it in the sheet to fix the row). The OOXML ``_x000B_``
notation was not chosen: Excel and calamine turn it back into the control character.

* :func:`printable` — for terminal output and log messages: every character that is not
  printable (``str.isprintable``: controls, newlines, tabs, format characters such as the
  bidi overrides, surrogates) is escaped. Apply it to the user-supplied part of a message only.
* :func:`cell_safe` — for a spreadsheet cell (CSV or XLSX): only what a cell cannot hold or
  should not carry is escaped (C0 controls except tab, line feed and carriage return, DEL, C1
  controls, surrogates, U+FFFE/U+FFFF); line breaks inside a cell stay.
"""

from __future__ import annotations

import re
from typing import Final

_CELL_UNSAFE: Final = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def escape_char(ch: str) -> str:
    """One character in the visible notation: ``<U+000B>``."""
    return f"<U+{ord(ch):04X}>"


def printable(text: object) -> str:
    """``text`` (``str()`` of it) with every non-printable character escaped, for a terminal
    or a log line. Printable text comes back unchanged."""
    s = text if isinstance(text, str) else str(text)
    if s.isprintable():
        return s
    return "".join(ch if ch.isprintable() else escape_char(ch) for ch in s)


def unsafe_chars(text: str) -> list[str]:
    """The distinct characters of ``text`` that :func:`cell_safe` escapes, in order of first
    appearance."""
    return list(dict.fromkeys(_CELL_UNSAFE.findall(text)))


def cell_safe(text: str) -> str:
    """``text`` as a spreadsheet cell may hold it (see the module docstring)."""
    return _CELL_UNSAFE.sub(lambda m: escape_char(m.group()), text)
