"""Header matching: aliases, accents/case/spacing, the mapping file, upload-level problems."""

from __future__ import annotations

from pathlib import Path

import pytest

from sodtrack.bulkload import (
    ALIASES,
    CANONICAL_COLUMNS,
    IssueCode,
    MappingFileError,
    header_key,
    load_mapping_file,
)
from sodtrack.bulkload.reading.headers import ALIAS_INDEX, column_label, match_headers

REQUIRED_HEADERS = [
    "external_reference",
    "service_sku",
    "scheduled_start",
    "customer_first_name",
    "customer_last_name",
    "customer_email",
    "address_line1",
    "city",
    "region",
    "postal_code",
]


def test_every_canonical_name_and_alias_resolves_to_its_column() -> None:
    for name in CANONICAL_COLUMNS:
        assert ALIAS_INDEX[header_key(name)] == name
    for canonical, aliases in ALIASES.items():
        assert canonical in CANONICAL_COLUMNS
        for alias in aliases:
            assert ALIAS_INDEX[header_key(alias)] == canonical, alias


def test_header_key_ignores_accents_case_spacing_and_punctuation() -> None:
    keys = {
        header_key(h)
        for h in (
            "Código Postal",
            "codigo_postal",
            "CÓDIGO-POSTAL",
            "  codigo  postal ",
            "Código de Postal",
        )
    }
    assert keys == {"codigopostal"}


@pytest.mark.parametrize(
    ("header", "canonical"),
    [
        ("Código postal", "postal_code"),
        ("CEP", "postal_code"),
        ("  zip code ", "postal_code"),
        ("Fecha", "scheduled_date"),
        ("HORA", "scheduled_time"),
        ("Monto", "payment_amount"),
        ("Valor", "payment_amount"),
        ("Referencia Externa", "external_reference"),
        ("referencia_externa", "external_reference"),
        ("Nombre", "customer_first_name"),
        ("Apellido", "customer_last_name"),
        ("Correo", "customer_email"),
        ("E-mail", "customer_email"),
        ("Teléfono", "customer_phone"),
        ("telefone", "customer_phone"),
        ("Teléfono cliente", "customer_phone"),  # 'cliente' only says whose phone it is
        ("Customer e-mail", "customer_email"),
        ("Dirección", "address_line1"),
        ("Endereço", "address_line1"),
        ("Comuna", "city"),
        ("Ciudad", "city"),
        ("Cidade", "city"),
        ("Región", "region"),
        ("Estado", "region"),
        ("SKU Servicio", "service_sku"),
        ("Proyecto", "project_reference"),
        ("Nombre del proyecto", "project_name"),
        ("Etapa", "stage_name"),
        ("Nº etapa", "stage_sequence"),
        ("Pago", "payment_amount"),
        ("Moneda", "payment_currency"),
        ("Método de pago", "payment_method"),
        ("Forma de pagamento", "payment_method"),
        ("Fecha de pago", "paid_at"),
        ("RUT", "customer_document_id"),
        ("DNI", "customer_document_id"),
        ("CPF", "customer_document_id"),
        ("CURP", "customer_document_id"),
        ("Observaciones", "notes"),
    ],
)
def test_aliases(header: str, canonical: str) -> None:
    match = match_headers([header])
    assert match.columns == {header.strip(): canonical}


def test_owner_words_never_make_a_specific_header_generic() -> None:
    # 'Nombre proyecto' is the project's name, not the customer's first name.
    assert match_headers(["Nombre proyecto"]).columns == {"Nombre proyecto": "project_name"}
    assert match_headers(["Nombre cliente"]).columns == {"Nombre cliente": "customer_first_name"}


def test_a_complete_header_has_no_issues() -> None:
    match = match_headers(REQUIRED_HEADERS)
    assert match.issues == []
    assert match.positions["postal_code"] == REQUIRED_HEADERS.index("postal_code")


def test_unknown_columns_are_reported_as_warnings() -> None:
    match = match_headers([*REQUIRED_HEADERS, "Vendedor", "Colonia"])
    assert match.unknown_columns == ["Vendedor", "Colonia"]
    assert [(i.code, i.severity, i.column) for i in match.issues] == [
        (IssueCode.UNKNOWN_COLUMN, "warning", "Vendedor"),
        (IssueCode.UNKNOWN_COLUMN, "warning", "Colonia"),
    ]
    assert not match.has_errors


def test_mapping_maps_and_ignores() -> None:
    headers = [*REQUIRED_HEADERS[:-1], "CP Cliente", "Vendedor"]
    match = match_headers(headers, {"cp cliente": "postal_code", "VENDEDOR": None})
    assert match.columns["CP Cliente"] == "postal_code"
    assert match.ignored_columns == ["Vendedor"]
    assert match.unknown_columns == []
    assert match.issues == []


def test_mapping_overrides_an_alias() -> None:
    match = match_headers([*REQUIRED_HEADERS, "Valor"], {"Valor": None})
    assert "Valor" not in match.columns
    assert match.ignored_columns == ["Valor"]


