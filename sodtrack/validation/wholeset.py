"""The whole-dataset expectations of a suite, evaluated exactly in one DuckDB pass.

Some expectations are about the dataset, not about a row: uniqueness of a column or of a
compound key, the row count, and values that must be among a sibling dataset's ids. A
Great Expectations run sees one batch, so on a dataset validated in batches it could only
judge them batch by batch. The suite files say which expectations these are (``"scope":
"whole_dataset"`` in an expectation's ``meta``, see :mod:`sodtrack.validation.suites`); the
runner leaves them out of the GX runs and evaluates them here instead:

* as the dataset streams past once (the same chunks that feed GX, read once from the staged
  Parquet), :meth:`WholeDataset.add` writes the columns these expectations name to a Parquet
  file in a temporary folder (one row group buffered);
* :meth:`WholeDataset.evaluate` then, once the GX runs are over, answers each expectation with
  one DuckDB query over those files (grouping spilled to the same folder past the memory
  limit): ``GROUP BY`` the key for duplicates (every occurrence of a repeated value counts as
  unexpected, as in GX; rows whose key is null, or whose compound key is all null, are
  ``missing`` and ignored, as in GX), an anti-join against the reference ids, and the total
  row count.

The answers have GX's shape (``element_count``, ``missing_count``, ``unexpected_count``,
``unexpected_percent``, ``partial_unexpected_list``, ``observed_value``), so the runner folds
them into the suite's GX result: Data Docs and the run report show them as the suite's own
expectations. Examples of unexpected values are the first ones in value order (at most
``PARTIAL_LIMIT``), each repeated as often as it occurs, up to that limit.

Why files, not a DuckDB table filled as the chunks pass (until session 8): DuckDB then held up
to its memory limit of key columns during every GX run of the dataset, the two peaks added up
(2M bookings: peak RSS 618 MiB, the validation's); and DuckDB's in-memory table of 8M compound
keys did not fit in 48 MiB, where a grouping over files only needs its hash table.

Costs measured on this 2-core machine (``bench/bench_validation.py``): see its docstring.
"""

# SQL here is built from column names of the reviewed suites, each quoted by ``_quote``; values
# (ids, bounds) never enter the text: they are registered Arrow tables or Python-side numbers.
# ruff: noqa: S608

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sodtrack.validation.outcome import PARTIAL_LIMIT
from sodtrack.warehouse import duck
from sodtrack.warehouse.duck import DuckLimits

SCOPE_KEY: Final = "scope"
WHOLE_DATASET: Final = "whole_dataset"
"""``meta: {"scope": "whole_dataset"}``: the expectation is evaluated here, not by GX."""

UNIQUE: Final = "expect_column_values_to_be_unique"
COMPOUND_UNIQUE: Final = "expect_compound_columns_to_be_unique"
ROW_COUNT: Final = "expect_table_row_count_to_be_between"
IN_SET: Final = "expect_column_values_to_be_in_set"
SUPPORTED: Final = frozenset({UNIQUE, COMPOUND_UNIQUE, ROW_COUNT, IN_SET})
"""Expectation types this module evaluates; a whole-dataset expectation of another type is
refused when the suite is loaded."""

_TABLE: Final = "staged"
KEYS_ROW_GROUP_ROWS: Final = 64 * 1024
"""Row group of the key files: what their writer buffers, and what a scan decodes at a time."""
_IDS: Final = "ref_ids"


@dataclass(frozen=True, slots=True)
class WholeSpec:
    """One whole-dataset expectation as the suite file states it (parameters unresolved)."""

    key: str
    type: str
    kwargs: Mapping[str, Any]

    @property
    def columns(self) -> list[str]:
        if self.type == COMPOUND_UNIQUE:
            return [str(c) for c in self.kwargs["column_list"]]
        if self.type in (UNIQUE, IN_SET):
            return [str(self.kwargs["column"])]
        return []


@dataclass(slots=True)
class WholeResult:
    """GX-shaped answer of one expectation."""

    success: bool
    result: dict[str, Any] = field(default_factory=dict)
    exception: str | None = None


def check_supported(spec_type: str, where: str) -> None:
    if spec_type not in SUPPORTED:
        raise ValueError(
            f"{where}: {spec_type} cannot be evaluated on the whole dataset "
            f"(supported: {', '.join(sorted(SUPPORTED))})"
        )


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def resolve(value: Any, parameters: Mapping[str, Any]) -> Any:
    """A kwarg with its ``{"$PARAMETER": name}`` reference replaced by the parameter."""
    if isinstance(value, Mapping) and "$PARAMETER" in value:
        return parameters.get(str(value["$PARAMETER"]))
    return value


def _plain(table: pa.Table) -> pa.Table:
    """Dictionary-encoded (partition) columns decoded: DuckDB then sees plain values."""
    for i, f in enumerate(table.schema):
        if pa.types.is_dictionary(f.type):
            table = table.set_column(i, f.name, pc.cast(table.column(i), f.type.value_type))
    return table


