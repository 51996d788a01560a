# Names vulture cannot see used, for `vulture src scripts/vulture_whitelist.py --min-confidence 60`.
# Each is called by a framework, a protocol or a client, never by name in src.
# ruff: noqa
# fmt: off

# FastAPI: exception handlers and routes, registered by decorator; response model fields.
_not_found
_unavailable
_bad_request
get_cluster
json_feed
healthz
next_offset
first_published  # cluster span fields of the API responses
last_published

# typer: commands and the root callback, registered by decorator.
_root
clusters_list
clusters_show
articles_list
articles_show
syndicate_cmd
list_
import_
db_upgrade

# pydantic / pydantic-settings: model configuration, validators, the settings-source protocol.
model_config
_http_url
_known_scheme
_blank_is_unset
_feed_token_is_its_own
settings_customise_sources
dotenv_settings
file_secret_settings
get_field_value

# http.server handlers (demo server, health probe).
extensions_map
log_message
do_GET
daemon_threads

# Context-manager protocol parameters; httpcore's network-backend interface.
exc_type
tb
connect_unix_socket

# SQLAlchemy: event listeners, DBAPI attributes, TypeDecorator hooks, mapped columns.
_on_connect
_on_begin
isolation_level
impl
cache_ok
process_bind_param
process_result_value
joined_at
merged_at

# Alembic migration module interface.
down_revision
branch_labels
depends_on
downgrade

# Fields of records: data a record carries for its readers (tests, tools, clients).
requested_url
total_entries
feed_site_url
documents

# Service API for tools: the benchmarks time a start-up rebuild with it.
rebuild_index

# Read by the front page template (newsfold/api/templates/index.html); logging.Filter hook.
everything
first
last
link
filter