def test_unused_mapping_entries_are_reported() -> None:
    match = match_headers(REQUIRED_HEADERS, {"Código de cliente": None})
    assert [i.code for i in match.issues] == [IssueCode.MAPPING_UNUSED]


def test_mapping_to_an_unknown_column_raises() -> None:
    with pytest.raises(MappingFileError):
        match_headers(REQUIRED_HEADERS, {"X": "no_such_column"})


def test_a_column_mapped_twice_is_an_upload_error() -> None:
    match = match_headers([*REQUIRED_HEADERS, "Correo"])
    assert match.has_errors
    (issue,) = [i for i in match.issues if i.code == IssueCode.DUPLICATE_COLUMN]
    assert "'customer_email'" in issue.message
    assert "'Correo'" in issue.message
    assert "customer_email" not in match.positions


def test_identical_headers_are_a_duplicate_and_stay_distinguishable() -> None:
    match = match_headers([*REQUIRED_HEADERS, "notes", "notes"])
    assert any(i.code == IssueCode.DUPLICATE_COLUMN for i in match.issues)
    assert len(set(match.headers)) == len(match.headers)


def test_via_mapping_two_headers_on_one_field_is_an_error() -> None:
    match = match_headers([*REQUIRED_HEADERS, "Zip"], {"Zip": "postal_code"})
    assert any(i.code == IssueCode.DUPLICATE_COLUMN for i in match.issues)


@pytest.mark.parametrize("missing", [h for h in REQUIRED_HEADERS if h != "customer_email"])
def test_missing_required_columns(missing: str) -> None:
    match = match_headers([h for h in REQUIRED_HEADERS if h != missing])
    assert match.has_errors
    assert [(i.code, i.column) for i in match.issues] == [(IssueCode.MISSING_COLUMN, missing)]


def test_email_or_phone_column_is_enough() -> None:
    without_email = [h for h in REQUIRED_HEADERS if h != "customer_email"]
    assert not match_headers([*without_email, "customer_phone"]).has_errors
    assert match_headers(without_email).has_errors


def test_date_and_time_columns() -> None:
    base = [h for h in REQUIRED_HEADERS if h != "scheduled_start"]
    assert not match_headers([*base, "Fecha", "Hora"]).has_errors
    assert not match_headers([*base, "Fecha"]).has_errors  # date cells may carry the time
    conflicting = match_headers([*base, "scheduled_start", "Fecha"])
    assert [i.code for i in conflicting.issues] == [IssueCode.CONFLICTING_COLUMNS]


def test_partial_payment_columns_are_an_upload_error() -> None:
    match = match_headers([*REQUIRED_HEADERS, "project_reference", "Monto", "Ref pago"])
    (issue,) = match.issues
    assert issue.code == IssueCode.MISSING_COLUMN
    assert "payment_method" in issue.message
    assert "paid_at" in issue.message


def test_stage_and_payment_columns_need_a_project_column() -> None:
    match = match_headers([*REQUIRED_HEADERS, "stage_sequence", "stage_name"])
    assert [(i.code, i.column) for i in match.issues] == [
        (IssueCode.MISSING_COLUMN, "project_reference")
    ]
    match = match_headers([*REQUIRED_HEADERS, "project_reference", "stage_name"])
    assert [(i.code, i.column) for i in match.issues] == [
        (IssueCode.MISSING_COLUMN, "stage_sequence")
    ]


def test_empty_header_cells_get_a_column_label() -> None:
    match = match_headers([*REQUIRED_HEADERS, None, ""], first_column=0)
    assert match.headers[-2:] == ("(column K)", "(column L)")
    assert match.unnamed_positions == (10, 11)
    csv_match = match_headers([*REQUIRED_HEADERS, ""], spreadsheet_letters=False)
    assert csv_match.headers[-1] == "(column 11)"


@pytest.mark.parametrize(("position", "label"), [(0, "A"), (25, "Z"), (26, "AA"), (701, "ZZ")])
def test_column_labels(position: int, label: str) -> None:
    assert column_label(position, letters=True) == label


def test_load_mapping_file(tmp_path: Path) -> None:
    path = tmp_path / "mapping.yaml"
    path.write_text(
        '"CP Cliente": postal_code\nVendedor: null\nInterno: ignore\nZona Postal: Postal Code\n',
        encoding="utf-8",
    )
    assert load_mapping_file(path) == {
        "CP Cliente": "postal_code",
        "Vendedor": None,
        "Interno": None,
        "Zona Postal": "postal_code",
    }
    empty = tmp_path / "empty.yaml"
    empty.write_text("", encoding="utf-8")
    assert load_mapping_file(empty) == {}


@pytest.mark.parametrize("text", ["- a\n- b\n", "X: not_a_column\n", "X: [1, 2]\n", "X: {a: b\n"])
def test_bad_mapping_files(tmp_path: Path, text: str) -> None:
    path = tmp_path / "mapping.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(MappingFileError):
        load_mapping_file(path)
