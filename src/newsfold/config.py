"""Settings: the only module that reads the settings file and ``NEWSFOLD_*`` variables.

Precedence, highest first: explicit overrides (CLI options) → environment
(``NEWSFOLD_DATABASE_URL``, ``NEWSFOLD_FETCH__READ_TIMEOUT_S`` for nested keys) →
the TOML file (``--config PATH``, ``NEWSFOLD_CONFIG``, or ``./config/newsfold.toml``
when present) → defaults. Unknown keys are errors, in the file and in the
environment alike: a typo must not be ignored.
"""

from __future__ import annotations

import difflib
import hashlib
import os
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from newsfold.errors import ConfigError

if TYPE_CHECKING:
    from pydantic.fields import FieldInfo

DEFAULT_CONFIG_PATHS = (Path("config/newsfold.toml"), Path("newsfold.toml"))
DEFAULT_USER_AGENT = "newsfold/0.1 (+https://github.com/newsfold/newsfold; feed deduplicator)"
ENV_PREFIX = "NEWSFOLD_"
# Variables with the prefix that are not settings: read by this module, the test suite,
# the benchmarks and docker/compose.yaml.
OTHER_ENV_VARS = frozenset(
    {
        "NEWSFOLD_CONFIG",
        "NEWSFOLD_TEST_POSTGRES_URL",
        "NEWSFOLD_BENCH_POSTGRES_URL",
        "NEWSFOLD_HTTP_PORTS",
        "NEWSFOLD_API_PORT",
        "NEWSFOLD_API_TOKEN",
        "NEWSFOLD_API_FEED_TOKEN",
    }
)
# The settings file of the ``load_settings`` call running in this thread; a context
# variable, so concurrent loads (the daemon's reload, a test) never see each other's file.
_toml_file: ContextVar[Path | None] = ContextVar("newsfold_toml_file", default=None)


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
    # Least pair score to link two reports (and a report to a story). 0.30 with the
    # length scale below: on one scale for feed snippets and full texts (see the README).
    story_threshold: float = Field(0.3, gt=0, le=1)
    story_merge_threshold: float = Field(0.5, gt=0, le=1)  # both links to bridge two stories
    # Share of an article's IDF-weighted names (people, places, numbers) its story must
    # also name: two events of one kind share vocabulary, not specifics. 0 turns it off.
    story_name_threshold: float = Field(0.3, ge=0, le=1)
    # Least cosine to join a story whose every member came from the article's own feed: an
    # outlet seldom reports one event twice (an update is a revision), while its series,
    # templates and running topics make its items alike.
    story_same_feed_threshold: float = Field(0.4, gt=0, le=1)
    story_window_days: float = Field(3.0, gt=0)  # a story closes after this long without news
    # Order-free stories: after each batch, the touched components of the candidate graph
    # are clustered again (see dedup.stories.partition); "off" keeps the one-pass stories.
    # Complete-link over document pairs: 0.860 ARI on ECB+ dev against 0.824 one-pass.
    story_linkage: Literal["average", "complete", "off"] = "complete"
    story_link_threshold: float = Field(0.1, gt=0, le=1)  # least linkage to join two clusters
    # Least share of one document's names the other names, for a pair to be joinable.
    story_link_name_threshold: float = Field(0.0, ge=0, le=1)
    # A short report inside a long one scores lower by cosine alone (its k terms among the
    # other's n give about sqrt(k/n)): a pair's score is its cosine times the ratio of their
    # term counts, capped, to this power. Measured per length ratio on three labelled sets
    # (python -m benchmarks.calibration); 0 turns it off.
    story_length_exponent: float = Field(0.3, ge=0, le=1)
    story_length_cap: float = Field(4.0, ge=1)
    # A report of fewer terms than this (a headline, a link post) shares none with many
    # reports of its own event: its low scores do not keep a story apart, its high ones
    # still join (same-event pairs with so short a document score a median cosine of
    # 0.11-0.13 on the labelled sets, whatever the event). 0 turns it off.
    story_short_terms: int = Field(12, ge=0, le=4096)
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


class RetentionSettings(_Section):
    """``newsfold prune`` (the daemon runs it daily): what the database keeps."""

    # Articles whose story time is older than this many days go, unless their story
    # is still open (a member inside ``dedup.story_window_days``). None keeps everything.
    days: float | None = Field(None, gt=0)
    fetch_log_per_feed: int = Field(100, ge=1)  # newest fetch-log lines kept per feed


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


