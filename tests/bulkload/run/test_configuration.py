"""Configuration errors are configuration errors (issue #10, item 7).

A generated corpus of bad settings (every variable with wrong types and values, base URLs
without a scheme or host, with a wrong path, plain http to a remote host, unusable state
databases and output folders), each run through every command that must refuse it, in a
temporary working directory: exit 2, one line on stderr naming the variable, no traceback,
never "transient" or "re-run", and nothing written (the directory tree is unchanged and the
simulator holds no new record). Then the cases that need a live simulator: a 401 on the
token endpoint, an unwritable ``--out`` (a path under a regular file: tests run as root,
which ignores permission bits), a Chile-only server asked for Peru, a stray ``.env``.
"""

from __future__ import annotations

import os
import random
import string
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from sodtrack.cli import app
from sodtrack.contract.countries import COUNTRIES

from .conftest import Sim, clean_file

pytestmark = pytest.mark.slow

COMMANDS: dict[str, tuple[str, ...]] = {
    "load": ("load", "{file}"),
    "load-dry": ("load", "{file}", "--dry-run"),
    "extract": ("extract", "--dataset", "categories"),
    "validate": ("validate", "categories"),
    "cancel": ("cancel", "upl_cl_nothing"),
    "template": ("template", "{cwd}/template.xlsx", "--source", "api"),
    "watch": ("watch", "--once"),
}
VALUE_COMMANDS = tuple(COMMANDS)
"""A value that does not validate: every command refuses it."""
URL_COMMANDS = ("load", "load-dry", "extract", "cancel", "template")
"""Commands that talk to the API (cancel after reading the ledger: checked statically)."""
TOKEN_COMMANDS = ("load", "load-dry", "extract", "template")
STATE_COMMANDS = ("load", "load-dry", "extract", "cancel", "watch")


@dataclass(frozen=True, slots=True)
class Bad:
    """One wrong setting and what the one line must say."""

    variable: str
    value: str
    says: str
    commands: tuple[str, ...]

    @property
    def id(self) -> str:
        return f"{self.variable}={self.value!r}"


def _junk(rng: random.Random, alphabet: str = string.ascii_letters + "-_ ") -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 10))).strip() or "x"


def corpus(seed: int = 10) -> list[Bad]:
    """Seeded: a few values per variable and kind of mistake."""
    rng = random.Random(seed)
    bad: list[Bad] = []
    for value in ["staging", "production", "PROD ", "qa", *(_junk(rng) for _ in range(3))]:
        if value.strip().lower() in ("dev", "uat", "prod"):
            continue
        bad.append(Bad("SODTRACK_ENV", value, "is not one of dev, uat, prod", VALUE_COMMANDS))
    letters = string.ascii_lowercase
    for _ in range(4):
        code = "".join(rng.choice(letters) for _ in range(2))
        if code not in COUNTRIES:
            bad.append(Bad("SODTRACK_COUNTRY", code, "unknown country", VALUE_COMMANDS))
    for name, values, says in (
        ("SODTRACK_REQUEST_TIMEOUT_S", ["thirty", "30s", "nan", "inf"], "is not a number"),
        ("SODTRACK_REQUEST_TIMEOUT_S", ["0", "-5"], "must be greater than 0"),
        ("SODTRACK_MAX_CONCURRENCY", ["eight", "1.5"], "is not a whole number"),
        ("SODTRACK_MAX_CONCURRENCY", ["0", "-2"], "must be at least 1"),
        ("SODTRACK_RETRY_BUDGET_S", ["five minutes"], "is not a number"),
        ("SODTRACK_RETRY_BUDGET_S", ["-1"], "must be at least 0"),
        ("SODTRACK_RATE_LIMIT_PER_S", ["fast"], "is not a number"),
        ("SODTRACK_RATE_LIMIT_PER_S", ["0"], "must be greater than 0"),
        ("SODTRACK_ALLOW_INSECURE_HTTP", ["maybe", "2"], "is not true or false"),
    ):
        for value in [*values, _junk(rng, string.ascii_letters) + "!"][: len(values) + 1]:
            if says.startswith("must") and value.endswith("!"):
                continue
            bad.append(Bad(name, value, says, VALUE_COMMANDS))
    bad.append(Bad("SODTRACK_ENV_FILE", "no-such.env", "no such file", VALUE_COMMANDS))
    for value in ("127.0.0.1:8765", "sodtrack.example.com", "//127.0.0.1:8765"):
        bad.append(
            Bad("SODTRACK_BASE_URL", value, "does not start with http:// or https://", URL_COMMANDS)
        )
    bad.append(Bad("SODTRACK_BASE_URL", "ftp://127.0.0.1", "http:// or https://", URL_COMMANDS))
    bad.append(Bad("SODTRACK_BASE_URL", "http://", "has no host", URL_COMMANDS))
    bad.append(Bad("SODTRACK_BASE_URL", "https://h:port", "is not a URL", URL_COMMANDS))
    for host in ("sodtrack.example.com", "10.1.2.3:8765", "integration.cl.example.org"):
        bad.append(
            Bad(
                "SODTRACK_BASE_URL",
                f"http://{host}",
                "would send the client secret unencrypted",
                URL_COMMANDS,
            )
        )
    bad.append(Bad("SODTRACK_STATE_URL", "not a url", "is not a database URL", STATE_COMMANDS))
    bad.append(
        Bad(
            "SODTRACK_STATE_URL",
            "postgresql+psycopg://etl:hunter2@127.0.0.1:1/sodtrack",
            "cannot connect to postgresql+psycopg://etl:***@127.0.0.1:1/sodtrack",
            STATE_COMMANDS,
        )
    )
    bad.append(
        Bad(
            "SODTRACK_STATE_URL",
            "sqlite:///{cwd}/a-file/state.db",
            "cannot write into the folder of",
            STATE_COMMANDS,
        )
    )
    return bad


