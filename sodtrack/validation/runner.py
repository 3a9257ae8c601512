"""Validate one dataset of a run against its Great Expectations suite.

``validate_dataset`` (one call) or a ``ValidationSession`` (several datasets of one run, one
Data Docs site) load the reviewed suite from ``schemas/expectations``, fill its parameters
(country facts, sibling-dataset ids, row-count bounds) and run it with an ephemeral GX context:
pandas datasource → dataframe asset → whole-dataframe batch definition → ``ValidationDefinition``
→ ``run(batch_parameters={"dataframe": df}, expectation_parameters=..., result_format="SUMMARY")``.

Bounded memory: data may arrive as an iterable of ``pyarrow.Table`` chunks (e.g. one per
partition, read one at a time from the staged files). Chunks are re-cut into batches of at
most ``batch_rows`` rows (small partitions concatenated zero-copy, big ones sliced; default
100,000), each batch is converted to pandas and validated on its own, and the per-expectation
results are summed: memory is bounded by the largest chunk plus one batch, never the dataset.
GX costs ~1 s of CPU per bookings-suite run whatever the size, hence batching rather than one
run per (often small) month. Two checks need the whole dataset and are computed here across
batches instead:

* the row count (the ``expect_table_row_count_to_be_between`` results are re-evaluated on the
  total number of rows);
* uniqueness of the dataset's key: the runner keeps one 64-bit hash per row's key
  (``pandas.util.hash_pandas_object``; 8 bytes a row, e.g. 16 MB for 2 million bookings, not
  the ids themselves) and counts rows of a batch whose key appeared in an earlier batch. A
  64-bit collision (p ≈ n²/2⁶⁵, ~1e-7 for 2 million rows) would report a false duplicate.
  Other unique checks (``sku``, bookings' ``external_reference``) are within-batch only;
  catalog datasets fit in one batch anyway.

Great Expectations is imported inside functions only: importing it costs 5-12 s.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import hashlib
import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sodtrack.contract.countries import get_country
from sodtrack.validation.outcome import (
    PARTIAL_LIMIT,
    ExpectationOutcome,
    ValidationOutcome,
    jsonable,
)
from sodtrack.validation.parameters import (
    RowCountPolicy,
    collect_ids,
    country_parameters,
    published_row_count_parameters,
    row_count_parameters,
)
from sodtrack.validation.suites import (
    DATASET_COLUMNS,
    DATASETS,
    IGNORED_PARTITION_COLUMNS,
    KEY_COLUMNS,
    NULLABLE_PARAMETERS,
    P_CATEGORY_IDS,
    expected_columns,
    load_suite_dict,
    suite_parameters,
)

if TYPE_CHECKING:
    import pandas as pd

    DataInput: TypeAlias = pa.Table | pd.DataFrame | Iterable[pa.Table]
    """A dataset: one table (or pandas frame), or its chunks (e.g. one per partition)."""


_ROW_COUNT: Final = "expect_table_row_count_to_be_between"
_UNIQUE: Final = "expect_column_values_to_be_unique"
_COMPOUND_UNIQUE: Final = "expect_compound_columns_to_be_unique"
_SUMMED: Final = ("element_count", "unexpected_count", "missing_count")
_DATASOURCE: Final = "sodtrack"
DEFAULT_BATCH_ROWS: Final = 100_000
"""Rows per GX run: chunks are concatenated or sliced to this size (``None``: one run per
chunk as received). Bounds the pandas copy (~30-60 MB for 100k bookings rows)."""
_BATCH_DEFINITION: Final = "whole"


def new_run_id() -> str:
    """A sortable run id: ``20261203T013000Z-1a2b3c4d``."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


_GX_LOUD_LOGGER: Final = "great_expectations.data_context.types.base"
"""GX pins this logger at INFO when imported, so every context logs "Created temporary
directory ... for ephemeral docs site" whatever the application configured."""