class AlertRule(_Section):
    """One ``[[alerts]]`` table: a webhook called when a story first reaches ``min_sources``
    distinct outlets (and matches ``query``, when given)."""

    url: str
    min_sources: int = Field(2, ge=1)
    query: str | None = None  # a search expression (README "Search") the story must match
    secret: str | None = None  # signs the body: X-Newsfold-Signature: sha256=<hex HMAC>

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value.strip())
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an http(s) URL: {value!r}")
        return value.strip()

    @field_validator("query")
    @classmethod
    def _query(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        from newsfold.search_query import QueryError, parse

        try:
            parse(value)
        except QueryError as e:
            raise ValueError(str(e)) from e
        return value.strip()

    @property
    def key(self) -> str:
        """The rule's identity in the outbox: a changed url, threshold or query is a new rule."""
        raw = f"{self.url}\n{self.min_sources}\n{self.query or ''}"
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


class AlertingSettings(_Section):
    """How alerts are delivered (the rules themselves are ``[[alerts]]`` tables)."""

    # ``newsfold fetch`` delivers what its poll raised for at most this long before exiting.
    deliver_within_s: float = Field(10.0, ge=0)
    request_timeout_s: float = Field(5.0, gt=0)
    # A claimed delivery that was neither done nor failed in this long (a crashed worker)
    # is claimed again by the next fetch or daemon.
    lease_s: float = Field(60.0, gt=0)
    retry_base_s: float = Field(30.0, gt=0)  # back-off after a failure: base × 2^attempts
    retry_max_s: float = Field(3600.0, gt=0)
    max_attempts: int = Field(20, ge=1)


class HttpSettings(_Section):
    listen: str | None = None  # "127.0.0.1:8080" to serve /healthz, /readyz, /metrics


class ApiSettings(_Section):
    """``newsfold serve``: the JSON API, the output feeds and the web page."""

    # When set, every route but /healthz wants it: "Authorization: Bearer <token>", or
    # HTTP basic auth with the token as password (browsers, feed readers).
    token: str | None = None
    # Read-only and for /feeds/* only, given as ?token=... by readers that send no header.
    feed_token: str | None = None
    host: str = "127.0.0.1"  # loopback unless asked: the API has no per-user access control
    port: int = Field(8000, ge=0, le=65535)
    page_size: int = Field(50, ge=1, le=500)  # default page and output-feed length
    # One log line a request (method, path with any token masked, status, ms): ``serve``.
    access_log: bool = True

    @field_validator("token", "feed_token")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        # Compose passes an unset ${NEWSFOLD_API_TOKEN:-} as "": that means no token.
        return (value or "").strip() or None

    @model_validator(mode="after")
    def _feed_token_is_its_own(self) -> ApiSettings:
        if self.feed_token is not None and self.token is None:
            raise ValueError("api.feed_token needs api.token (without it everything is open)")
        if self.feed_token is not None and self.feed_token == self.token:
            # The feed token goes into URLs (and so into histories and proxy logs).
            raise ValueError("api.feed_token must differ from api.token")
        return self


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
    retention: RetentionSettings = RetentionSettings()
    feeds: tuple[FeedConfig, ...] = ()
    alerts: tuple[AlertRule, ...] = ()
    alerting: AlertingSettings = AlertingSettings()

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        return normalise_database_url(value)

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
        return (
            init_settings,
            env_settings,
            _ComposeTokens(settings_cls),
            TomlConfigSettingsSource(settings_cls, toml_file=_toml_file.get()),
        )


# The Compose file's token variables, read by newsfold itself too: set in a shell for a
# ``newsfold serve``, they must not leave the API open without a word.
_COMPOSE_TOKENS = {"NEWSFOLD_API_TOKEN": "token", "NEWSFOLD_API_FEED_TOKEN": "feed_token"}


class _ComposeTokens(PydanticBaseSettingsSource):
    """``api.token`` and ``api.feed_token`` from ``NEWSFOLD_API_TOKEN`` and
    ``NEWSFOLD_API_FEED_TOKEN``, under the settings' own variables (``NEWSFOLD_API__TOKEN``)."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        api = {
            key: value
            for var, key in _COMPOSE_TOKENS.items()
            if (value := os.environ.get(var, "").strip())
        }
        return {"api": api} if api else {}


def normalise_database_url(value: str) -> str:
    """Check a database URL; ``postgresql://`` and ``postgres://`` mean psycopg 3."""
    try:
        url = make_url(value.strip())
    except ArgumentError as e:
        raise ValueError(f"not a database URL: {e}") from e
    backend, _, driver = url.drivername.partition("+")
    if backend in ("postgresql", "postgres"):
        # Both spellings are common (libpq, Heroku); psycopg 3 is the driver installed.
        url = url.set(drivername=f"postgresql+{driver or 'psycopg'}")
    elif backend != "sqlite":
        raise ValueError("database_url must be sqlite:///PATH or postgresql://user:pass@host/db")
    return url.render_as_string(hide_password=False)


def redact_url(url: str | URL) -> str:
    """A database URL with its password hidden, for logs and error messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "(unparsable database URL)"


def sqlite_path(url: str | URL) -> Path | None:
    """The file of a SQLite URL; ``None`` for memory databases and other backends."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return None
    if parsed.get_backend_name() != "sqlite" or not parsed.database:
        return None
    if parsed.database == ":memory:" or parsed.database.startswith("file:"):
        return None
    return Path(parsed.database).expanduser()


def unknown_env_vars(environ: dict[str, str] | os._Environ[str] | None = None) -> list[str]:
    """``NEWSFOLD_*`` variables that name no setting, each with a suggestion when close."""
    environ = os.environ if environ is None else environ
    top = Settings.model_fields
    names = [f"{ENV_PREFIX}{n.upper()}" for n in top]
    for name, field in top.items():
        sub = getattr(field.annotation, "model_fields", None)
        if sub:
            names += [f"{ENV_PREFIX}{name.upper()}__{k.upper()}" for k in sub]
    known = set(names) | OTHER_ENV_VARS
    problems = []
    for key in sorted(environ):
        upper = key.upper()
        if not upper.startswith(ENV_PREFIX) or upper in known:
            continue
        close = difflib.get_close_matches(upper, names, n=1, cutoff=0.8)
        hint = f" (did you mean {close[0]}?)" if close else ""
        problems.append(f"{key}{hint}")
    return problems


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
    unknown = unknown_env_vars()
    if unknown:
        raise ConfigError("unknown setting in the environment: " + ", ".join(unknown))
    config_path = find_config(path) if read_file else None
    if config_path is not None and not config_path.is_file():
        what = "is not a file" if config_path.exists() else "not found"
        raise ConfigError(f"config file {what}: {config_path}")
    token = _toml_file.set(config_path)
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as e:
        raise ConfigError(_describe(e, config_path, overrides)) from e
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read config file {config_path}: {e}") from e
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"invalid TOML in {config_path}: {e}") from e
    finally:
        _toml_file.reset(token)


