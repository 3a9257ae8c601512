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

The modules, one concern each: ``context`` (the GX context and a suite registered in it),
``batching`` (data in, the one place that sizes GX runs), ``aggregate`` (per-batch results
summed, the whole-dataset checks), and this one: the session that runs them.

Great Expectations is imported inside functions only: importing it costs 5-12 s.
"""

from __future__ import annotations

import hashlib
import re
import time
import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from sodtrack.contract.countries import get_country
from sodtrack.validation.aggregate import Aggregator, KeyTracker
from sodtrack.validation.batching import (
    DEFAULT_BATCH_ROWS,
    Counted,
    empty_frame,
    gx_batches,
    input_chunks,
    release_memory,
    to_pandas,
)
from sodtrack.validation.context import RegisteredSuite, new_context, register_suite
from sodtrack.validation.outcome import ValidationOutcome
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
    KEY_COLUMNS,
    NULLABLE_PARAMETERS,
    P_CATEGORY_IDS,
    load_suite_dict,
    suite_parameters,
)

if TYPE_CHECKING:
    import pandas as pd

    from sodtrack.validation.batching import DataInput

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "ValidationSession",
    "new_context",
    "new_run_id",
    "validate_dataset",
]


def new_run_id() -> str:
    """A sortable run id: ``20261203T013000Z-1a2b3c4d``."""
    return f"{datetime.now(UTC):%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"


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
        self._registered: dict[str, RegisteredSuite] = {}
        self._run_time = datetime.now(UTC)

    @property
    def context(self) -> Any:
        if self._context is None:
            self._context = new_context()
        return self._context

    def _run_identifier(self) -> Any:
        from great_expectations.core.run_identifier import RunIdentifier

        return RunIdentifier(run_name=self.run_id, run_time=self._run_time)

    def _registration(self, dataset: str) -> RegisteredSuite:
        if dataset not in DATASET_COLUMNS:
            raise ValueError(f"unknown dataset {dataset!r}: expected one of {', '.join(DATASETS)}")
        if dataset not in self._registered:
            suite = load_suite_dict(dataset, self.suites_dir)
            self._registered[dataset] = register_suite(self.context, dataset, suite)
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
        aggregator = Aggregator(registered.specs)
        keys = KeyTracker(KEY_COLUMNS[dataset])
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

        counted = Counted(input_chunks(data))
        for batch in gx_batches(counted, batch_rows):
            run(to_pandas(batch))
            release_memory()
        if aggregator.batches == 0:
            run(empty_frame(dataset))
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
        self, dataset: str, last: Any, aggregator: Aggregator, run_identifier: Any
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
