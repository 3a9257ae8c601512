"""Keeping spreadsheet programs from running cell text as a formula (CSV/formula injection).

A results file echoes what operators uploaded. Opened in Excel, LibreOffice or Google Sheets,
a text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return may be run as
a formula (``=HYPERLINK(...)``, ``@SUM(...)``, DDE payloads). :func:`neutralise_formula`
prefixes such text with a single quote, which those programs show as plain text. The
full-width forms of the same characters (``＝`` ``＋`` ``－`` ``＠``), which some programs
also honour, are treated alike.

Apply it to *text* written to a cell, not to numbers written as numbers: ``-45`` written as a
numeric cell is a number, ``"-45"`` written as text becomes ``'-45``.
"""

from __future__ import annotations

FORMULA_TRIGGERS: frozenset[str] = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")


def needs_neutralising(text: str) -> bool:
    """Whether a spreadsheet could take ``text`` for a formula."""
    return bool(text) and text[0] in FORMULA_TRIGGERS


def neutralise_formula(text: str) -> str:
    """``text`` made safe to write into a spreadsheet cell (prefixed with ``'`` if needed)."""
    return "'" + text if needs_neutralising(text) else text