def _describe(error: ValidationError, path: Path | None, overrides: dict[str, Any]) -> str:
    """One line naming each bad key where it was set: an environment variable wins over
    the file (the precedence above), so a bad value there must not be blamed on the file."""
    env = {k.upper(): k for k in os.environ}
    from_file = []
    from_env = []
    for item in error.errors():
        loc = [str(p) for p in item["loc"]]
        key = ".".join(loc) or "(root)"
        msg = "unknown key" if item["type"] == "extra_forbidden" else item["msg"]
        from_cli = bool(loc) and overrides.get(loc[0]) is not None
        var = None if from_cli else _env_var_for(loc, env)
        if var is not None:
            from_env.append(f"environment variable {var} ({key}): {msg}")
        else:
            from_file.append(f"{key}: {msg}")
    chunks = []
    if from_env:
        chunks.append("; ".join(from_env))
    if from_file:
        chunks.append((f"in {path}: " if path and from_env else "") + "; ".join(from_file))
    where = f" in {path}" if path and from_file and not from_env else ""
    return f"invalid settings{where}: " + "; ".join(chunks)


def _env_var_for(loc: list[str], env: dict[str, str]) -> str | None:
    """The variable (as spelled in the environment) that set the value at ``loc``, if any:
    ``NEWSFOLD_FETCH__READ_TIMEOUT_S`` for one key, ``NEWSFOLD_FETCH`` for a whole section."""
    for depth in range(len(loc), 0, -1):
        name = ENV_PREFIX + "__".join(part.upper() for part in loc[:depth])
        if name in env:
            return env[name]
    return None
