"""Whole-dataset expectations are exact whatever the batch size (issue #12, goal 4).

* every unique column and compound key the suites name: a duplicate placed more than a
  batch apart is found (small batches injected so the tests stay fast);
* a seeded generated corpus (random tables cut into random chunks, random planted
  duplicates, nulls and orphans) against a naive pandas computation of the same verdicts,
  on :class:`WholeDataset` alone and through a whole validation session.
"""

from __future__ import annotations

import itertools
import random
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from sodtrack.validation import ValidationSession, reference_parameters
from sodtrack.validation.outcome import PARTIAL_LIMIT, jsonable
from sodtrack.validation.suites import DATASETS, load_suite_dict
from sodtrack.validation.wholeset import (
    COMPOUND_UNIQUE,
    IN_SET,
    ROW_COUNT,
    UNIQUE,
    WholeDataset,
    WholeSpec,
)

from .samples import Row, clean_rows, table


def _unique_keys() -> list[tuple[str, tuple[str, ...]]]:
    """Every (dataset, columns) a suite file declares unique: read from the files, so a new
    unique column is covered without touching this test."""
    keys: list[tuple[str, tuple[str, ...]]] = []
    for dataset in DATASETS:
        for e in load_suite_dict(dataset)["expectations"]:
            if e["type"] == UNIQUE:
                keys.append((dataset, (e["kwargs"]["column"],)))
            elif e["type"] == COMPOUND_UNIQUE:
                keys.append((dataset, tuple(e["kwargs"]["column_list"])))
    return keys


UNIQUE_KEYS = _unique_keys()


def test_every_dataset_has_a_unique_key_covered() -> None:
    assert {dataset for dataset, _ in UNIQUE_KEYS} == set(DATASETS)
    assert ("services", ("sku",)) in UNIQUE_KEYS
    assert ("bookings", ("external_reference",)) in UNIQUE_KEYS


def _padded(dataset: str, rows: list[Row], unique: set[str], at_least: int) -> list[Row]:
    """At least ``at_least`` clean rows: copies of the last row with fresh values in every
    single unique column (compound keys' datasets already have enough rows)."""
    rows = [dict(r) for r in rows]
    n = 0
    while len(rows) < at_least:
        n += 1
        extra = dict(rows[-1])
        for column in unique:
            extra[column] = f"{extra[column]}-x{n}"
        rows.append(extra)
    return rows


