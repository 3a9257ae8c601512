"""Unchanged snapshots are not validated again (:mod:`sodtrack.extract.unchanged`).

Counted in Great Expectations invocations (``ValidationSession.validate`` calls per
dataset), never in time: a second night with the same catalog and coverage validates none of
them and says "unchanged, validated in run X", while today's partition is still published;
one changed cell in any snapshot dataset validates it again; a commit whose metadata has no
digest, or a malformed one, means "validate"."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from sodtrack.extract import unchanged
from sodtrack.extract.report import RunReport
from sodtrack.extract.unchanged import Validated, published_validation
from sodtrack.simulator.app import create_app
from sodtrack.validation import ValidationSession

from .helpers import COUNTRY, Env, HookTransport, extract_config, json_of, json_response

SNAPSHOTS = ("categories", "services", "variants", "coverage_zones", "coverage_postal_codes")


@pytest.fixture
def gx_calls(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """Validations run, per dataset (each is a Great Expectations run of its suite)."""
    calls: Counter[str] = Counter()
    real = ValidationSession.validate

    def counting(self: ValidationSession, dataset: str, *args: Any, **kwargs: Any) -> Any:
        calls[dataset] += 1
        return real(self, dataset, *args, **kwargs)

    monkeypatch.setattr(ValidationSession, "validate", counting)
    return calls


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path, create_app(extract_config()))


def _snapshots(env: Env, calls: Counter[str]) -> RunReport:
    calls.clear()
    report = env.run("catalog", "coverage")
    assert report.success, [(f.family, f.error, f.critical_failures) for f in report.families]
    return report


def _by_dataset(report: RunReport) -> dict[str, Any]:
    return {d.dataset: d for d in report.datasets()}


def _commit(env: Env, dataset: str) -> dict[str, Any]:
    newest = env.warehouse.history(dataset, 1)[0]
    validation = newest["validation"]
    assert isinstance(validation, dict)
    return validation


def test_a_second_night_with_the_same_snapshots_validates_none(
    env: Env, gx_calls: Counter[str]
) -> None:
    first = _snapshots(env, gx_calls)
    assert gx_calls == Counter(dict.fromkeys(SNAPSHOTS, 1))
    validated_in = f"{first.run_id}-{COUNTRY}"
    versions = {d: env.warehouse.current_version(d) for d in SNAPSHOTS}
    for dataset in SNAPSHOTS:
        assert _commit(env, dataset)["validated_in"] == validated_in

    for _night in range(2):  # and the night after: still the first run's validation
        again = _snapshots(env, gx_calls)
        assert gx_calls == Counter()
        datasets = _by_dataset(again)
        for dataset in SNAPSHOTS:
            run = datasets[dataset]
            assert run.status == "published"
            assert run.reason == f"unchanged, validated in run {validated_in}"
            assert run.validated_in == validated_in
            # today's partition is published all the same, its commit naming run X
            assert env.warehouse.current_version(dataset) != versions[dataset]
            assert _commit(env, dataset)["validated_in"] == validated_in
        versions = {d: env.warehouse.current_version(d) for d in SNAPSHOTS}
        assert "unchanged, validated in run" in again.summary_markdown()
        assert again.report_path is not None
        written = Path(again.report_path).read_text()
        assert f'"reason": "unchanged, validated in run {validated_in}"' in written


Edit = Callable[[dict[str, Any], random.Random], None]


def _edit_name(doc: dict[str, Any], rng: random.Random) -> None:
    item = rng.choice(doc["data"])
    item["name"] = item["name"] + " (renamed)"


def _edit_postal_code(doc: dict[str, Any], rng: random.Random) -> None:
    zone = rng.choice([z for z in doc["data"] if len(z["postal_codes"]) > 1])
    zone["postal_codes"] = zone["postal_codes"][:-1]  # one code (a cell of the matrix) gone


CHANGES: list[tuple[str, Edit, set[str]]] = [
    ("/api/v1/catalog/categories", _edit_name, {"categories"}),
    ("/api/v1/catalog/services", _edit_name, {"services"}),
    ("/variants", _edit_name, {"variants"}),
    ("/api/v1/coverage/zones", _edit_name, {"coverage_zones"}),
    ("/api/v1/coverage/zones", _edit_postal_code, {"coverage_zones", "coverage_postal_codes"}),
]


class EditOnce:
    """Edits one cell of the first page of ``path`` (seeded), once per run."""

    def __init__(self, path: str, edit: Edit, seed: int) -> None:
        self.path, self.edit, self.rng = path, edit, random.Random(seed)
        self.done = False

    async def __call__(
        self, request: httpx.Request, response: httpx.Response, transport: HookTransport
    ) -> httpx.Response:
        if self.done or response.status_code != 200 or not request.url.path.endswith(self.path):
            return response
        document = await json_of(response)
        if not document.get("data"):
            return response
        self.edit(document, self.rng)
        self.done = True
        return json_response(response, document)


def _case_id(value: object) -> str:
    """A stable test id (a set's own order varies between processes: xdist needs one id)."""
    if isinstance(value, set | frozenset):
        return "+".join(sorted(value))
    return str(getattr(value, "__name__", value))


@pytest.mark.parametrize(("path", "edit", "changed"), CHANGES, ids=_case_id)
def test_one_changed_cell_is_validated_again(
    env: Env, gx_calls: Counter[str], path: str, edit: Edit, changed: set[str]
) -> None:
    _snapshots(env, gx_calls)
    env.hook = hook = EditOnce(path, edit, seed=len(path))
    try:
        report = _snapshots(env, gx_calls)
    finally:
        env.hook = None
    assert hook.done
    assert set(gx_calls) == changed
    for dataset, run in _by_dataset(report).items():
        assert (run.reason is None) == (dataset in changed), dataset


def test_a_commit_without_digests_means_validate(
    env: Env, gx_calls: Counter[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A warehouse published before digests existed (or whose digest failed): validated,
    then recorded; the night after, skipped."""
    with monkeypatch.context() as m:

        def broken(*args: Any) -> str:
            raise OSError("no digest tonight")

        m.setattr(unchanged, "content_hash", broken)
        _snapshots(env, gx_calls)
    for dataset in SNAPSHOTS:
        assert "content_hash" not in _commit(env, dataset)
    _snapshots(env, gx_calls)
    assert gx_calls == Counter(dict.fromkeys(SNAPSHOTS, 1))
    _snapshots(env, gx_calls)
    assert gx_calls == Counter()


GOOD = {
    "success": True,
    "critical_failures": [],
    "warnings": [],
    "content_hash": "c",
    "inputs_hash": "i",
    "validated_in": "run-1-cl",
}


def _corrupt(rng: random.Random) -> dict[str, Any]:
    """A commit's metadata broken in one of the ways a hand edit, an older writer or a
    truncated value can break it."""
    validation: Any = dict(GOOD)
    how = rng.randrange(8)
    key = rng.choice(["content_hash", "inputs_hash", "validated_in"])
    if how == 0:
        validation = None
    elif how == 1:
        validation = rng.choice(["", "garbage", 42, ["c", "i"]])
    elif how == 2:
        del validation[key]
    elif how == 3:
        validation[key] = rng.choice(["", None, 0, 1.5, ["c"], {"v": "c"}])
    elif how == 4:
        validation["success"] = rng.choice([False, None, "true", 1])
    elif how == 5:
        validation["warnings"] = ["services: expect_column_values_to_match_regex"]
    elif how == 6:
        validation["critical_failures"] = ["services: row count"]
    else:
        return {"country": "pe", "validation": GOOD}  # another country's commit only
    return {"country": COUNTRY, "validation": validation}


@pytest.mark.parametrize("seed", range(40))
def test_malformed_commit_metadata_means_validate(seed: int) -> None:
    rng = random.Random(seed)
    history = [_corrupt(rng)]
    assert published_validation(history, COUNTRY) is None, history
    # a good commit of the country further back does not count: the newest one speaks
    history.append({"country": COUNTRY, "validation": GOOD})
    if history[0]["country"] == COUNTRY:
        assert published_validation(history, COUNTRY) is None


def test_the_countrys_newest_commit_speaks() -> None:
    others: list[dict[str, Any]] = [
        {"country": "pe", "validation": {**GOOD, "content_hash": "x"}},
        {"operation": "VACUUM"},
    ]
    history = [*others, {"country": COUNTRY, "validation": GOOD}]
    assert published_validation(history, COUNTRY) == Validated("c", "i", "run-1-cl")


def test_the_demo_names_the_snapshots_not_validated_again() -> None:
    from rich.console import Console

    from sodtrack.demo import _show_unchanged
    from sodtrack.extract.report import DatasetRun, FamilyRun

    report = RunReport("run-2", "2026-12-04T05:00:00+00:00", ["cl"], False, "/tmp/wh")
    same = DatasetRun(
        "services", "cl", status="published", reason="unchanged, validated in run r1-cl"
    )
    fresh = DatasetRun("variants", "cl", status="published")
    report.families = [FamilyRun("catalog", "cl", [same, fresh], status="published")]
    console = Console(record=True, width=200)
    _show_unchanged(report, console)
    text = console.export_text()
    assert "services: unchanged, validated in run r1-cl" in text
    assert "variants" not in text
