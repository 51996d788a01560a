"""Settings: the only module that reads the settings file and ``NEWSFOLD_*`` variables.

Precedence, highest first: explicit overrides (CLI options) → environment
(``NEWSFOLD_DATABASE_URL``, ``NEWSFOLD_FETCH__TIMEOUT_S`` for nested keys) →
the TOML file (``--config PATH``, ``NEWSFOLD_CONFIG``, or ``./config/newsfold.toml``
when present) → defaults. Unknown keys are errors: a typo must not be ignored.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from newsfold.errors import ConfigError

DEFAULT_CONFIG_PATHS = (Path("config/newsfold.toml"), Path("newsfold.toml"))
DEFAULT_USER_AGENT = "newsfold/0.1 (+https://github.com/newsfold/newsfold; feed deduplicator)"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class FetchSettings(_Section):
    connect_timeout_s: float = Field(10.0, gt=0)
    read_timeout_s: float = Field(20.0, gt=0)
    total_timeout_s: float = Field(60.0, gt=0)  # wall clock for one fetch, slowloris included
    max_bytes: int = Field(10 * 1024 * 1024, gt=0)  # compressed and decompressed
    max_redirects: int = Field(5, ge=0)
    max_entries: int = Field(500, gt=0)  # per fetch, newest first
    concurrency: int = Field(16, gt=0)
    per_host: int = Field(2, gt=0)
    min_host_delay_s: float = Field(0.5, ge=0)
    user_agent: str = DEFAULT_USER_AGENT


class ScheduleSettings(_Section):
    default_interval_s: int = Field(1800, gt=0)
    min_interval_s: int = Field(300, gt=0)
    max_interval_s: int = Field(86400, gt=0)
    backoff_base_s: int = Field(300, gt=0)
    backoff_max_s: int = Field(86400, gt=0)
    jitter: float = Field(0.1, ge=0, le=0.5)  # ± share of the interval
    flag_after_errors: int = Field(10, gt=0)  # shown as "failing" past this many in a row


class NormaliseSettings(_Section):
    extra_tracking_params: tuple[str, ...] = ()
    future_tolerance_s: int = Field(3600, ge=0)
    detect_language: bool = True
    # Learned per-source boilerplate: a line seen in at least this share of a
    # source's recent articles (and at least ``boilerplate_min_docs`` of them) is removed.
    boilerplate_min_share: float = Field(0.5, gt=0, le=1)
    boilerplate_min_docs: int = Field(5, gt=1)
    boilerplate_window: int = Field(50, gt=1)
    # Fewer letters than this and the language is left unknown (too short to tell).
    language_min_chars: int = Field(40, ge=1)


class DedupSettings(_Section):
    window_days: float = Field(7.0, gt=0)  # clustering window and LSH rebuild window
    num_perm: int = Field(128, ge=16, le=1024)
    shingle_size: int = Field(3, ge=1, le=8)
    copy_threshold: float = Field(0.5, gt=0, le=1)  # Jaccard for near-duplicate copies
    containment_threshold: float = Field(0.8, gt=0, le=1)  # short summary of a long copy
    # Containment is only trusted when the shorter text has this many shingles.
    min_shingles: int = Field(10, ge=1)
    # LSH bands/rows come from datasketch's optimiser at ``copy_threshold``;
    # every candidate is verified, so a missed candidate costs more than a spare one.
    lsh_false_negative_weight: float = Field(0.8, gt=0, lt=1)
    story_threshold: float = Field(0.25, gt=0, le=1)  # chosen by 5-fold topic CV on ECB+ dev
    story_merge_threshold: float = Field(0.5, gt=0, le=1)  # both links to bridge two stories
    # Share of an article's IDF-weighted names (people, places, numbers) its story must
    # also name: two events of one kind share vocabulary, not specifics. 0 turns it off.
    story_name_threshold: float = Field(0.3, ge=0, le=1)
    story_window_days: float = Field(3.0, gt=0)  # a story closes after this long without news
    story_terms: int = Field(64, ge=8, le=4096)  # terms kept per article sketch
    story_title_boost: float = Field(2.0, ge=1)
    story_name_boost: float = Field(2.0, ge=1)
    same_language_only: bool = True


class PipelineSettings(_Section):
    # Processes for parse + normalise + sketch; 0 = one per CPU, 1 = in-process only.
    workers: int = Field(0, ge=0, le=64)
    # A poll with fewer feeds to process than this stays in-process (no pool start-up cost).
    pool_min_feeds: int = Field(8, ge=1)
    # Entries the database saw within this many days are not re-sketched on a re-poll.
    known_entries_days: int = Field(30, ge=1)


class FeedConfig(_Section):
    url: str
    title: str | None = None
    interval_s: int | None = Field(None, gt=0)
    full_text: bool = False
    tags: tuple[str, ...] = ()

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {value!r}")
        return value.strip()


class HttpSettings(_Section):
    listen: str | None = None  # "127.0.0.1:8080" to serve /healthz, /readyz, /metrics


class ApiSettings(_Section):
    """``newsfold serve``: the JSON API, the output feeds and the web page."""

    token: str | None = None  # when set, /api/* wants "Authorization: Bearer <token>"
    host: str = "127.0.0.1"  # loopback unless asked: the API has no per-user access control
    port: int = Field(8000, ge=0, le=65535)
    page_size: int = Field(50, ge=1, le=500)  # default page and output-feed length


class DaemonSettings(_Section):
    tick_s: float = Field(5.0, gt=0)  # how often the daemon looks for due feeds
    # A claimed feed is leased for this long, renewed every third of it while it is being
    # worked on: a dead worker's feeds are claimed by another within about this long.
    lease_s: float = Field(60.0, gt=0)
    # On SIGTERM: how long in-flight fetches may run on before they are abandoned.
    grace_s: float = Field(20.0, ge=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="NEWSFOLD_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    database_url: str = "sqlite:///newsfold.db"
    allow_private_networks: bool = False
    log_level: str = "INFO"
    log_format: str = "auto"  # auto | json | console
    fetch: FetchSettings = FetchSettings()
    schedule: ScheduleSettings = ScheduleSettings()
    normalise: NormaliseSettings = NormaliseSettings()
    dedup: DedupSettings = DedupSettings()
    pipeline: PipelineSettings = PipelineSettings()
    http: HttpSettings = HttpSettings()
    daemon: DaemonSettings = DaemonSettings()
    api: ApiSettings = ApiSettings()
    feeds: tuple[FeedConfig, ...] = ()

    # The TOML file in use (set by ``load_settings``); not a setting itself.
    _toml_data: ClassVar[dict[str, Any]] = {}

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("database_url must start with sqlite:// or postgresql+psycopg://")
        return value

    @field_validator("log_level")
    @classmethod
    def _level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError(f"unknown log level {value!r}")
        return level

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _TomlSource(settings_cls, cls._toml_data))


class _TomlSource(PydanticBaseSettingsSource):
    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(self._data)


def find_config(path: Path | str | None) -> Path | None:
    if path is not None:
        return Path(path)
    env = os.environ.get("NEWSFOLD_CONFIG")
    if env:
        return Path(env)
    return next((p for p in DEFAULT_CONFIG_PATHS if p.is_file()), None)


def load_settings(
    path: Path | str | None = None, *, read_file: bool = True, **overrides: Any
) -> Settings:
    """Read settings; every problem becomes one ``ConfigError`` naming the key.

    ``read_file=False`` ignores any settings file (the demo uses its own feeds).
    """
    config_path = find_config(path) if read_file else None
    data: dict[str, Any] = {}
    if config_path is not None:
        try:
            data = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except FileNotFoundError as e:
            raise ConfigError(f"config file not found: {config_path}") from e
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"cannot read config file {config_path}: {e}") from e
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"invalid TOML in {config_path}: {e}") from e
    Settings._toml_data = data
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as e:
        raise ConfigError(_describe(e, config_path)) from e
    finally:
        Settings._toml_data = {}


def _describe(error: ValidationError, path: Path | None) -> str:
    where = f" in {path}" if path else ""
    problems = []
    for item in error.errors():
        key = ".".join(str(p) for p in item["loc"]) or "(root)"
        msg = "unknown key" if item["type"] == "extra_forbidden" else item["msg"]
        problems.append(f"{key}: {msg}")
    return f"invalid settings{where}: " + "; ".join(problems)
