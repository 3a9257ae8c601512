"""What a run produced, announced to Prefect: events and asset materialisations.

The library publishes or quarantines a dataset and says so in its result
(:class:`~sodtrack.extract.report.FamilyRun`, :class:`~sodtrack.bulkload.UploadResult`); it
never imports Prefect. This module, part of the Prefect shell, turns those results into:

* ``sodtrack.dataset.published``, resource ``sodtrack.dataset.<country>.<dataset>``, payload
  ``version``, ``rows``, ``watermark`` (bookings: the watermark after the run; else null),
  ``location`` (the published version's folder), ``run_id`` — one per dataset published. The
  same step is a Prefect asset materialisation (task ``announce-<dataset>-<country>``, made
  with :func:`prefect.assets.materialize`) of the asset ``sodtrack://<country>/<dataset>``,
  with the API endpoints it was read from (``<base URL>/api/v1/catalog/services``...) as its
  upstream assets and the same payload as its metadata: the UI's lineage graph shows
  endpoint → dataset, and another deployment can trigger on fresh data
  (``expect: [sodtrack.dataset.published]``, ``match: {prefect.resource.id:
  sodtrack.dataset.cl.bookings}``);
* ``sodtrack.dataset.quarantined``, same resource, payload ``run_id``, ``quarantine_path``,
  ``critical_failures`` — one per dataset quarantined (the automation
  ``automations/dataset-quarantined.yaml`` alerts on it);
* ``sodtrack.nightly.completed``, resource ``sodtrack.nightly.<country>``, when every family
  of a country was published (the proactive deadline automations expect it every night);
* ``sodtrack.upload.rows-rejected``, resource ``sodtrack.upload.<upload_id>``, when a bulk
  load (not a dry run) ended with rows a person must fix (the upload alert).

Each event is emitted from inside the flow or task run, so Prefect relates it to that run
(and its flow, deployment and tags): the event's page in the UI links back to the run.
"""

from __future__ import annotations

from typing import Any, Final

from prefect import get_run_logger
from prefect.assets import Asset, AssetProperties, add_asset_metadata, materialize
from prefect.cache_policies import NO_CACHE
from prefect.events import emit_event

from sodtrack.contract.limits import API_PREFIX
from sodtrack.contract.operations import operation
from sodtrack.extract.families import SOURCES
from sodtrack.extract.report import DatasetRun, FamilyRun
from sodtrack.settings import Settings
from sodtrack.warehouse import Warehouse

PUBLISHED: Final = "sodtrack.dataset.published"
QUARANTINED: Final = "sodtrack.dataset.quarantined"
NIGHTLY_COMPLETED: Final = "sodtrack.nightly.completed"
ROWS_REJECTED: Final = "sodtrack.upload.rows-rejected"


def dataset_resource(country: str, dataset: str) -> str:
    return f"sodtrack.dataset.{country}.{dataset}"


def dataset_asset(country: str, dataset: str) -> Asset:
    return Asset(
        key=f"sodtrack://{country}/{dataset}",
        properties=AssetProperties(
            name=f"{dataset} ({country})",
            description=f"Sodtrack {dataset} of {country}: validated Parquet, published "
            "atomically by the nightly extraction.",
        ),
    )


def source_assets(settings: Settings, country: str, dataset: str) -> list[Asset]:
    """The API endpoints a dataset is read from, as assets (path parameters as ``:name``)."""
    root = settings.base_url_for(country).rstrip("/") + API_PREFIX
    keys = []
    for op_id in SOURCES.get(dataset, ()):
        path = operation(op_id).path.replace("{", ":").replace("}", "")
        keys.append(root + path)
    return [Asset(key=k) for k in dict.fromkeys(keys)]