class WholeDataset:
    """Collects the columns the whole-dataset expectations name, then evaluates them.

    ``limits`` bound DuckDB's threads and, by their ``checks_memory_limit``
    (:meth:`DuckLimits.for_checks`), its memory; past it DuckDB spills to a temporary folder
    removed by :meth:`close`. No query here depends on row order: insertion order is dropped.
    """

    def __init__(self, specs: Sequence[WholeSpec], *, limits: DuckLimits | None = None) -> None:
        for spec in specs:
            check_supported(spec.type, spec.key)
        self.specs = list(specs)
        self.columns: list[str] = sorted({c for s in self.specs for c in s.columns})
        self.rows = 0
        self.chunks = 0
        self.missing_columns: set[str] = set()
        self._created = False
        self._writers: dict[pa.Schema, pq.ParquetWriter] = {}
        """One key file per distinct chunk schema (its path: the writer's ``where``)."""
        self._spill = tempfile.mkdtemp(prefix="sodtrack-wholeset-")
        # UTC session: timestamps in examples come back in UTC; no query needs row order
        self.limits = (limits or DuckLimits()).for_checks()
        self.con = duck.connect(self.limits, self._spill, keep_order=False)

    def close(self) -> None:
        for writer in self._writers.values():
            writer.close()  # closing twice is a no-op
        self.con.close()
        shutil.rmtree(self._spill, ignore_errors=True)

    def __enter__(self) -> WholeDataset:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------- collecting

    def add(self, chunk: Any) -> None:
        """Append one chunk (a ``pyarrow.Table``/``RecordBatch`` or a pandas frame): its key
        columns go to a Parquet file in the spill folder (one file per distinct schema, a
        column first seen in a later chunk included), nothing into DuckDB yet."""
        if isinstance(chunk, pa.RecordBatch):
            chunk = pa.Table.from_batches([chunk])
        if not isinstance(chunk, pa.Table):  # a pandas DataFrame
            present = [c for c in self.columns if c in chunk.columns]
            chunk = pa.Table.from_pandas(chunk[present], preserve_index=False)
        self.rows += chunk.num_rows
        self.chunks += 1
        self.missing_columns.update(c for c in self.columns if c not in chunk.column_names)
        present = [c for c in self.columns if c in chunk.column_names]
        if not present or chunk.num_rows == 0:
            return
        part = _plain(chunk.select(present)).replace_schema_metadata(None)
        writer = self._writers.get(part.schema)
        if writer is None:
            path = os.path.join(self._spill, f"keys-{len(self._writers)}.parquet")
            writer = self._writers[part.schema] = pq.ParquetWriter(
                path, part.schema, compression="none"
            )
        writer.write_table(part, row_group_size=KEYS_ROW_GROUP_ROWS)

    def _open_table(self) -> None:
        """The staged key files as the view the queries read (once, at the first query)."""
        if self._created or not self._writers:
            return
        for writer in self._writers.values():
            writer.close()
        paths = [str(writer.where) for writer in self._writers.values()]
        files = ", ".join("'" + path.replace("'", "''") + "'" for path in paths)
        # One thread for the queries: DuckDB's grouping holds partitions per thread, and with
        # two it could run out of a 32 MiB limit on 1M distinct keys (1 run in 12,
        # tests/warehouse/test_duck.py). Measured at 2M bookings: the queries took 0.49 / 0.45 s
        # (bookings / booking_changes) on one thread over the files, 0.42 / 0.40 s on two over
        # the former DuckDB table.
        self.con.execute("SET threads = 1")
        self.con.execute(
            f"CREATE VIEW {_TABLE} AS SELECT * FROM read_parquet([{files}], union_by_name = true)"
        )
        self._created = True

    # ---------------------------------------------------------------- evaluating

    def evaluate(self, parameters: Mapping[str, Any]) -> dict[str, WholeResult]:
        """Every whole-dataset expectation's answer, by :attr:`WholeSpec.key`; DuckDB out of
        its memory limit is :class:`~sodtrack.errors.MemoryLimitTooLow`."""
        limit = self.limits.memory_limit
        with duck.within_limit("the whole-dataset checks", limit, duck.CHECKS_SETTING):
            return self._evaluate(parameters)

    def _evaluate(self, parameters: Mapping[str, Any]) -> dict[str, WholeResult]:
        self._open_table()
        out: dict[str, WholeResult] = {}
        for spec in self.specs:
            missing = [c for c in spec.columns if c in self.missing_columns]
            if missing:
                out[spec.key] = WholeResult(
                    success=False,
                    exception=f"column(s) {', '.join(missing)} not found in the data",
                )
                continue
            if spec.type == ROW_COUNT:
                out[spec.key] = self._row_count(spec, parameters)
            elif spec.type == IN_SET:
                out[spec.key] = self._in_set(spec, parameters)
            else:
                out[spec.key] = self._unique(spec)
        return out

    def _fetch(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = self.con.execute(sql, list(args)).fetchall()
        return rows

    def _row_count(self, spec: WholeSpec, parameters: Mapping[str, Any]) -> WholeResult:
        low = resolve(spec.kwargs.get("min_value"), parameters)
        high = resolve(spec.kwargs.get("max_value"), parameters)
        ok = (low is None or self.rows >= low) and (high is None or self.rows <= high)
        return WholeResult(success=ok, result={"observed_value": self.rows})

    def _counts(self, columns: list[str], *, all_missing: bool) -> tuple[int, int]:
        """(element_count, missing_count): a row is missing when its column is null (several
        columns: when all are, GX's default ``ignore_row_if``)."""
        if not self._created or self.rows == 0:
            return self.rows, 0
        joiner = " AND " if all_missing else " OR "
        condition = joiner.join(f"{_quote(c)} IS NULL" for c in columns)
        ((missing,),) = self._fetch(f"SELECT count(*) FROM {_TABLE} WHERE {condition}")
        return self.rows, int(missing)

    def _shaped(
        self, element: int, missing: int, groups: list[tuple[Any, int]], unexpected: int
    ) -> WholeResult:
        nonmissing = element - missing
        partial: list[Any] = []
        for value, count in groups:
            partial.extend([value] * min(count, PARTIAL_LIMIT - len(partial)))
            if len(partial) >= PARTIAL_LIMIT:
                break
        result = {
            "element_count": element,
            "missing_count": missing,
            "missing_percent": 100.0 * missing / element if element else None,
            "unexpected_count": unexpected,
            "unexpected_percent": 100.0 * unexpected / nonmissing if nonmissing else 0.0,
            "unexpected_percent_total": 100.0 * unexpected / element if element else None,
            "unexpected_percent_nonmissing": (
                100.0 * unexpected / nonmissing if nonmissing else 0.0
            ),
            "partial_unexpected_list": partial,
            "partial_unexpected_counts": [
                {"value": v, "count": c} for v, c in groups[:PARTIAL_LIMIT]
            ],
        }
        return WholeResult(success=unexpected == 0, result=result)

    def _unique(self, spec: WholeSpec) -> WholeResult:
        columns = spec.columns
        compound = spec.type == COMPOUND_UNIQUE
        element, missing = self._counts(columns, all_missing=True)
        if not self._created or element == missing:
            return self._shaped(element, missing, [], 0)
        keys = ", ".join(_quote(c) for c in columns)
        not_missing = " OR ".join(f"{_quote(c)} IS NOT NULL" for c in columns)
        repeated = (
            f"SELECT {keys}, count(*) AS _rows FROM {_TABLE} WHERE {not_missing} "
            f"GROUP BY ALL HAVING count(*) > 1"
        )
        ((unexpected,),) = self._fetch(f"SELECT coalesce(sum(_rows), 0) FROM ({repeated})")
        groups: list[tuple[Any, int]] = []
        if unexpected:
            rows = self._fetch(f"{repeated} ORDER BY {keys} LIMIT {PARTIAL_LIMIT}")
            for row in rows:
                value = dict(zip(columns, row[:-1], strict=True)) if compound else row[0]
                groups.append((value, int(row[-1])))
        return self._shaped(element, missing, groups, int(unexpected))

    def _in_set(self, spec: WholeSpec, parameters: Mapping[str, Any]) -> WholeResult:
        (column,) = spec.columns
        value_set = resolve(spec.kwargs.get("value_set"), parameters)
        if value_set is None:
            return WholeResult(success=False, exception=f"{column}: value_set is not set")
        element, missing = self._counts([column], all_missing=True)
        if not self._created or element == missing:
            return self._shaped(element, missing, [], 0)
        ids = pa.table({"v": pa.array(sorted({str(v) for v in value_set}), pa.string())})
        self.con.register(_IDS, ids)
        try:
            c = _quote(column)
            outside = (
                f"SELECT s.{c} AS _value, count(*) AS _rows FROM {_TABLE} s "
                f"ANTI JOIN {_IDS} r ON CAST(s.{c} AS VARCHAR) = r.v "
                f"WHERE s.{c} IS NOT NULL GROUP BY ALL"
            )
            ((unexpected,),) = self._fetch(f"SELECT coalesce(sum(_rows), 0) FROM ({outside})")
            groups: list[tuple[Any, int]] = []
            if unexpected:
                rows = self._fetch(f"{outside} ORDER BY _value LIMIT {PARTIAL_LIMIT}")
                groups = [(row[0], int(row[1])) for row in rows]
        finally:
            self.con.unregister(_IDS)
        return self._shaped(element, missing, groups, int(unexpected))