@pytest.mark.parametrize(
    ("dataset", "columns"), UNIQUE_KEYS, ids=[f"{d}-{'+'.join(c)}" for d, c in UNIQUE_KEYS]
)
def test_a_duplicate_more_than_a_batch_apart_is_found(
    dataset: str,
    columns: tuple[str, ...],
    session: ValidationSession,
    cl_params: dict[str, list[str]],
) -> None:
    all_rows = clean_rows("cl", bookings=12)
    single_unique = {c for d, cs in UNIQUE_KEYS if d == dataset and len(cs) == 1 for c in cs}
    rows = _padded(dataset, all_rows[dataset], single_unique, at_least=4)
    batch_rows = max(1, len(rows) // 3)
    first, last = rows[0], rows[-1]
    assert len(rows) - 1 > 2 * batch_rows  # more than a batch between the two
    for column in columns:
        last[column] = first[column]
    outcome = session.validate(
        dataset,
        iter([table(dataset, rows)]),
        country="cl",
        parameters=cl_params,
        previous_row_count=len(rows),
        batch_rows=batch_rows,
    )
    assert outcome.batches >= 3
    failed = [r for r in outcome.results if not r.success]
    (failure,) = failed
    expected_type = UNIQUE if len(columns) == 1 else COMPOUND_UNIQUE
    assert failure.type == expected_type
    assert (failure.column,) == columns if len(columns) == 1 else failure.columns == list(columns)
    assert failure.unexpected_count == 2
    assert failure.element_count == len(rows)
    expected: Any = (
        jsonable(first[columns[0]])
        if len(columns) == 1
        else {c: jsonable(first[c]) for c in columns}
    )
    assert failure.partial_unexpected_list == [expected] * 2


# ---------------------------------------------------------------- generated corpus


def _random_table(rng: random.Random) -> tuple[pa.Table, list[str]]:
    """A random table: 'a' and 'b' strings from small alphabets (so duplicates and nulls
    happen, and are planted), 'n' integers, 'ref' values partly outside the id set."""
    rows = rng.randint(0, 400)
    alphabet = rng.randint(1, 600)
    null_rate = rng.choice([0.0, 0.02, 0.3])

    def value(prefix: str, width: int) -> str | None:
        if rng.random() < null_rate:
            return None
        return f"{prefix}{rng.randrange(width)}"

    ids = [f"r{i}" for i in range(rng.randint(0, 30))]
    data: dict[str, list[Any]] = {
        "a": [value("a", alphabet) for _ in range(rows)],
        "b": [value("b", rng.randint(1, 5)) for _ in range(rows)],
        "n": [rng.randrange(1_000_000) for _ in range(rows)],
        "ref": [value("r", 40) for _ in range(rows)],
    }
    for _ in range(rng.randint(0, 3)):  # planted duplicates far apart
        if rows >= 2:
            i, j = rng.randrange(rows), rng.randrange(rows)
            data["a"][j] = data["a"][i]
            data["n"][j] = data["n"][i]
    schema = pa.schema([("a", pa.string()), ("b", pa.string()), ("n", pa.int64()),
                        ("ref", pa.string())])  # fmt: skip
    return pa.table(data, schema=schema), ids


def _chunks(rng: random.Random, t: pa.Table) -> list[pa.Table]:
    cuts = sorted(rng.sample(range(1, t.num_rows), min(rng.randint(0, 6), max(t.num_rows - 1, 0))))
    edges = [0, *cuts, t.num_rows]
    return [t.slice(lo, hi - lo) for lo, hi in itertools.pairwise(edges)]


def _naive(df: pd.DataFrame, ids: list[str]) -> dict[str, tuple[int, int, int]]:
    """(element_count, missing_count, unexpected_count) as GX's pandas engine counts them."""
    out: dict[str, tuple[int, int, int]] = {}
    for column in ("a", "n"):
        present = df[column].dropna()
        dup = present[present.duplicated(keep=False)]
        out[column] = (len(df), len(df) - len(present), len(dup))
    keys = df[["a", "b", "n"]]
    kept = keys[~keys.isna().all(axis=1)]
    out["a+b+n"] = (len(df), len(df) - len(kept), int(kept.duplicated(keep=False).sum()))
    refs = df["ref"].dropna()
    out["ref"] = (len(df), len(df) - len(refs), int((~refs.isin(ids)).sum()))
    return out


SPECS = [
    WholeSpec("a", UNIQUE, {"column": "a"}),
    WholeSpec("n", UNIQUE, {"column": "n"}),
    WholeSpec("a+b+n", COMPOUND_UNIQUE, {"column_list": ["a", "b", "n"]}),
    WholeSpec("ref", IN_SET, {"column": "ref", "value_set": {"$PARAMETER": "ids"}}),
    WholeSpec("rows", ROW_COUNT, {"min_value": {"$PARAMETER": "lo"}, "max_value": 300}),
]


@pytest.mark.parametrize("seed", range(60))
def test_generated_corpus_matches_a_naive_pandas_computation(seed: int) -> None:
    rng = random.Random(seed)
    data, ids = _random_table(rng)
    low = rng.choice([None, 0, 200])
    with WholeDataset(SPECS) as whole:
        for chunk in _chunks(rng, data):
            whole.add(chunk)
        answers = whole.evaluate({"ids": ids, "lo": low})
    df = data.to_pandas()
    for key, (element, missing, unexpected) in _naive(df, ids).items():
        got = answers[key]
        assert got.exception is None
        assert (
            got.result["element_count"],
            got.result["missing_count"],
            got.result["unexpected_count"],
        ) == (element, missing, unexpected), key
        assert got.success == (unexpected == 0)
        partial = got.result["partial_unexpected_list"]
        assert len(partial) == min(unexpected, PARTIAL_LIMIT)
    rows = answers["rows"]
    assert rows.result["observed_value"] == data.num_rows
    assert rows.success == ((low is None or data.num_rows >= low) and data.num_rows <= 300)


def test_examples_are_the_offending_values() -> None:
    data = pa.table({"a": ["x", "y", "x", None, None, "z", "y", "x"], "ref": list("pqrpqrps")})
    specs = [
        WholeSpec("a", UNIQUE, {"column": "a"}),
        WholeSpec("ref", IN_SET, {"column": "ref", "value_set": ["p", "q"]}),
    ]
    with WholeDataset(specs) as whole:
        whole.add(data.slice(0, 3))
        whole.add(data.slice(3))
        answers = whole.evaluate({})
    assert answers["a"].result["partial_unexpected_list"] == ["x", "x", "x", "y", "y"]
    assert answers["a"].result["missing_count"] == 2
    assert answers["ref"].result["partial_unexpected_list"] == ["r", "r", "s"]
    assert answers["ref"].result["partial_unexpected_counts"] == [
        {"value": "r", "count": 2},
        {"value": "s", "count": 1},
    ]


def test_a_missing_column_is_a_failure_and_no_data_is_a_pass() -> None:
    specs = [WholeSpec("a", UNIQUE, {"column": "a"}), WholeSpec("b", UNIQUE, {"column": "b"})]
    with WholeDataset(specs) as whole:
        whole.add(pa.table({"a": ["x", "y"]}))
        whole.add(pa.table({"a": ["z"], "b": ["w"]}))
        answers = whole.evaluate({})
    assert answers["a"].success
    assert answers["a"].result["element_count"] == 3
    assert not answers["b"].success
    assert answers["b"].exception is not None
    assert "b" in answers["b"].exception
    with WholeDataset(specs) as whole:
        empty = whole.evaluate({})
    assert all(a.success and a.result["element_count"] == 0 for a in empty.values())


def test_only_supported_types_may_be_whole_dataset() -> None:
    with pytest.raises(ValueError, match="cannot be evaluated on the whole dataset"):
        WholeDataset([WholeSpec("x", "expect_column_values_to_match_regex", {"column": "a"})])


def _coverage_corpus(rng: random.Random) -> tuple[list[Row], dict[str, list[str]]]:
    """Coverage rows of a seeded random size with planted duplicates and orphans."""
    base = clean_rows("cl")["coverage_postal_codes"][0]
    zones = [f"zone_{i:03d}" for i in range(rng.randint(1, 8))]
    services = [f"svc_{i:03d}" for i in range(rng.randint(1, 8))]
    codes = [f"{7_500_000 + i}" for i in range(40)]
    rows = [
        {**base, "zone_id": z, "postal_code": c, "service_id": s}
        for z in zones
        for c in rng.sample(codes, rng.randint(1, 20))
        for s in services
        if rng.random() < 0.7
    ] or [{**base, "zone_id": zones[0], "postal_code": codes[0], "service_id": services[0]}]
    for _ in range(rng.randint(0, 3)):
        rows.insert(rng.randrange(len(rows) + 1), dict(rng.choice(rows)))  # duplicate
    for _ in range(rng.randint(0, 3)):
        orphan = dict(rng.choice(rows))
        column = rng.choice(["zone_id", "service_id"])
        orphan[column] = f"{column}_orphan_{rng.randrange(3)}"
        rows.insert(rng.randrange(len(rows) + 1), orphan)
    params = reference_parameters(zones=zones, services=services)
    return rows, params


@pytest.mark.parametrize("seed", range(4))
def test_generated_coverage_corpus_through_a_session(seed: int, session: ValidationSession) -> None:
    rng = random.Random(1000 + seed)
    rows, params = _coverage_corpus(rng)
    data = table("coverage_postal_codes", rows)
    batch_rows = rng.randint(max(1, len(rows) // 4), max(1, len(rows) // 2))
    outcome = session.validate(
        "coverage_postal_codes",
        iter(_chunks(rng, data)),
        country="cl",
        parameters=params,
        previous_row_count=len(rows),
        batch_rows=batch_rows,
    )
    df = data.to_pandas()
    key = ["zone_id", "postal_code", "service_id"]
    naive = {
        (COMPOUND_UNIQUE, None): int(df.duplicated(subset=key, keep=False).sum()),
        (IN_SET, "zone_id"): int((~df["zone_id"].isin(params["zone_ids"])).sum()),
        (IN_SET, "service_id"): int((~df["service_id"].isin(params["service_ids"])).sum()),
    }
    for (type_, column), unexpected in naive.items():
        (result,) = [r for r in outcome.results if r.type == type_ and r.column == column]
        assert result.unexpected_count == unexpected, (type_, column)
        assert result.success == (unexpected == 0)
    assert outcome.row_count == len(rows)
    failing = {(r.type, r.column) for r in outcome.results if not r.success}
    assert failing == {k for k, n in naive.items() if n}


def _demo_size_keys(rows: int, chunk: int, seed: int) -> list[pa.Table]:
    """``coverage_postal_codes``-like compound keys at demo size (zone × postal code ×
    service, strings of the API's lengths), in staged-file-sized chunks, with one duplicate
    planted at each end."""
    import numpy as np

    rng = np.random.default_rng(seed)
    n = np.arange(rows, dtype=np.int64)
    order = rng.permutation(rows)
    n[-1] = n[0]  # the last row repeats the first: a duplicate ``rows - 1`` rows apart
    n = n[order]

    def strings(prefix: str, values: Any) -> pa.Array:
        return pc.binary_join_element_wise(prefix, pc.cast(pa.array(values), pa.string()), "")

    zone, rest = np.divmod(n, 9_141)  # ~300 zones, as the demo
    postal, service = np.divmod(rest, 600)
    full = pa.table(
        {
            "zone_id": strings("zone-cl-", zone),
            "postal_code": strings("83", postal * 7 + 10_000),
            "service_id": strings("svc-00000000-", service),
        }
    )
    return [full.slice(start, chunk) for start in range(0, rows, chunk)]


def test_demo_size_uniqueness_fits_the_default_duckdb_limit() -> None:
    """2.74M compound keys (the demo's ``coverage_postal_codes``) through the checks'
    connection at the default limits: the answer, not "Out of Memory" (with a 32 MiB default,
    while the keys were a DuckDB table grouped on two threads, it failed: "failed to allocate
    data of size 4.0 KiB (32.2 MiB/32.0 MiB used)"), and the one planted duplicate found."""
    spec = WholeSpec(
        "0", COMPOUND_UNIQUE, {"column_list": ["zone_id", "postal_code", "service_id"]}
    )
    with WholeDataset([spec]) as whole:
        for piece in _demo_size_keys(2_742_166, 65_536, seed=12):
            whole.add(piece)
        answer = whole.evaluate({})["0"]
    assert answer.exception is None
    assert answer.result["element_count"] == 2_742_166
    assert answer.result["unexpected_count"] == 2
    assert not answer.success
