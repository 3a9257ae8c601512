"""Suites in a Great Expectations context: an ephemeral context with the application's
logging, and a dataset's reviewed suite registered in it (pandas datasource → dataframe asset
→ whole-dataframe batch definition → ``ValidationDefinition``), with each expectation as
reviewed (:class:`ExpectationSpec`) found again in results by its GX id.

Great Expectations is imported inside functions only: importing it costs 5-12 s.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, Final

from sodtrack.validation.suites import suite_parameters
from sodtrack.validation.wholeset import SCOPE_KEY, WHOLE_DATASET, check_supported

_DATASOURCE: Final = "sodtrack"
_BATCH_DEFINITION: Final = "whole"

_GX_LOUD_LOGGER: Final = "great_expectations.data_context.types.base"
"""GX pins this logger at INFO when imported, so every context logs "Created temporary
directory ... for ephemeral docs site" whatever the application configured."""


_NO_BATCH_FINGERPRINT: Final = 0
"""GX's pandas engine hashes every batch under 1 GB (``hash_pandas_object`` of the whole frame,
then MD5) only to record a ``pandas_data_fingerprint`` batch marker: ~15 % of a GX run's CPU
on ``coverage_postal_codes`` (cProfile, 2.74M rows in 3 runs). Its ``HASH_THRESHOLD`` set to 0
skips it; nothing reads that marker (the batch id does not depend on it)."""


def new_context() -> Any:
    """An ephemeral GX context with progress bars off (they are on by default), and without
    GX's fingerprint of every batch (see ``_NO_BATCH_FINGERPRINT``)."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig
    from great_expectations.execution_engine import pandas_execution_engine

    logging.getLogger(_GX_LOUD_LOGGER).setLevel(logging.NOTSET)  # follow the app's config
    pandas_execution_engine.HASH_THRESHOLD = _NO_BATCH_FINGERPRINT

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context


def forget_batches(validation_definition: Any) -> None:
    """Drop the frame of the batch Great Expectations just validated.

    GX's pandas execution engine is cached on the datasource and keeps the last batch it
    loaded (its ``BatchManager``'s batch and batch-data caches) until the next run loads
    another: so while the next batch was converted and validated, the previous pandas frame
    (and the Arrow buffers its ``str`` columns share) was still alive. Measured on 1M
    ``booking_changes`` rows staged in 128k-row groups, 12 GX runs: RSS between runs ~25 MiB
    lower once the cache is cleared; the run's result does not refer to the frame."""
    engine = validation_definition.data.data_asset.datasource.get_execution_engine()
    manager = engine.batch_manager
    manager.reset_batch_cache()
    manager.batch_data_cache.clear()


@dataclass(frozen=True, slots=True)
class ExpectationSpec:
    """One expectation as reviewed (unresolved kwargs), found again in results by its id."""

    index: int
    type: str
    kwargs: dict[str, Any]
    severity: str
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def whole_dataset(self) -> bool:
        """Evaluated over the whole dataset by DuckDB (:mod:`sodtrack.validation.wholeset`)."""
        return self.meta.get(SCOPE_KEY) == WHOLE_DATASET

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
class RegisteredSuite:
    suite: dict[str, Any]
    validation_definition: Any
    """Runs the suite's per-row expectations (suite ``<dataset>.per_row``) on one batch."""
    specs: dict[str, ExpectationSpec]
    """The per-row expectations, by their GX id in the per-row suite."""
    whole: list[ExpectationSpec]
    """The whole-dataset expectations (evaluated by DuckDB, not by GX)."""
    configurations: list[Any]
    """Every expectation's GX configuration in the full suite ``<dataset>``, in file order
    (what Data Docs shows)."""


def _severity(value: Any) -> str:
    return str(getattr(value, "value", value))


def per_row_suite_name(dataset: str) -> str:
    return f"{dataset}.per_row"


def register_suite(context: Any, dataset: str, suite_dict: dict[str, Any]) -> RegisteredSuite:
    """Add (or update) the dataset's suite, and the per-row part of it with its asset, batch
    definition and validation definition.

    The full suite (``<dataset>``, as reviewed) is what Data Docs and results show; Great
    Expectations runs only its per-row part (``<dataset>.per_row``, the same expectations
    minus the ``whole_dataset`` ones), batch by batch."""
    import great_expectations as gx

    reviewed = suite_dict["expectations"]
    full = context.suites.add_or_update(gx.ExpectationSuite(**suite_dict))
    per_row_dict = {
        **suite_dict,
        "name": per_row_suite_name(dataset),
        "expectations": [
            e for e in reviewed if (e.get("meta") or {}).get(SCOPE_KEY) != WHOLE_DATASET
        ],
    }
    per_row = context.suites.add_or_update(gx.ExpectationSuite(**per_row_dict))
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
        gx.ValidationDefinition(name=dataset, data=batch_definition, suite=per_row)
    )
    all_specs: list[ExpectationSpec] = []
    for index, expectation in enumerate(full.expectations):
        config = reviewed[index]
        if config["type"] != expectation.expectation_type:  # GX keeps the file's order
            raise RuntimeError(f"{dataset}: suite order changed when GX loaded it")
        spec = ExpectationSpec(
            index=index,
            type=config["type"],
            kwargs=dict(config["kwargs"]),
            severity=_severity(expectation.severity),
            meta=dict(config.get("meta") or {}),
        )
        if spec.whole_dataset:
            check_supported(spec.type, f"{dataset} expectation #{index}")
        all_specs.append(spec)
    rows = [s for s in all_specs if not s.whole_dataset]
    if len(rows) != len(per_row.expectations):
        raise RuntimeError(f"{dataset}: the per-row suite lost expectations")
    specs: dict[str, ExpectationSpec] = {}
    for spec, expectation in zip(rows, per_row.expectations, strict=True):
        if spec.type != expectation.expectation_type:
            raise RuntimeError(f"{dataset}: per-row suite order changed when GX loaded it")
        specs[str(expectation.id)] = spec
    return RegisteredSuite(
        suite=suite_dict,
        validation_definition=vd,
        specs=specs,
        whole=[s for s in all_specs if s.whole_dataset],
        configurations=[e.configuration for e in full.expectations],
    )