def new_context() -> Any:
    """An ephemeral GX context with progress bars off (they are on by default)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    logging.getLogger(_GX_LOUD_LOGGER).setLevel(logging.NOTSET)  # follow the app's config

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


# ---------------------------------------------------------------- suites in a context


@dataclass(frozen=True, slots=True)
class _Spec:
    """One expectation as reviewed (unresolved kwargs), found again in results by its id."""

    index: int
    type: str
    kwargs: dict[str, Any]
    severity: str

    @property
    def column(self) -> str | None:
        column = self.kwargs.get("column")
        return column if isinstance(column, str) else None

    @property
    def columns(self) -> list[str] | None:
        if "column_list" in self.kwargs:
            return [str(c) for c in self.kwargs["column_list"]]
        if "column_A" in self.kwargs:
            return [str(self.kwargs["column_A"]), str(self.kwargs["column_B"])]
        return None

    @property
    def parameters(self) -> list[str]:
        return sorted(suite_parameters({"expectations": [{"kwargs": self.kwargs}]}))


@dataclass(slots=True)
class _Registered:
    suite: dict[str, Any]
    validation_definition: Any
    specs: dict[str, _Spec]
    """By GX expectation id (assigned when the suite is added to the context)."""


def _severity(value: Any) -> str:
    return str(getattr(value, "value", value))


def _register(context: Any, dataset: str, suite_dict: dict[str, Any]) -> _Registered:
    """Add (or update) the dataset's suite, asset, batch definition and validation definition."""
    import great_expectations as gx

    suite = context.suites.add_or_update(gx.ExpectationSuite(**suite_dict))
    datasources = context.data_sources.all()
    if _DATASOURCE in datasources:
        datasource = datasources[_DATASOURCE]
    else:
        datasource = context.data_sources.add_pandas(name=_DATASOURCE)
    asset_names = {asset.name for asset in datasource.assets}
    if dataset in asset_names:
        asset = datasource.get_asset(dataset)
    else:
        asset = datasource.add_dataframe_asset(name=dataset)
    batch_names = {bd.name for bd in asset.batch_definitions}
    if _BATCH_DEFINITION in batch_names:
        batch_definition = asset.get_batch_definition(_BATCH_DEFINITION)
    else:
        batch_definition = asset.add_batch_definition_whole_dataframe(_BATCH_DEFINITION)
    vd = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(name=dataset, data=batch_definition, suite=suite)
    )
    specs: dict[str, _Spec] = {}
    reviewed = suite_dict["expectations"]
    for index, expectation in enumerate(suite.expectations):
        config = reviewed[index]
        if config["type"] != expectation.expectation_type:  # GX keeps the file's order
            raise RuntimeError(f"{dataset}: suite order changed when GX loaded it")
        specs[str(expectation.id)] = _Spec(
            index=index,
            type=config["type"],
            kwargs=dict(config["kwargs"]),
            severity=_severity(expectation.severity),
        )
    return _Registered(suite=suite_dict, validation_definition=vd, specs=specs)


# ---------------------------------------------------------------- data in


def _chunks(data: Any) -> Iterator[Any]:
    """Normalise the input to an iterator of tables/frames without materialising it."""
    if isinstance(data, pa.Table | pa.RecordBatch):
        yield data
        return
    if type(data).__name__ == "DataFrame":
        yield data
        return
    if isinstance(data, Iterable):
        yield from data
        return
    raise TypeError(f"expected a pyarrow Table or an iterable of Tables, got {type(data).__name__}")


class _Counted:
    """Counts the input chunks as they are consumed."""

    def __init__(self, chunks: Iterator[Any]) -> None:
        self.chunks = chunks
        self.count = 0

    def __iter__(self) -> Iterator[Any]:
        for chunk in self.chunks:
            self.count += 1
            yield chunk


