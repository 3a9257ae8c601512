"""Keeping spreadsheet programs from running cell text as a formula (CSV/formula injection).

A results file echoes what operators uploaded. Opened in Excel, LibreOffice or Google Sheets,
a text cell starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return may be run as
a formula (``=HYPERLINK(...)``, ``@SUM(...)``, DDE payloads). :func:`neutralise_formula`
prefixes such text with a single quote, which those programs show as plain text. The
full-width forms of the same characters (``＝`` ``＋`` ``－`` ``＠``), which some programs
also honour, are treated alike.

CSV has one more way in: the reader's delimiter. ``x;=1+1`` written unquoted is one cell for
a ``,`` reader but two (``x`` and a live ``=1+1``) for Excel set to ``;`` (the usual separator
in Chile and most of Latin America and Europe). So a CSV field is neutralised for *both*
readers (:func:`neutralise_csv_field`): its start, and every segment after a ``,`` or a ``;``
(and any ``"`` right after it, which a reader may take for an opening quote) that would start
a formula, get the ``'`` (``x;=1+1`` is written ``"x;'=1+1"``); and the CSV writers quote
every field (``csv.QUOTE_ALL``), so a reader that honours quotes sees one cell whatever its
delimiter. A line break inside a field is a boundary too: a ``;`` reader opening a ``,`` file
takes a quote for an opening one only at the start of a value, so the quotes of a field after
a ``,`` are text to it and a line break inside that field ends the record; what follows it
starts a new record's first cell (LibreOffice does this: ``a\n=1+1`` would be a live
``=1+1``), so it is written ``a\n'=1+1``. The reader strips a whole-cell ``'`` on re-upload;
an inner one (``x;'=1+1``, ``a\n'=1+1``) is read as written.

Apply it to *text* written to a cell, not to numbers written as numbers: ``-45`` written as a
numeric cell is a number, ``"-45"`` written as text becomes ``'-45``.
"""

from __future__ import annotations

import re
from typing import Final

FORMULA_TRIGGERS: frozenset[str] = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20")
CSV_DELIMITERS: Final = frozenset(",;")
_SEGMENT_FORMULA: Final = re.compile('([,;\r\n]"*)(?=[=+\\-@\t\r\uff1d\uff0b\uff0d\uff20])')


def needs_neutralising(text: str) -> bool:
    """Whether a spreadsheet could take ``text`` for a formula."""
    return bool(text) and text[0] in FORMULA_TRIGGERS


def neutralise_formula(text: str) -> str:
    """``text`` made safe to write into a spreadsheet cell (prefixed with ``'`` if needed)."""
    return "'" + text if needs_neutralising(text) else text


def neutralise_csv_field(text: str) -> str:
    """``text`` made safe as a CSV field for a ``,`` reader and a ``;`` reader alike: its
    start and every segment after a delimiter or a line break that would start a formula
    get a ``'``."""
    return _SEGMENT_FORMULA.sub(r"\1'", neutralise_formula(text))
