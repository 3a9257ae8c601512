"""Suites in a Great Expectations context: an ephemeral context with the application's
logging, and a dataset's reviewed suite registered in it (pandas datasource → dataframe asset
→ whole-dataframe batch definition → ``ValidationDefinition``), with each expectation as
reviewed (:class:`ExpectationSpec`) found again in results by its GX id.

Great Expectations is imported inside functions only: importing it costs 5-12 s.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Final

from sodtrack.validation.suites import suite_parameters

_DATASOURCE: Final = "sodtrack"
_BATCH_DEFINITION: Final = "whole"

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


@dataclass(frozen=True, slots=True)
class ExpectationSpec:
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
class RegisteredSuite:
    suite: dict[str, Any]
    validation_definition: Any
    specs: dict[str, ExpectationSpec]
    """By GX expectation id (assigned when the suite is added to the context)."""


def _severity(value: Any) -> str:
    return str(getattr(value, "value", value))


def register_suite(context: Any, dataset: str, suite_dict: dict[str, Any]) -> RegisteredSuite:
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
    specs: dict[str, ExpectationSpec] = {}
    reviewed = suite_dict["expectations"]
    for index, expectation in enumerate(suite.expectations):
        config = reviewed[index]
        if config["type"] != expectation.expectation_type:  # GX keeps the file's order
            raise RuntimeError(f"{dataset}: suite order changed when GX loaded it")
        specs[str(expectation.id)] = ExpectationSpec(
            index=index,
            type=config["type"],
            kwargs=dict(config["kwargs"]),
            severity=_severity(expectation.severity),
        )
    return RegisteredSuite(suite=suite_dict, validation_definition=vd, specs=specs)