def _batches(chunks: Iterable[Any], batch_rows: int | None) -> Iterator[Any]:
    """Re-cut Arrow chunks into batches of at most ``batch_rows`` rows: small chunks are
    concatenated (zero-copy) and big ones sliced, so GX's fixed cost per run (~1 s of CPU for
    the bookings suite) is paid a few times, not once per partition, while the pandas copy of
    a batch stays bounded. Chunks of different schemas are never merged (a missing column must
    stay visible); pandas frames pass through as they are."""
    if batch_rows is not None and batch_rows < 1:
        raise ValueError(f"batch_rows must be >= 1, got {batch_rows}")
    pending: list[pa.Table] = []
    size = 0
    produced = False
    last_empty: pa.Table | None = None

    def flush() -> Iterator[pa.Table]:
        nonlocal pending, size, produced
        if pending:
            produced = True
            yield pending[0] if len(pending) == 1 else pa.concat_tables(pending)
        pending, size = [], 0

    for chunk in chunks:
        if isinstance(chunk, pa.RecordBatch):
            chunk = pa.Table.from_batches([chunk])
        if not isinstance(chunk, pa.Table):
            yield from flush()
            produced = True
            yield chunk
            continue
        if chunk.num_rows == 0:
            last_empty = chunk  # validated only if nothing else comes (column set, row count)
            continue
        if batch_rows is None:
            produced = True
            yield chunk
            continue
        if pending and not chunk.schema.equals(pending[0].schema):
            yield from flush()
        offset = 0
        while offset < chunk.num_rows:
            take = min(batch_rows - size, chunk.num_rows - offset)
            pending.append(chunk.slice(offset, take))
            size += take
            offset += take
            if size >= batch_rows:
                yield from flush()
    yield from flush()
    if not produced and last_empty is not None:
        yield last_empty


def _load_malloc_trim() -> Callable[[int], int] | None:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        trim: Callable[[int], int] = libc.malloc_trim
    except (OSError, AttributeError):  # not glibc: nothing to trim
        return None
    return trim


_MALLOC_TRIM = _load_malloc_trim()


def release_memory() -> None:
    """Between Great Expectations runs: collect the previous batch's frames (GX's results
    and metric objects form reference cycles) and hand the freed heap back to the OS
    (glibc keeps it otherwise, and RSS would creep up batch after batch)."""
    gc.collect()
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


def _to_pandas(chunk: Any) -> pd.DataFrame:
    """One chunk as pandas: dictionary-encoded (partition) columns decoded, hive date keys
    dropped, money as ``Decimal`` objects, timestamps tz-aware."""
    import pandas as pd

    if isinstance(chunk, pd.DataFrame):
        drop = [c for c in chunk.columns if c in IGNORED_PARTITION_COLUMNS]
        return chunk.drop(columns=drop) if drop else chunk
    if isinstance(chunk, pa.RecordBatch):
        chunk = pa.Table.from_batches([chunk])
    if not isinstance(chunk, pa.Table):
        raise TypeError(f"expected pyarrow Tables as chunks, got {type(chunk).__name__}")
    drop = [name for name in chunk.column_names if name in IGNORED_PARTITION_COLUMNS]
    if drop:
        chunk = chunk.drop_columns(drop)
    for i, f in enumerate(chunk.schema):
        if pa.types.is_dictionary(f.type):
            chunk = chunk.set_column(i, f.name, pc.cast(chunk.column(i), f.type.value_type))
    df: pd.DataFrame = chunk.to_pandas()
    return df


def _empty_frame(dataset: str) -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame({name: pd.Series([], dtype=object) for name in expected_columns(dataset)})


# ---------------------------------------------------------------- aggregation over chunks