CASES = [(b, command) for b in corpus() for command in b.commands]


@pytest.fixture
def cwd(sim: Sim, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with an input file and a regular file ``a-file``."""
    folder = tmp_path / "cwd"
    folder.mkdir()
    (folder / "a-file").write_text("not a folder")
    (folder / "bookings.csv").write_text("external_reference\nR1\n")
    monkeypatch.chdir(folder)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    return folder


def tree(root: Path) -> dict[str, int]:
    """Every file and folder under ``root`` (and each file's size)."""
    return {
        str(p.relative_to(root)): (p.stat().st_size if p.is_file() else -1)
        for p in sorted(root.rglob("*"))
    }


def invoke(command: str, cwd: Path, env: dict[str, str] | None = None) -> Result:
    args = [a.format(file=cwd / "bookings.csv", cwd=cwd) for a in COMMANDS[command]]
    return CliRunner().invoke(app, args, env=env)


def assert_one_line(result: Result, *words: str) -> str:
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    line = lines[0]
    assert line.startswith("configuration error: "), line
    for word in words:
        assert word in line, f"{word!r} not in {line!r}"
    everything = result.output + result.stderr
    assert "Traceback" not in everything
    for word in ("transient", "re-run", "rerun"):
        assert word not in line.lower()
    return line


@pytest.mark.parametrize(("bad", "command"), CASES, ids=[f"{c}-{b.id}" for b, c in CASES])
def test_a_bad_setting_is_one_line_exit_2_and_nothing_written(
    sim: Sim, cwd: Path, bad: Bad, command: str
) -> None:
    value = bad.value.format(cwd=cwd)
    before = tree(sim.root)
    writes = sim.writes()
    result = invoke(command, cwd, {bad.variable: value})
    line = assert_one_line(result, bad.variable, bad.says)
    assert "hunter2" not in line
    assert tree(sim.root) == before, "nothing written"
    assert sim.writes() == writes


def test_the_corpus_covers_every_variable_and_kind() -> None:
    cases = corpus()
    assert len(CASES) > 150
    assert {b.variable for b in cases} >= {
        "SODTRACK_ENV",
        "SODTRACK_COUNTRY",
        "SODTRACK_REQUEST_TIMEOUT_S",
        "SODTRACK_MAX_CONCURRENCY",
        "SODTRACK_RETRY_BUDGET_S",
        "SODTRACK_RATE_LIMIT_PER_S",
        "SODTRACK_ALLOW_INSECURE_HTTP",
        "SODTRACK_BASE_URL",
        "SODTRACK_STATE_URL",
        "SODTRACK_ENV_FILE",
    }
    assert corpus() == cases, "seeded: the same corpus every run"


@pytest.mark.parametrize("command", TOKEN_COMMANDS)
@pytest.mark.parametrize("path", ["/wrong", "/api/v1", "/sodtrack"])
def test_a_base_path_that_is_not_the_api_names_the_token_endpoint_s_404(
    sim: Sim, cwd: Path, command: str, path: str
) -> None:
    before = tree(sim.root)
    result = invoke(command, cwd, {"SODTRACK_BASE_URL": sim.url + path})
    line = assert_one_line(
        result,
        f"SODTRACK_BASE_URL {sim.url}{path} does not serve the Sodtrack API",
        "(token endpoint answered 404",
    )
    assert "check the references" not in line
    assert ("leave /api/v1 out, the client adds it" in line) == (path == "/api/v1")
    assert tree(sim.root) == before
    assert sim.writes() == {}


@pytest.mark.parametrize("command", TOKEN_COMMANDS)
def test_rejected_credentials_are_named_with_the_host(sim: Sim, cwd: Path, command: str) -> None:
    result = invoke(command, cwd, {"SODTRACK_CLIENT_SECRET": "wrong-secret"})
    host = sim.url.removeprefix("http://")
    line = assert_one_line(
        result, f"SODTRACK_CLIENT_ID/SODTRACK_CLIENT_SECRET rejected by {host}", "401"
    )
    assert "wrong-secret" not in result.output + result.stderr
    assert "environment variable SODTRACK_CLIENT_SECRET" in line
    assert sim.writes() == {}


def test_an_unreachable_host_is_a_configuration_error(cwd: Path) -> None:
    import socket

    with socket.socket() as s:  # a loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = invoke("extract", cwd, {"SODTRACK_BASE_URL": f"http://127.0.0.1:{port}"})
    assert_one_line(result, "SODTRACK_BASE_URL", f"cannot connect to 127.0.0.1:{port}")


def test_plain_http_to_a_remote_host_is_allowed_only_when_said(sim: Sim, cwd: Path) -> None:
    """With the setting, the remote host is tried (and here cannot be reached: exit 2 for
    that reason instead); without it nothing is sent."""
    env = {"SODTRACK_BASE_URL": "http://sodtrack.invalid", "SODTRACK_ALLOW_INSECURE_HTTP": "1"}
    result = invoke("extract", cwd, env)
    line = assert_one_line(result, "SODTRACK_BASE_URL")
    assert "unencrypted" not in line
    assert "cannot connect to sodtrack.invalid" in line


def test_an_unwritable_out_folder_stops_the_load_before_any_booking(sim: Sim, cwd: Path) -> None:
    path = clean_file(sim.root / "inbox" / "bookings.xlsx", rows=6, projects=1)
    blocker = cwd / "a-file"
    before = tree(sim.root)
    seeded = set(sim.bookings())
    result = CliRunner().invoke(app, ["load", str(path), "--out", str(blocker / "results")])
    assert_one_line(result, "--out", f"cannot write into {blocker / 'results'}")
    assert sim.writes() == {}, "no booking, project or payment created"
    assert set(sim.bookings()) == seeded
    assert tree(sim.root) == before
    # The same file with a usable folder loads: the refusal was about the folder only.
    ok = CliRunner().invoke(app, ["load", str(path), "--out", str(cwd / "results")])
    assert ok.exit_code == 0, ok.output
    assert len(set(sim.bookings()) - seeded) == 6


def test_every_command_says_what_it_talks_to(sim: Sim, cwd: Path) -> None:
    host = sim.url.removeprefix("http://")
    result = invoke("template", cwd)
    assert result.exit_code == 0, result.output
    err = result.stderr
    assert f"target: environment dev, country cl, host {host}" in err
    assert f"({sim.url}; SODTRACK_BASE_URL from environment variable SODTRACK_BASE_URL)" in err
    assert (
        "credentials: client id 'sim-client' from environment variable SODTRACK_CLIENT_ID; "
        "secret from environment variable SODTRACK_CLIENT_SECRET"
    ) in err
    assert "sim-secret" not in result.output + err
    assert ".env" not in err


def test_a_chile_only_server_asked_for_peru_publishes_nothing(sim: Sim, cwd: Path) -> None:
    """A base URL that does not vary by country: ``extract --country pe`` reaches Chile."""
    host = sim.url.removeprefix("http://")
    result = invoke_args(["extract", "--country", "pe"])
    assert_one_line(result, f"the server at {host} issued a token for 'cl', not 'pe'")
    warehouse = sim.root / "warehouse"
    assert not warehouse.exists() or not any(warehouse.rglob("*.parquet"))
    assert sim.writes() == {}


def invoke_args(args: list[str], env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(app, args, env=env)


def _run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sodtrack.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_stray_env_file_is_named_and_can_be_switched_off(sim: Sim, cwd: Path) -> None:
    """In a real process: the ``.env`` of the working directory supplies the client id and
    secret; the command names the file and the variables it took, never the secret; with
    ``SODTRACK_ENV_FILE=none`` it is not read (and its wrong secret no longer matters)."""
    (cwd / ".env").write_text(
        "SODTRACK_CLIENT_ID=sim-client\nSODTRACK_CLIENT_SECRET=from-the-stray-file\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SODTRACK_CLIENT_")}
    env.pop("PREFECT_API_URL", None)
    read = _run(["template", "t.xlsx", "--source", "api"], cwd, env)
    assert read.returncode == 2, read.stderr
    lines = [line for line in read.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, read.stderr
    assert "Traceback" not in read.stderr
    host = sim.url.removeprefix("http://")
    assert f"rejected by {host}" in lines[0]
    assert f".env file at {cwd / '.env'}" in lines[0]
    assert "from-the-stray-file" not in read.stderr + read.stdout

    (cwd / ".env").write_text("SODTRACK_CLIENT_ID=sim-client\nSODTRACK_CLIENT_SECRET=sim-secret\n")
    ok = _run(["template", "t.xlsx", "--source", "api"], cwd, env)
    assert ok.returncode == 0, ok.stderr
    assert (
        f"settings: read .env file at {cwd / '.env'} (SODTRACK_CLIENT_ID, SODTRACK_CLIENT_SECRET)"
    ) in ok.stderr
    assert f"secret from .env file at {cwd / '.env'}" in ok.stderr

    off = _run(["template", "t.xlsx", "--source", "api"], cwd, {**env, "SODTRACK_ENV_FILE": "none"})
    assert ".env file" not in off.stderr
    assert "client id 'sim-client' from default" in off.stderr
