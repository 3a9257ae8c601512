"""Settings resolution and the preflight's checks that need no server (issue #10, item 7).

Generated corpora: arbitrary text in every variable (either valid, or one
``InvalidSetting`` line naming the variable, never another exception and never the secret);
base URLs of every shape (a scheme and a host, plain http only to loopback unless allowed);
where each setting came from, ``.env`` files included.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sodtrack.client.baseurl import check_base_url
from sodtrack.errors import (
    ConfigurationError,
    InsecureTransport,
    InvalidSetting,
    OutputNotWritable,
    StateStoreUnavailable,
    UnusableBaseUrl,
)
from sodtrack.preflight import Preflight, check_output, check_state
from sodtrack.settings import Settings, mask_url, resolve_settings, variable

FIELDS = sorted(Settings.model_fields)
_FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No SODTRACK_* from the machine, a working directory without ``.env``."""
    import os

    for name in list(os.environ):
        if name.upper().startswith("SODTRACK_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


_TEXT = st.text(
    st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"), max_size=12
)


@_FUZZ
@given(name=st.sampled_from(FIELDS), value=_TEXT)
def test_any_text_in_any_variable_is_valid_or_one_line_naming_it(name: str, value: str) -> None:
    import os

    var = variable(name)
    os.environ[var] = value
    os.environ["SODTRACK_CLIENT_SECRET"] = (
        "s3cr3t-never-shown" if name != "client_secret" else value
    )
    try:
        outcome: Settings | InvalidSetting
        try:
            outcome, origin = resolve_settings()
        except InvalidSetting as exc:
            outcome = exc
        if isinstance(outcome, InvalidSetting):
            line = str(outcome)
            assert outcome.setting == var
            assert line.startswith(f"{var}: ")
            assert "\n" not in outcome.line
            assert "s3cr3t-never-shown" not in line
            if name == "client_secret":
                assert value not in line or len(value) < 3
        else:
            if value.strip():
                assert origin.source(name) == f"environment variable {var}"
            assert isinstance(outcome, Settings)
    finally:
        del os.environ[var]
        os.environ.pop("SODTRACK_CLIENT_SECRET", None)


@pytest.mark.parametrize(
    ("var", "value", "line"),
    [
        ("SODTRACK_ENV", "staging", "SODTRACK_ENV: 'staging' is not one of dev, uat, prod"),
        ("SODTRACK_REQUEST_TIMEOUT_S", "abc", "SODTRACK_REQUEST_TIMEOUT_S: 'abc' is not a number"),
        ("SODTRACK_MAX_CONCURRENCY", "0", "SODTRACK_MAX_CONCURRENCY: '0' must be at least 1"),
        ("SODTRACK_COUNTRY", "zz", "SODTRACK_COUNTRY: unknown country 'zz'"),
        ("SODTRACK_ALLOW_INSECURE_HTTP", "maybe", "'maybe' is not true or false"),
    ],
)
def test_the_line_names_the_variable_and_the_problem(
    monkeypatch: pytest.MonkeyPatch, var: str, value: str, line: str
) -> None:
    monkeypatch.setenv(var, value)
    with pytest.raises(InvalidSetting) as caught:
        resolve_settings()
    assert line in str(caught.value)


def test_a_dotenv_file_is_read_only_from_the_working_directory_and_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(
        "SODTRACK_CLIENT_ID=from-file\nSODTRACK_CLIENT_SECRET=file-secret\nSODTRACK_ENV=uat\n"
    )
    monkeypatch.setenv("SODTRACK_ENV", "prod")  # the environment wins over the file
    resolved, origin = resolve_settings()
    assert resolved.client_id == "from-file"
    assert resolved.env.value == "prod"
    assert origin.env_file == (tmp_path / ".env").resolve()
    assert origin.env_file_variables == ("SODTRACK_CLIENT_ID", "SODTRACK_CLIENT_SECRET")
    assert origin.source("client_secret") == f".env file at {origin.env_file}"
    assert origin.source("env") == "environment variable SODTRACK_ENV"
    notice = "\n".join(Preflight(resolved, origin).notice())
    assert f"settings: read .env file at {origin.env_file}" in notice
    assert "file-secret" not in notice

    elsewhere = tmp_path / "sub"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # a parent's .env is not read
    resolved, origin = resolve_settings()
    assert origin.env_file is None
    assert resolved.client_id == "sim-client"


def test_sodtrack_env_file_picks_or_switches_off_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("SODTRACK_CLIENT_ID=stray\n")
    (tmp_path / "ops.env").write_text("SODTRACK_CLIENT_ID=chosen\n")
    monkeypatch.setenv("SODTRACK_ENV_FILE", "ops.env")
    assert resolve_settings()[0].client_id == "chosen"
    monkeypatch.setenv("SODTRACK_ENV_FILE", "none")
    resolved, origin = resolve_settings()
    assert (resolved.client_id, origin.env_file) == ("sim-client", None)
    monkeypatch.setenv("SODTRACK_ENV_FILE", "missing.env")
    with pytest.raises(InvalidSetting, match="SODTRACK_ENV_FILE: no such file"):
        resolve_settings()


def test_a_bad_value_from_the_file_says_so(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("SODTRACK_MAX_CONCURRENCY=many\n")
    with pytest.raises(InvalidSetting) as caught:
        resolve_settings()
    assert str(caught.value) == (
        "SODTRACK_MAX_CONCURRENCY: 'many' is not a whole number "
        f"(set in the .env file at {(tmp_path / '.env').resolve()})"
    )


def test_a_command_line_override_is_named_as_the_option() -> None:
    with pytest.raises(InvalidSetting, match=r"^--country: unknown country 'xx'"):
        resolve_settings({"country": "xx"})
    resolved, origin = resolve_settings({"country": "PE", "warehouse": None})
    assert resolved.country == "pe"
    assert origin.source("country") == "command line (--country)"
    assert origin.source("warehouse") == "default"


# ---------------------------------------------------------------- base URLs

_LOOPBACK = st.sampled_from(["127.0.0.1", "127.8.9.1", "localhost", "[::1]", "api.localhost"])
_REMOTE = st.sampled_from(
    ["sodtrack.example.com", "10.0.0.5", "192.168.1.20", "[2001:db8::1]", "integration.cl.x"]
)
_PORT = st.one_of(st.just(""), st.integers(1, 65535).map(lambda p: f":{p}"))
_PATH = st.sampled_from(["", "/", "/cl", "/{country}", "/proxy/sodtrack"])


def _url(**env: str) -> Settings:
    return Settings(base_url=env["url"], allow_insecure_http=env.get("insecure") == "1")


@_FUZZ
@given(host=_LOOPBACK, port=_PORT, path=_PATH, scheme=st.sampled_from(["http", "https", "HTTP"]))
def test_loopback_is_fine_over_either_scheme(host: str, port: str, path: str, scheme: str) -> None:
    target = check_base_url(_url(url=f"{scheme}://{host}{port}{path}"))
    assert target.host.startswith(host.strip("[]") if host != "[::1]" else "::1")


@_FUZZ
@given(host=_REMOTE, port=_PORT, path=_PATH)
def test_plain_http_to_a_remote_host_is_refused_unless_allowed(
    host: str, port: str, path: str
) -> None:
    url = f"http://{host}{port}{path}"
    with pytest.raises(InsecureTransport) as caught:
        check_base_url(_url(url=url))
    assert "SODTRACK_ALLOW_INSECURE_HTTP=true" in str(caught.value)
    assert check_base_url(_url(url=url, insecure="1")).country == "cl"
    assert check_base_url(_url(url=f"https://{host}{port}{path}")).country == "cl"


@_FUZZ
@given(
    url=st.one_of(
        st.builds(lambda h, p: f"{h}{p}", _LOOPBACK | _REMOTE, _PORT),  # no scheme
        st.sampled_from(["ftp://h", "file:///etc", "http://", "https://", "http://h:99999"]),
        st.sampled_from(["http://127.0.0.1/?x=1", "https://h/#f", "https://u:p@h"]),
        st.text(max_size=20).filter(lambda t: "://" not in t and t.strip() != ""),
    )
)
def test_a_url_without_scheme_or_host_is_unusable(url: str) -> None:
    with pytest.raises(UnusableBaseUrl) as caught:
        check_base_url(_url(url=url))
    assert str(caught.value).startswith("SODTRACK_BASE_URL: ")
    assert "\n" not in caught.value.line


def test_the_notice_says_where_the_url_came_from() -> None:
    resolved, origin = resolve_settings({"country": "pe"})
    notice = Preflight(resolved, origin, (check_base_url(resolved),)).notice()
    assert notice[0] == (
        "target: environment dev, country pe, host dev.integration.pe.sodtrack-shared."
        "sodtrack.com (https://dev.integration.pe.sodtrack-shared.sodtrack.com; built from "
        "SODTRACK_ENV (default) and the country)"
    )
    assert notice[1] == "credentials: client id 'sim-client' from default; secret from default"


def test_the_built_urls_are_https() -> None:
    for env in ("dev", "uat", "prod"):
        target = check_base_url(Settings(env=env, country="pe"))  # type: ignore[arg-type]
        assert target.base_url.startswith("https://")
        assert ".pe." in target.base_url


# ---------------------------------------------------------------- state and outputs


def test_state_urls(tmp_path: Path) -> None:
    with pytest.raises(InvalidSetting, match="is not a database URL"):
        check_state("not a url")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StateStoreUnavailable, match="cannot write into the folder of"):
        check_state(f"sqlite:///{blocker}/state.db")
    fresh = tmp_path / "new" / "deeper" / "state.db"
    check_state(f"sqlite:///{fresh}")
    assert not (tmp_path / "new").exists(), "nothing created by the check"
    with pytest.raises(StateStoreUnavailable) as caught:
        check_state("postgresql://etl:hunter2@127.0.0.1:1/sodtrack")
    assert "hunter2" not in str(caught.value)
    assert "etl:***@" in str(caught.value)


def test_output_folders(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(OutputNotWritable, match=r"^--out: cannot write into .*file/out"):
        check_output(blocker / "out", "--out")
    made = check_output(tmp_path / "a" / "b", "SODTRACK_OUTBOX")
    assert made == tmp_path / "a" / "b"
    assert list(made.iterdir()) == [], "the probe file is removed"
    assert (made.stat().st_mode & 0o777) == 0o700


def test_an_object_store_output_is_probed(monkeypatch: pytest.MonkeyPatch) -> None:
    """An ``s3://`` output is written to (a probe object), not assumed: nothing listens on the
    endpoint here, so it is refused naming the setting, without the credentials. (A working
    store is tested against the S3 server in tests/bulkload/run/test_object_storage.py.)"""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "probe-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "probe-secret-value")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")
    with pytest.raises(OutputNotWritable, match=r"^SODTRACK_OUTBOX: cannot write into s3://") as e:
        check_output(
            "s3://bucket/outbox", "SODTRACK_OUTBOX", endpoint_url=f"http://127.0.0.1:{port}"
        )
    assert "probe-secret-value" not in str(e.value)


def test_every_configuration_error_is_one_tree() -> None:
    from sodtrack.client import AuthError, TokenCountryMismatch

    for cls in (InvalidSetting, UnusableBaseUrl, InsecureTransport, StateStoreUnavailable):
        assert issubclass(cls, ConfigurationError)
    assert issubclass(TokenCountryMismatch, ConfigurationError)
    assert issubclass(TokenCountryMismatch, AuthError)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+psycopg://u:pw@h:5432/db", "postgresql+psycopg://u:***@h:5432/db"),
        ("sqlite:///data/state.db", "sqlite:///data/state.db"),
        ("https://h/x", "https://h/x"),
    ],
)
def test_mask_url(url: str, shown: str) -> None:
    assert mask_url(url) == shown


@pytest.mark.parametrize(
    ("warehouse", "reports"),
    [
        ("/srv/data/warehouse", "/srv/data/reports"),
        ("/srv/lake", "/srv/lake/reports"),
        ("s3://bucket/warehouse", "data/reports"),
        ("s3://bucket/lake/", "data/reports"),
    ],
)
def test_reports_and_docs_live_beside_a_local_warehouse_and_locally_for_a_remote_one(
    warehouse: str, reports: str
) -> None:
    settings = Settings(warehouse=warehouse)
    assert settings.data_dir("reports") == Path(reports)
    assert "s3:" not in str(settings.data_dir("docs"))