class _KeyTracker:
    """Counts rows whose key already appeared in an earlier chunk (64-bit hashes, sorted)."""

    def __init__(self, columns: tuple[str, ...]) -> None:
        self.columns = list(columns)
        self.seen: np.ndarray[Any, np.dtype[np.uint64]] = np.empty(0, dtype=np.uint64)
        self.duplicates = 0
        self.samples: list[Any] = []

    def add(self, df: pd.DataFrame) -> None:
        import pandas as pd

        if any(c not in df.columns for c in self.columns):
            return  # the column-set expectation reports it
        keys = df[self.columns].dropna()
        if keys.empty:
            return
        # Hash plain Python strings so that str/object/categorical chunks hash alike.
        hashes = pd.util.hash_pandas_object(keys.astype(object), index=False).to_numpy(
            dtype=np.uint64
        )
        if self.seen.size:
            repeated = np.isin(hashes, self.seen)
            count = int(repeated.sum())
            if count:
                self.duplicates += count
                room = PARTIAL_LIMIT - len(self.samples)
                if room > 0:
                    rows = keys[repeated].head(room)
                    if len(self.columns) == 1:
                        self.samples.extend(rows[self.columns[0]].tolist())
                    else:
                        self.samples.extend(list(t) for t in rows.itertuples(index=False))
        self.seen = np.union1d(self.seen, hashes)


@dataclass(slots=True)
class _Acc:
    success: bool = True
    counts: dict[str, int] = field(default_factory=dict)
    partial: list[Any] = field(default_factory=list)
    observed: Any = None
    percent: float | None = None
    exception: str | None = None


def _exception_message(result: Any) -> str | None:
    info = result.exception_info or {}
    if not isinstance(info, Mapping):
        return None
    if info.get("raised_exception"):
        return str(info.get("exception_message") or "exception")
    for value in info.values():  # keyed by metric when several metrics raised
        if isinstance(value, Mapping) and value.get("raised_exception"):
            return str(value.get("exception_message") or "exception")
    return None


class _Aggregator:
    def __init__(self, specs: Mapping[str, _Spec]) -> None:
        self.specs = specs
        self.acc: dict[str, _Acc] = {spec_id: _Acc() for spec_id in specs}
        self.batches = 0

    def add(self, suite_result: Any) -> None:
        self.batches += 1
        for result in suite_result.results:
            spec_id = str(result.expectation_config.id)
            if spec_id not in self.acc:
                raise RuntimeError(f"result for an unknown expectation id {spec_id}")
            acc = self.acc[spec_id]
            acc.success = acc.success and bool(result.success)
            details = result.result or {}
            for key in _SUMMED:
                if details.get(key) is not None:
                    acc.counts[key] = acc.counts.get(key, 0) + int(details[key])
            room = PARTIAL_LIMIT - len(acc.partial)
            if room > 0:
                acc.partial.extend(list(details.get("partial_unexpected_list") or [])[:room])
            if "observed_value" in details and (acc.observed is None or not result.success):
                acc.observed = details["observed_value"]
            acc.percent = details.get("unexpected_percent")
            acc.exception = acc.exception or _exception_message(result)

    def finish(self, *, row_count: int, keys: _KeyTracker, parameters: Mapping[str, Any]) -> None:
        """Whole-dataset checks when there were several batches: row count and key uniqueness."""
        if self.batches <= 1:
            return
        key = keys.columns
        for spec_id, spec in self.specs.items():
            acc = self.acc[spec_id]
            if spec.type == _ROW_COUNT:
                low = _resolve(spec.kwargs.get("min_value"), parameters)
                high = _resolve(spec.kwargs.get("max_value"), parameters)
                acc.success = (low is None or row_count >= low) and (
                    high is None or row_count <= high
                )
                acc.observed = row_count
            elif keys.duplicates and _is_key_check(spec, key):
                acc.success = False
                acc.counts["unexpected_count"] = (
                    acc.counts.get("unexpected_count", 0) + keys.duplicates
                )
                room = PARTIAL_LIMIT - len(acc.partial)
                acc.partial.extend(keys.samples[: max(room, 0)])
            counts = acc.counts
            if "unexpected_count" in counts and "element_count" in counts:
                nonmissing = counts["element_count"] - counts.get("missing_count", 0)
                acc.percent = 100.0 * counts["unexpected_count"] / nonmissing if nonmissing else 0.0

    def gx_result(self, acc: _Acc) -> dict[str, Any]:
        out: dict[str, Any] = dict(acc.counts)
        if acc.percent is not None:
            out["unexpected_percent"] = acc.percent
        if "unexpected_count" in acc.counts:
            out["partial_unexpected_list"] = list(acc.partial)
        if acc.observed is not None:
            out["observed_value"] = acc.observed
        return out

    def outcomes(self) -> list[ExpectationOutcome]:
        outcomes: list[tuple[int, ExpectationOutcome]] = []
        for spec_id, spec in self.specs.items():
            acc = self.acc[spec_id]
            outcomes.append(
                (
                    spec.index,
                    ExpectationOutcome(
                        type=spec.type,
                        severity=spec.severity,
                        success=acc.success and acc.exception is None,
                        column=spec.column,
                        columns=spec.columns,
                        parameters=spec.parameters,
                        element_count=acc.counts.get("element_count"),
                        unexpected_count=acc.counts.get("unexpected_count"),
                        unexpected_percent=acc.percent,
                        partial_unexpected_list=jsonable(acc.partial),
                        observed_value=jsonable(acc.observed),
                        exception=acc.exception,
                    ),
                )
            )
        return [outcome for _, outcome in sorted(outcomes, key=lambda pair: pair[0])]