def published_payload(
    settings: Settings, fam: FamilyRun, d: DatasetRun, run_id: str
) -> dict[str, Any]:
    version = d.version or ""
    # the Delta table's URI; ``version`` is its commit (time travel reads it back)
    location = Warehouse.from_settings(settings).table_uri(d.dataset) if version else None
    return {
        "country": d.country,
        "dataset": d.dataset,
        "version": d.version,
        "rows": d.rows_total if d.rows_total is not None else d.written,
        "watermark": fam.watermark_after,
        "location": location,
        "run_id": run_id,
    }


def _announce_task(settings: Settings, d: DatasetRun, payload: dict[str, Any]) -> Any:
    asset = dataset_asset(d.country, d.dataset)

    @materialize(
        asset,
        asset_deps=list(source_assets(settings, d.country, d.dataset)),
        name="announce-dataset",
        task_run_name=f"announce-{d.dataset}-{d.country}",
        retries=0,
        cache_policy=NO_CACHE,
    )
    def announce() -> dict[str, Any]:
        add_asset_metadata(asset, payload)
        emit_event(
            event=PUBLISHED,
            resource={
                "prefect.resource.id": dataset_resource(d.country, d.dataset),
                "prefect.resource.name": f"{d.dataset} ({d.country})",
            },
            payload=payload,
        )
        return payload

    return announce


def announce_family(settings: Settings, fam: FamilyRun, run_id: str) -> list[dict[str, Any]]:
    """Events (and asset materialisations) for one family's datasets; returns what was
    announced, ``{"event": ..., **payload}``. Call from inside a flow run."""
    announced: list[dict[str, Any]] = []
    for d in fam.datasets:
        if d.status == "published":
            # An announcement is news of data already published: its failure (the Prefect API
            # away a moment) is logged on the run, never turned into a failed extraction.
            payload = published_payload(settings, fam, d, run_id)
            state = _announce_task(settings, d, payload)(return_state=True)
            if state.is_completed():
                announced.append({"event": PUBLISHED, **payload})
            else:
                get_run_logger().warning(
                    "%s/%s published but not announced: %s", d.country, d.dataset, state.message
                )
        elif d.status == "quarantined":
            payload = {
                "country": d.country,
                "dataset": d.dataset,
                "run_id": run_id,
                "quarantine_path": d.quarantine_path,
                "critical_failures": list(fam.critical_failures),
            }
            emit_event(
                event=QUARANTINED,
                resource={
                    "prefect.resource.id": dataset_resource(d.country, d.dataset),
                    "prefect.resource.name": f"{d.dataset} ({d.country})",
                },
                payload=payload,
            )
            announced.append({"event": QUARANTINED, **payload})
    return announced


def announce_country(country: str, runs: list[FamilyRun], run_id: str) -> bool:
    """``sodtrack.nightly.completed`` for a country whose families were all published;
    returns whether it was emitted."""
    if not runs or any(f.status != "published" for f in runs):
        return False
    emit_event(
        event=NIGHTLY_COMPLETED,
        resource={
            "prefect.resource.id": f"sodtrack.nightly.{country}",
            "prefect.resource.name": f"nightly {country}",
        },
        payload={"country": country, "run_id": run_id, "families": [f.family for f in runs]},
    )
    return True


def announce_rejected_rows(outcome: dict[str, Any]) -> bool:
    """``sodtrack.upload.rows-rejected`` for a real load (not a dry run) that left rows for a
    person to fix; ``outcome`` is :func:`tasks.load.outcome_data`. Returns whether emitted."""
    if outcome["dry_run"] or not outcome["needs_a_person"]:
        return False
    emit_event(
        event=ROWS_REJECTED,
        resource={
            "prefect.resource.id": f"sodtrack.upload.{outcome['upload_id']}",
            "prefect.resource.name": str(outcome["file_name"]),
        },
        payload={
            k: outcome[k]
            for k in (
                "upload_id",
                "file_name",
                "country",
                "run",
                "rows",
                "rejected",
                "skipped_dependency",
                "failed_transient",
                "needs_a_person",
                "counts",
            )
        },
    )
    return True
