"""Validate one dataset of a run against its Great Expectations suite.

``validate_dataset`` (one call) or a ``ValidationSession`` (several datasets of one run, one
Data Docs site) load the reviewed suite from ``schemas/expectations``, fill its parameters
(country facts, sibling-dataset ids, row-count bounds) and run it with an ephemeral GX context:
pandas datasource → dataframe asset → whole-dataframe batch definition → ``ValidationDefinition``
→ ``run(batch_parameters={"dataframe": df}, expectation_parameters=..., result_format="SUMMARY")``.

Two kinds of expectations, as the suite file marks them:

* per-row ones (a row is judged alone: not-null, in a literal set, regex, pairs...) run
  through Great Expectations, batch by batch. Data may arrive as an iterable of
  ``pyarrow.Table`` chunks (e.g. the decoded batches of the staged files); chunks are re-cut
  into batches sized by a memory budget (``batch_memory``, ``SODTRACK_VALIDATION_BATCH_MEMORY``;
  or ``batch_rows`` when given), each converted to pandas and validated on its own, and the
  per-expectation counts are summed (exact for per-row checks): memory is bounded by the
  largest chunk plus one batch, never the dataset;
* whole-dataset ones (``meta.scope == "whole_dataset"``: uniqueness and compound uniqueness,
  row counts, values among a sibling dataset's ids) are evaluated exactly over the whole
  dataset in one DuckDB pass (:mod:`sodtrack.validation.wholeset`) fed by the same stream of
  chunks, so the data is read once.

Both are folded into one GX suite result per dataset (stored under the suite's name, with
GX's counts and examples of unexpected values), which Data Docs renders; the per-row part
runs as the GX suite ``<dataset>.per_row``.

The modules, one concern each: ``context`` (the GX context and a suite registered in it),
``batching`` (data in, the one place that sizes GX runs), ``aggregate`` (per-batch results
summed), ``wholeset`` (the whole-dataset checks in DuckDB), and this one: the session that
runs them.

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
from sodtrack.validation.aggregate import Aggregator, whole_outcome
from sodtrack.validation.batching import (
    DEFAULT_BATCH_MEMORY,
    Counted,
    empty_frame,
    freeze_long_lived,
    gx_batches,
    input_chunks,
    release_memory,
    to_pandas,
)
from sodtrack.validation.context import (
    RegisteredSuite,
    forget_batches,
    new_context,
    per_row_suite_name,
    register_suite,
)
from sodtrack.validation.outcome import ExpectationOutcome, ValidationOutcome
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
    NULLABLE_PARAMETERS,
    P_CATEGORY_IDS,
    load_suite_dict,
    suite_parameters,
)
from sodtrack.validation.wholeset import WholeDataset, WholeResult, WholeSpec, resolve
from sodtrack.warehouse.duck import DuckLimits

if TYPE_CHECKING:
    import pandas as pd

    from sodtrack.validation.batching import DataInput

__all__ = [
    "DEFAULT_BATCH_MEMORY",
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
    ``batch_memory`` (bytes) sizes the GX batches; ``duck_limits`` bound the DuckDB pass of
    the whole-dataset checks (``SODTRACK_DUCKDB_MEMORY_LIMIT``, ``SODTRACK_DUCKDB_THREADS``);
    ``arrow_dtypes`` converts batches with ``pandas.ArrowDtype`` (benchmarks compare it).
    """

    def __init__(
        self,
        run_id: str | None = None,
        *,
        docs_dir: Path | None = None,
        suites_dir: Path | None = None,
        context: Any = None,
        batch_memory: int = DEFAULT_BATCH_MEMORY,
        arrow_dtypes: bool = False,
        duck_limits: DuckLimits | None = None,
    ) -> None:
        self.run_id = run_id or new_run_id()
        self.batch_memory = batch_memory
        self.duck_limits = duck_limits or DuckLimits()
        self.arrow_dtypes = arrow_dtypes
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
        batch_rows: int | None = None,
    ) -> ValidationOutcome:
        """Validate one dataset (a ``pyarrow.Table``, a pandas DataFrame, or an iterable of
        ``pyarrow.Table`` chunks) of ``country``; see ``validate_dataset``."""
        started = time.perf_counter()
        code = get_country(country).code
        registered = self._registration(dataset)
        freeze_long_lived()
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
            row_count += len(df)

        whole_specs = [
            WholeSpec(key=str(spec.index), type=spec.type, kwargs=spec.kwargs)
            for spec in registered.whole
        ]
        counted = Counted(input_chunks(data))
        with WholeDataset(whole_specs, limits=self.duck_limits) as whole:

            def tee(chunks: Any) -> Any:
                for chunk in chunks:
                    whole.add(chunk)
                    yield chunk

            gx_seconds = 0.0
            batches = gx_batches(tee(counted), batch_rows, memory_budget=self.batch_memory)
            for batch in batches:
                t = time.perf_counter()
                frame = to_pandas(batch, arrow_dtypes=self.arrow_dtypes)
                del batch  # during the GX run only the frame (and what it shares) is alive
                run(frame)
                del frame
                forget_batches(registered.validation_definition)
                release_memory()
                gx_seconds += time.perf_counter() - t
            if aggregator.batches == 0:
                run(empty_frame(dataset))
            aggregator.finish()
            t = time.perf_counter()
            answers = whole.evaluate(params)
            whole_seconds = time.perf_counter() - t
        self._store_result(dataset, registered, last, aggregator, answers, params, run_identifier)

        outcomes: list[tuple[int, ExpectationOutcome]] = aggregator.outcomes()
        outcomes += [
            (spec.index, whole_outcome(spec, answers[str(spec.index)])) for spec in registered.whole
        ]
        outcome = ValidationOutcome(
            dataset=dataset,
            country=code,
            run_id=self.run_id,
            results=[o for _, o in sorted(outcomes, key=lambda pair: pair[0])],
            row_count=row_count,
            chunks=counted.count,
            batches=aggregator.batches,
            seconds=time.perf_counter() - started,
            parameters=_summarise(params),
            gx_seconds=gx_seconds,
            whole_dataset_seconds=whole_seconds,
        )
        self.outcomes[dataset] = outcome
        return outcome

    def _store_result(
        self,
        dataset: str,
        registered: RegisteredSuite,
        last: Any,
        aggregator: Aggregator,
        answers: Mapping[str, WholeResult],
        params: Mapping[str, Any],
        run_identifier: Any,
    ) -> None:
        """One GX result for the dataset, under the full suite's name (what Data Docs shows):
        the per-row results summed over the batches and the whole-dataset answers, in the
        suite file's order. Replaces the per-row suite's stored batch result."""
        from great_expectations.core import ExpectationSuiteValidationResult
        from great_expectations.core.expectation_validation_result import (
            ExpectationValidationResult,
        )
        from great_expectations.data_context.types.resource_identifiers import (
            ExpectationSuiteIdentifier,
            ValidationResultIdentifier,
        )
        from great_expectations.expectations.expectation_configuration import (
            ExpectationConfiguration,
        )

        by_index: dict[int, Any] = {}
        for result in last.results:
            spec = registered.specs[str(result.expectation_config.id)]
            acc = aggregator.acc[str(result.expectation_config.id)]
            result.success = acc.success
            result.result = aggregator.gx_result(acc)
            by_index[spec.index] = result
        for spec in registered.whole:
            answer = answers[str(spec.index)]
            config = registered.configurations[spec.index]
            kwargs = {name: resolve(value, params) for name, value in spec.kwargs.items()}
            kwargs["batch_id"] = last.batch_id
            by_index[spec.index] = ExpectationValidationResult(
                success=answer.success and answer.exception is None,
                expectation_config=ExpectationConfiguration(
                    type=spec.type,
                    kwargs=kwargs,
                    meta=dict(config.meta or {}),
                    severity=config.severity,
                    id=config.id,
                ),
                result=answer.result,
                exception_info={
                    "raised_exception": answer.exception is not None,
                    "exception_traceback": None,
                    "exception_message": answer.exception,
                },
            )
        results = [by_index[i] for i in sorted(by_index)]
        evaluated = len(results)
        successful = sum(bool(r.success) for r in results)
        meta = dict(last.meta)
        meta["sodtrack_batches"] = aggregator.batches
        combined = ExpectationSuiteValidationResult(
            success=successful == evaluated,
            results=results,
            suite_name=dataset,
            suite_parameters=last.suite_parameters,
            statistics={
                "evaluated_expectations": evaluated,
                "successful_expectations": successful,
                "unsuccessful_expectations": evaluated - successful,
                "success_percent": 100.0 * successful / evaluated if evaluated else None,
            },
            meta=meta,
            batch_id=last.batch_id,
        )
        store = self.context.validation_results_store
        per_row = per_row_suite_name(dataset)
        batch_identifier = last.batch_id
        for key in store.list_keys():
            if key.expectation_suite_identifier.name == per_row and key.run_id == run_identifier:
                batch_identifier = key.batch_identifier
                store.remove_key(key)
        key = ValidationResultIdentifier(
            expectation_suite_identifier=ExpectationSuiteIdentifier(name=dataset),
            run_id=run_identifier,
            batch_identifier=batch_identifier,
        )
        store.set(key, combined)

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
    batch_rows: int | None = None,
) -> ValidationOutcome:
    """Validate one dataset of a run; ``outcome.success`` says whether it may be published.

    ``data``: a ``pyarrow.Table`` (or pandas DataFrame), or an iterable of ``pyarrow.Table``
    chunks; its per-row expectations run through GX in batches of at most ``batch_rows`` rows
    (default: sized by the session's memory budget; memory bounded by the largest chunk plus
    one batch), its whole-dataset ones in one DuckDB pass over the same stream. Columns must
    be the dataset's plus ``country``; hive date keys (``snapshot_date``...) are dropped if
    present.
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