def _is_key_check(spec: _Spec, key: list[str]) -> bool:
    """The uniqueness expectation of the dataset's key (its other unique checks are per chunk)."""
    if spec.type == _UNIQUE:
        return [spec.column] == key
    return spec.type == _COMPOUND_UNIQUE and spec.columns == key


def _resolve(value: Any, parameters: Mapping[str, Any]) -> Any:
    if isinstance(value, Mapping) and "$PARAMETER" in value:
        return parameters.get(str(value["$PARAMETER"]))
    return value


# ---------------------------------------------------------------- parameters


def _normalise(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return sorted(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def _summarise(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """Parameters for the report: id lists shown as counts."""
    return {
        name: (f"<{len(value)} values>" if isinstance(value, list) and len(value) > 10 else value)
        for name, value in sorted(parameters.items())
    }


# ---------------------------------------------------------------- session


class ValidationSession:
    """The validations of one run: one ephemeral GX context, one Data Docs site.

    ``validate`` may be called once per dataset (again for the same dataset replaces its
    result); ``build_docs`` renders every validation of the session to
    ``docs_dir/<run_id>/index.html``. Pass ``context`` to share a GX context (tests do); by
    default each session creates its own, which costs ~0.01 s once GX is imported.
    """

    def __init__(
        self,
        run_id: str | None = None,
        *,
        docs_dir: Path | None = None,
        suites_dir: Path | None = None,
        context: Any = None,
    ) -> None:
        self.run_id = run_id or new_run_id()
        self.docs_dir = docs_dir
        self.suites_dir = suites_dir
        self.outcomes: dict[str, ValidationOutcome] = {}
        self._context = context
        self._registered: dict[str, _Registered] = {}
        self._run_time = datetime.now(UTC)

    @property
    def context(self) -> Any:
        if self._context is None:
            self._context = new_context()
        return self._context

    def _run_identifier(self) -> Any:
        from great_expectations.core.run_identifier import RunIdentifier

        return RunIdentifier(run_name=self.run_id, run_time=self._run_time)

    def _registration(self, dataset: str) -> _Registered:
        if dataset not in DATASET_COLUMNS:
            raise ValueError(f"unknown dataset {dataset!r}: expected one of {', '.join(DATASETS)}")
        if dataset not in self._registered:
            suite = load_suite_dict(dataset, self.suites_dir)
            self._registered[dataset] = _register(self.context, dataset, suite)
        return self._registered[dataset]

    def parameters_for(
        self,
        dataset: str,
        *,
        country: str,
        parameters: Mapping[str, Any] | None = None,
        previous_row_count: int | None = None,
        row_count_policy: RowCountPolicy | None = None,
        data: Any = None,
    ) -> dict[str, Any]:
        """Every parameter the dataset's suite needs: country facts and row-count bounds
        computed here, references from ``parameters`` (which also overrides the others).
        ``published_row_count`` (bookings' floor) defaults to ``previous_row_count``: a whole
        dataset may not have fewer rows than the published one; the gate overrides it with
        the published rows of the partitions an incremental staging replaces."""
        suite = load_suite_dict(dataset, self.suites_dir)
        merged: dict[str, Any] = {
            **country_parameters(country),
            **row_count_parameters(dataset, previous_row_count, row_count_policy),
            **published_row_count_parameters(previous_row_count),
            **{name: _normalise(value) for name, value in (parameters or {}).items()},
        }
        needed = suite_parameters(suite)
        if (
            P_CATEGORY_IDS in needed
            and P_CATEGORY_IDS not in merged
            and dataset == "categories"
            and isinstance(data, pa.Table)
        ):
            merged[P_CATEGORY_IDS] = collect_ids(data)  # parents are categories of the same run
        missing = sorted(needed - merged.keys())
        if missing:
            raise ValueError(
                f"{dataset}: missing suite parameters {missing} "
                "(see sodtrack.validation.parameters.reference_parameters)"
            )
        unset = sorted(n for n in needed - NULLABLE_PARAMETERS if merged[n] is None)
        if unset:
            raise ValueError(f"{dataset}: suite parameters {unset} may not be None")
        return {name: merged[name] for name in sorted(needed)}

    def validate(
        self,
        dataset: str,
        data: DataInput,
        *,
        country: str,
        parameters: Mapping[str, Any] | None = None,
        previous_row_count: int | None = None,
        row_count_policy: RowCountPolicy | None = None,
        batch_rows: int | None = DEFAULT_BATCH_ROWS,
    ) -> ValidationOutcome:
        """Validate one dataset (a ``pyarrow.Table``, a pandas DataFrame, or an iterable of
        ``pyarrow.Table`` chunks) of ``country``; see ``validate_dataset``."""
        started = time.perf_counter()
        code = get_country(country).code
        registered = self._registration(dataset)
        params = self.parameters_for(
            dataset,
            country=code,
            parameters=parameters,
            previous_row_count=previous_row_count,
            row_count_policy=row_count_policy,
            data=data,
        )
        run_identifier = self._run_identifier()
        aggregator = _Aggregator(registered.specs)
        keys = _KeyTracker(KEY_COLUMNS[dataset])
        last: Any = None
        row_count = 0

        def run(df: pd.DataFrame) -> None:
            nonlocal last, row_count
            last = registered.validation_definition.run(
                batch_parameters={"dataframe": df},
                expectation_parameters=params,
                result_format="SUMMARY",
                run_id=run_identifier,
            )
            aggregator.add(last)
            keys.add(df)
            row_count += len(df)

        counted = _Counted(_chunks(data))
        for batch in _batches(counted, batch_rows):
            run(_to_pandas(batch))
            release_memory()
        if aggregator.batches == 0:
            run(_empty_frame(dataset))
        aggregator.finish(row_count=row_count, keys=keys, parameters=params)
        if aggregator.batches > 1:
            self._store_aggregate(dataset, last, aggregator, run_identifier)

        outcome = ValidationOutcome(
            dataset=dataset,
            country=code,
            run_id=self.run_id,
            results=aggregator.outcomes(),
            row_count=row_count,
            chunks=counted.count,
            batches=aggregator.batches,
            seconds=time.perf_counter() - started,
            parameters=_summarise(params),
            cross_chunk_duplicates=keys.duplicates,
        )
        self.outcomes[dataset] = outcome
        return outcome

    def _store_aggregate(
        self, dataset: str, last: Any, aggregator: _Aggregator, run_identifier: Any
    ) -> None:
        """Replace the last batch's stored result (same key for every batch: same suite, run
        and GX batch id) with the aggregate, so Data Docs shows one page per dataset."""
        for result in last.results:
            acc = aggregator.acc[str(result.expectation_config.id)]
            result.success = acc.success
            result.result = aggregator.gx_result(acc)
        evaluated = len(last.results)
        successful = sum(bool(r.success) for r in last.results)
        last.success = successful == evaluated
        last.statistics = {
            "evaluated_expectations": evaluated,
            "successful_expectations": successful,
            "unsuccessful_expectations": evaluated - successful,
            "success_percent": 100.0 * successful / evaluated if evaluated else None,
        }
        last.meta["sodtrack_batches"] = aggregator.batches
        store = self.context.validation_results_store
        for key in store.list_keys():
            if key.expectation_suite_identifier.name == dataset and key.run_id == run_identifier:
                store.set(key, last)

    def build_docs(self, docs_dir: Path | None = None) -> Path | None:
        """Render the session's validations to ``<docs_dir>/<run_id>/index.html``; returns the
        index path (``None`` without a docs folder)."""
        docs_dir = docs_dir or self.docs_dir
        if docs_dir is None:
            return None
        safe = re.sub(r"[^A-Za-z0-9._-]", "_", self.run_id)
        site_dir = (Path(docs_dir) / safe).resolve()
        digest = hashlib.sha1(str(site_dir).encode(), usedforsecurity=False).hexdigest()[:8]
        site_name = f"sodtrack_{safe}_{digest}"
        context = self.context
        if site_name not in context.list_data_docs_sites():
            context.add_data_docs_site(
                site_name=site_name,
                site_config={
                    "class_name": "SiteBuilder",
                    "show_how_to_buttons": False,
                    "store_backend": {
                        "class_name": "TupleFilesystemStoreBackend",
                        "base_directory": str(site_dir),
                    },
                    "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                },
            )
        context.build_data_docs(site_names=[site_name])
        index = site_dir / "index.html"
        if not index.is_file():
            raise RuntimeError(f"Data Docs were not written: {index} is missing")
        return index


def validate_dataset(
    dataset: str,
    data: DataInput,
    *,
    country: str,
    parameters: Mapping[str, Any] | None = None,
    previous_row_count: int | None = None,
    docs_dir: Path | None = None,
    run_id: str | None = None,
    session: ValidationSession | None = None,
    row_count_policy: RowCountPolicy | None = None,
    batch_rows: int | None = DEFAULT_BATCH_ROWS,
) -> ValidationOutcome:
    """Validate one dataset of a run; ``outcome.success`` says whether it may be published.

    ``data``: a ``pyarrow.Table`` (or pandas DataFrame), or an iterable of ``pyarrow.Table``
    chunks, validated in batches of at most ``batch_rows`` rows (memory bounded by the largest
    chunk plus one batch). Columns must be the dataset's plus ``country``; hive date keys
    (``snapshot_date``...) are dropped if present.
    ``parameters``: the sibling datasets' ids (``reference_parameters(...)``); may override any
    computed parameter. ``previous_row_count``: the published snapshot's, for row-count bounds.
    ``docs_dir``: also build Data Docs to ``docs_dir/<run_id>/index.html``
    (``outcome.docs_path``). Pass a ``session`` to validate several datasets of one run into
    one Data Docs site (then call ``session.build_docs()`` once).
    """
    session = session or ValidationSession(run_id, docs_dir=docs_dir)
    outcome = session.validate(
        dataset,
        data,
        country=country,
        parameters=parameters,
        previous_row_count=previous_row_count,
        row_count_policy=row_count_policy,
        batch_rows=batch_rows,
    )
    if docs_dir is not None:
        outcome = replace(outcome, docs_path=session.build_docs(docs_dir))
        session.outcomes[dataset] = outcome
    return outcome
