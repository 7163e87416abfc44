"""One typed settings object, read from the environment.

The original's names are kept (``DATABASE_*``, ``RABBITMQ_*``, ``AMQP_URL``, ``SLACK_*``,
``STEPFLOW_WORKFLOW_DEFINITIONS``, ``STEPFLOW_WORKERS_WORK_DIRECTORY``); every new name starts
with ``STEPFLOW_``. Defaults match the development services (PostgreSQL on 127.0.0.1 with trust
auth, RabbitMQ guest/guest), so StepFlow starts with no configuration at all.

An unparsable value raises :class:`SettingsError` whose message is one line naming the setting;
the command line prints it and exits.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class SettingsError(ValueError):
    """A setting is missing, unparsable or inconsistent. ``str(error)`` is one line."""


@dataclass(frozen=True)
class User:
    """A user allowed to open a session (``POST /api/sessions``)."""

    email: str
    password_hash: str = field(repr=False)
    groups: tuple[str, ...]


@dataclass(frozen=True)
class StaticToken:
    """A long-lived token, stored as its SHA-256 hex digest, never in clear."""

    name: str
    sha256: str = field(repr=False)
    groups: tuple[str, ...]


@dataclass(frozen=True)
class Settings:
    database_url: str = field(repr=False)
    database_pool_size: int
    amqp_url: str = field(repr=False)
    actors_amqp_url: str = field(repr=False)
    port: int
    api_prefix: str
    exposed_domain_name: str
    workflow_definitions: tuple[Path, ...]
    workers_work_directory: str
    workflow_schema: Path | None
    auth_anonymous: bool
    auth_anonymous_groups: tuple[str, ...]
    auth_users: Mapping[str, User] = field(repr=False)
    auth_tokens: Mapping[str, StaticToken] = field(repr=False)
    session_secret: str | None = field(repr=False)
    session_ttl: int
    auth_jwt_secret: str | None = field(repr=False)
    auth_jwt_public_key: Any = field(repr=False)
    """A ``cryptography`` public key object (read from PEM text, a PEM file or a certificate), or None."""
    auth_jwt_algorithms: tuple[str, ...]
    auth_jwt_groups_claim: str
    auth_jwt_audience: tuple[str, ...]
    auth_jwt_issuer: str | None
    authorize: Mapping[str, tuple[str, ...]]
    """Route checks per action key (api.md §2.2): the defaults with ``STEPFLOW_AUTHORIZE`` merged over them.
    A key that is not listed gets :data:`DEFAULT_CHECKS`."""
    default_rights: tuple[Mapping[str, Any], ...]
    rights_overrides: Mapping[str, tuple[Mapping[str, Any], ...]]
    slack_api_url: str
    slack_api_token: str | None = field(repr=False)
    slack_api_channel: str | None
    webhook_signing_secret: str | None = field(repr=False)
    notification_credentials: Mapping[str, str] = field(repr=False)
    """``Authorization`` header values of notification hooks, by the name a definition gives."""
    notifier_max_retries: int
    notifier_timeout: float
    dispatch_resend_after: float
    outbox_resend_after: float
    clock_interval: float
    workers_status_interval: float
    busy_resend_max: int
    busy_resend_backoff: float
    """Seconds before the first re-send of an order a busy SDK worker refused; doubles each time."""
    job_lease: float
    job_leases: Mapping[str, float]
    """Seconds of silence after which a running job is given up (ours.md §3.11), per queue name."""
    websocket_heartbeat: float
    """Seconds between two ``{"event":"heartbeat"}`` frames on a notifications websocket."""
    log_level: str
    metrics_enabled: bool
    metrics_basic_auth: tuple[str, str] | None = field(repr=False)
    """``(user, password)`` a scraper must send to ``/metrics``; None: no authentication."""
    metrics_scale: str
    """The unit of the metrics window (``year`` … ``microsecond``); the window starts at ``now + delta·scale``."""
    metrics_delta: int
    prometheus_multiproc_dir: Path | None
    """Where every process of a host writes its metric values (prometheus-client multiprocess mode)."""

    @property
    def sessions_path(self) -> str:
        """``POST`` path of the session route: ``dirname(prefix)/sessions`` (SDK workers call it)."""
        parent = self.api_prefix.rstrip("/").rsplit("/", 1)[0]
        return f"{parent}/sessions"


def _env(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name)
    return value if value not in (None, "") else None


def _parse(name: str, raw: str, parse: Callable[[str], T]) -> T:
    try:
        return parse(raw)
    except (ValueError, TypeError, json.JSONDecodeError) as error:
        raise SettingsError(f"{name}: cannot parse {raw!r} ({error})") from None


def _optional(environ: Mapping[str, str], name: str, parse: Callable[[str], T]) -> T | None:
    raw = _env(environ, name)
    return None if raw is None else _parse(name, raw, parse)


def _bool(raw: str) -> bool:
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ValueError("expected true or false")


def _positive_int(raw: str) -> int:
    value = int(raw)
    if value <= 0:
        raise ValueError("must be positive")
    return value


def _positive_float(raw: str) -> float:
    value = float(raw)
    if value <= 0:
        raise ValueError("must be positive")
    return value


def _groups(raw: str) -> tuple[str, ...]:
    return tuple(group.strip() for group in raw.split(",") if group.strip())


def _json_object(raw: str) -> dict[str, Any]:
    value = json.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


def _credential_entries(raw: str, kind: str, secret: str) -> dict[str, tuple[str, tuple[str, ...]]]:
    """``{name: {secret: str, "groups": [str]}}`` → ``{name: (secret, groups)}``."""
    entries = {}
    for name, entry in _json_object(raw).items():
        if not isinstance(entry, dict) or not isinstance(entry.get(secret), str):
            raise ValueError(f"{kind} {name!r} needs a {secret}")
        groups = entry.get("groups", [])
        if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
            raise ValueError(f"{kind} {name!r}: groups must be a list of strings")
        entries[name] = (entry[secret], tuple(groups))
    return entries


def _users(raw: str) -> dict[str, User]:
    return {
        email: User(email=email, password_hash=password_hash, groups=groups)
        for email, (password_hash, groups) in _credential_entries(raw, "user", "password_hash").items()
    }


def _tokens(raw: str) -> dict[str, StaticToken]:
    return {
        name: StaticToken(name=name, sha256=digest.lower(), groups=groups)
        for name, (digest, groups) in _credential_entries(raw, "token", "sha256").items()
    }


def _rights(value: Any) -> tuple[Mapping[str, Any], ...]:
    """A rights array: ``[{"action": str, "groups": [str]}]``."""
    if not isinstance(value, list):
        raise ValueError("expected a JSON array of rights")
    for right in value:
        if (
            not isinstance(right, dict)
            or not isinstance(right.get("action"), str)
            or not isinstance(right.get("groups"), list)
            or not all(isinstance(group, str) for group in right["groups"])
        ):
            raise ValueError('each right needs an "action" string and a "groups" list of strings')
    return tuple(value)


def _rights_array(raw: str) -> tuple[Mapping[str, Any], ...]:
    return _rights(json.loads(raw))


def _rights_overrides(raw: str) -> dict[str, tuple[Mapping[str, Any], ...]]:
    return {identifier: _rights(rights) for identifier, rights in _json_object(raw).items()}


DEFAULT_CHECKS: tuple[str, ...] = ("user_check",)
"""The route checks of an action key neither the defaults nor ``STEPFLOW_AUTHORIZE`` name."""

DEFAULT_AUTHORIZE: Mapping[str, tuple[str, ...]] = {
    **{
        key: ("user_check", "right_administrator_check")
        for key in ("put_workers", "patch_workers", "post_definitions", "post_worker_definitions")
    },
    # The API docs page and the original's /swagger redirect to it are public.
    "get_docs": (),
    "get_swagger": (),
}
"""Action keys whose default checks differ from :data:`DEFAULT_CHECKS` (ours.md §3.1)."""

_ACTION_KEY = re.compile(r"^(get|post|put|patch|delete|head)_[a-z0-9_]+$")
_RIGHT_CHECK = re.compile(r"^right_(.+)_check$")


def right_check_group(name: str) -> str | None:
    """The group a ``right_<group>_check`` requires; None for any other check name."""
    match = _RIGHT_CHECK.match(name)
    return match.group(1) if match else None


def is_builtin_check(name: str) -> bool:
    return name == "user_check" or right_check_group(name) is not None


def import_check(path: str) -> Callable[..., Any]:
    """The callable a dotted path names: ``package.module:function`` or ``package.module.function``."""
    if ":" in path:
        module_name, _, attribute = path.partition(":")
    else:
        module_name, _, attribute = path.rpartition(".")
    if not module_name or not attribute:
        raise ValueError(f"{path!r} is neither a built-in check nor package.module:function")
    target: Any = importlib.import_module(module_name)
    for part in attribute.split("."):
        target = getattr(target, part)
    if not callable(target):
        raise ValueError(f"{path!r} is not callable")
    return target


def _authorize(raw: str) -> dict[str, tuple[str, ...]]:
    """``{action_key: [check, ...]}`` merged key by key over :data:`DEFAULT_AUTHORIZE`."""
    merged = dict(DEFAULT_AUTHORIZE)
    for key, checks in _json_object(raw).items():
        if not _ACTION_KEY.match(key):
            raise ValueError(f"{key!r} is not an action key such as get_workflows")
        if not isinstance(checks, list) or not all(isinstance(check, str) for check in checks):
            raise ValueError(f"{key}: expected a list of check names")
        for check in checks:
            if is_builtin_check(check):
                continue
            try:
                import_check(check)
            except Exception as error:  # any import-time failure of the named module
                detail = " ".join(str(error).split())
                raise ValueError(f"{key}: cannot import check {check!r} ({type(error).__name__}: {detail})") from None
        merged[key] = tuple(checks)
    return merged


HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
ASYMMETRIC_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
MIN_JWT_SECRET_BYTES = 32


def _jwt_public_key(raw: str) -> Any:
    """A public key from PEM text (``\\n`` escapes allowed) or a PEM file: a key or an X.509 certificate."""
    from cryptography import x509
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    text = raw if "-----BEGIN" in raw else Path(raw).read_text()
    if "\n" not in text and "\\n" in text:
        text = text.replace("\\n", "\n")
    data = text.strip().encode()
    try:
        if b"-----BEGIN CERTIFICATE-----" in data:
            return x509.load_pem_x509_certificate(data).public_key()
        return load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as error:
        raise ValueError(f"not a PEM public key or certificate ({error})") from None


def _key_fits(key: Any, algorithm: str) -> bool:
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa

    if algorithm.startswith(("RS", "PS")):
        return isinstance(key, rsa.RSAPublicKey)
    if algorithm.startswith("ES"):
        return isinstance(key, ec.EllipticCurvePublicKey)
    return isinstance(key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey)


def _jwt_algorithms(raw: str, allowed: tuple[str, ...]) -> tuple[str, ...]:
    algorithms = _groups(raw)
    if not algorithms:
        raise ValueError("expected a comma-separated list of algorithms")
    for algorithm in algorithms:
        if algorithm not in allowed:
            raise ValueError(f"{algorithm} is not allowed with this key (allowed: {', '.join(allowed)})")
    return algorithms


def _credentials(raw: str) -> dict[str, str]:
    """``{"name": "Authorization header value"}`` with non-empty string values."""
    credentials = {}
    for name, value in _json_object(raw).items():
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{name}: expected a non-empty string")  # never echo the value: a secret
        credentials[name] = value
    return credentials


def _leases(raw: str) -> dict[str, float]:
    """``{"queue_name": seconds}`` with positive numbers."""
    leases = {}
    for queue, seconds in _json_object(raw).items():
        if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds <= 0:
            raise ValueError(f"{queue}: expected a positive number of seconds")
        leases[queue] = float(seconds)
    return leases


def _non_negative_int(raw: str) -> int:
    value = int(raw)
    if value < 0:
        raise ValueError("must be zero or more")
    return value


METRICS_SCALES = ("year", "month", "week", "day", "hour", "minute", "second", "millisecond", "microsecond")


def _metrics_scale(raw: str) -> str:
    """A PostgreSQL interval unit, singular (``days`` is read as ``day``)."""
    scale = raw.strip().lower()
    scale = scale[:-1] if scale.endswith("s") and scale[:-1] in METRICS_SCALES else scale
    if scale not in METRICS_SCALES:
        raise ValueError(f"expected one of {', '.join(METRICS_SCALES)}")
    return scale


def _metrics_basic_auth(environ: Mapping[str, str]) -> tuple[str, str] | None:
    """``user:password`` (the password may hold colons). A secret: never echoed in the error."""
    raw = _env(environ, "STEPFLOW_METRICS_BASIC_AUTH")
    if raw is None:
        return None
    user, separator, password = raw.partition(":")
    if not separator or not user or not password:
        raise SettingsError("STEPFLOW_METRICS_BASIC_AUTH: expected user:password")
    return user, password


def _quote(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _database_url(environ: Mapping[str, str]) -> str:
    url = _env(environ, "DATABASE_URL")
    if url is None:
        user = _env(environ, "DATABASE_USERNAME") or "postgres"
        password = _env(environ, "DATABASE_PASSWORD")
        host = _env(environ, "DATABASE_HOSTNAME") or "127.0.0.1"
        port = _parse("DATABASE_PORT", _env(environ, "DATABASE_PORT") or "5432", _positive_int)
        name = _env(environ, "DATABASE_NAME") or "stepflow"
        credentials = _quote(user) + (f":{_quote(password)}" if password else "")
        return f"postgresql+psycopg://{credentials}@{host}:{port}/{name}"
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    if not url.startswith("postgresql+psycopg://"):
        raise SettingsError("DATABASE_URL: expected a postgresql:// URL")
    return url


def _amqp_url(environ: Mapping[str, str]) -> str:
    url = _env(environ, "AMQP_URL")
    if url is not None:
        if not url.startswith(("amqp://", "amqps://")):
            raise SettingsError("AMQP_URL: expected an amqp:// URL")
        return url
    user = _env(environ, "RABBITMQ_USERNAME") or "guest"
    password = _env(environ, "RABBITMQ_PASSWORD") or "guest"
    host = _env(environ, "RABBITMQ_HOSTNAME") or "127.0.0.1"
    port = _parse("RABBITMQ_PORT", _env(environ, "RABBITMQ_PORT") or "5672", _positive_int)
    vhost = _env(environ, "RABBITMQ_VIRTUAL_HOST") or "/"
    return f"amqp://{_quote(user)}:{_quote(password)}@{host}:{port}/{_quote(vhost)}"


def _folders(raw: str) -> tuple[Path, ...]:
    separator = ";" if ";" in raw else ":"
    return tuple(Path(part) for part in raw.split(separator) if part)


def _prefix(raw: str) -> str:
    prefix = "/" + raw.strip("/")
    if prefix == "/":
        raise ValueError("the prefix cannot be empty")
    return prefix


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read every setting from ``environ`` (default: the process environment)."""
    env = os.environ if environ is None else environ

    def get(name: str, default: str, parse: Callable[[str], T]) -> T:
        return _parse(name, _env(env, name) or default, parse)

    folders = _folders(_env(env, "STEPFLOW_WORKFLOW_DEFINITIONS") or "")
    for folder in folders:
        if not folder.is_dir():
            raise SettingsError(f"STEPFLOW_WORKFLOW_DEFINITIONS: folder {str(folder)!r} does not exist")

    schema_raw = _env(env, "STEPFLOW_WORKFLOW_SCHEMA")
    schema = Path(schema_raw) if schema_raw else None
    if schema is not None and not schema.exists():
        raise SettingsError(f"STEPFLOW_WORKFLOW_SCHEMA: {schema_raw!r} does not exist")

    users = get("STEPFLOW_AUTH_USERS", "{}", _users)
    users_file = _env(env, "STEPFLOW_AUTH_USERS_FILE")
    if users_file is not None:
        try:
            text = Path(users_file).read_text()
        except OSError as error:
            raise SettingsError(f"STEPFLOW_AUTH_USERS_FILE: cannot read {users_file!r} ({error.strerror})") from None
        users = {**users, **_parse("STEPFLOW_AUTH_USERS_FILE", text, _users)}
    session_secret = _env(env, "STEPFLOW_SESSION_SECRET")
    if users and session_secret is None:
        raise SettingsError("STEPFLOW_SESSION_SECRET: required when STEPFLOW_AUTH_USERS defines users")

    jwt_secret = _env(env, "STEPFLOW_AUTH_JWT_SECRET")
    jwt_key_raw = _env(env, "STEPFLOW_AUTH_JWT_PUBLIC_KEY")
    jwt_public_key = None
    jwt_algorithms: tuple[str, ...] = ()
    if jwt_secret is not None and jwt_key_raw is not None:
        raise SettingsError("STEPFLOW_AUTH_JWT_PUBLIC_KEY: set either it or STEPFLOW_AUTH_JWT_SECRET, not both")
    if jwt_secret is not None:
        if len(jwt_secret.encode()) < MIN_JWT_SECRET_BYTES:
            raise SettingsError(f"STEPFLOW_AUTH_JWT_SECRET: must be at least {MIN_JWT_SECRET_BYTES} bytes long")
        jwt_algorithms = _parse(
            "STEPFLOW_AUTH_JWT_ALGORITHMS",
            _env(env, "STEPFLOW_AUTH_JWT_ALGORITHMS") or "HS256",
            lambda raw: _jwt_algorithms(raw, HMAC_ALGORITHMS),
        )
    if jwt_key_raw is not None:
        try:
            jwt_public_key = _jwt_public_key(jwt_key_raw)
        except OSError as error:
            raise SettingsError(
                f"STEPFLOW_AUTH_JWT_PUBLIC_KEY: cannot read {jwt_key_raw!r} ({error.strerror})"
            ) from None
        except ValueError as error:
            raise SettingsError(f"STEPFLOW_AUTH_JWT_PUBLIC_KEY: {error}") from None
        jwt_algorithms = _parse(
            "STEPFLOW_AUTH_JWT_ALGORITHMS",
            _env(env, "STEPFLOW_AUTH_JWT_ALGORITHMS") or "RS256",
            lambda raw: _jwt_algorithms(raw, ASYMMETRIC_ALGORITHMS),
        )
        unfit = [algorithm for algorithm in jwt_algorithms if not _key_fits(jwt_public_key, algorithm)]
        if unfit:
            raise SettingsError(
                f"STEPFLOW_AUTH_JWT_ALGORITHMS: {', '.join(unfit)} cannot use the configured public key"
            )

    amqp_url = _amqp_url(env)
    return Settings(
        database_url=_database_url(env),
        database_pool_size=get("DATABASE_POOL_SIZE", "10", _positive_int),
        amqp_url=amqp_url,
        actors_amqp_url=_env(env, "STEPFLOW_ACTORS_AMQP_URL") or amqp_url,
        port=get("PORT", "4000", _positive_int),
        api_prefix=get("STEPFLOW_API_PREFIX", "/api/step_flow", _prefix),
        exposed_domain_name=_env(env, "EXPOSED_DOMAIN_NAME") or "",
        workflow_definitions=folders,
        workers_work_directory=_env(env, "STEPFLOW_WORKERS_WORK_DIRECTORY") or "",
        workflow_schema=schema,
        auth_anonymous=get("STEPFLOW_AUTH_ANONYMOUS", "false", _bool),
        auth_anonymous_groups=get("STEPFLOW_AUTH_ANONYMOUS_GROUPS", "", _groups),
        auth_users=users,
        auth_tokens=get("STEPFLOW_AUTH_TOKENS", "{}", _tokens),
        session_secret=session_secret,
        session_ttl=get("STEPFLOW_SESSION_TTL", "86400", _positive_int),
        auth_jwt_secret=jwt_secret,
        auth_jwt_public_key=jwt_public_key,
        auth_jwt_algorithms=jwt_algorithms,
        auth_jwt_groups_claim=_env(env, "STEPFLOW_AUTH_JWT_GROUPS_CLAIM") or "rights",
        auth_jwt_audience=get("STEPFLOW_AUTH_JWT_AUDIENCE", "", _groups),
        auth_jwt_issuer=_env(env, "STEPFLOW_AUTH_JWT_ISSUER"),
        authorize=get("STEPFLOW_AUTHORIZE", "{}", _authorize),
        default_rights=get("STEPFLOW_DEFAULT_RIGHTS", "[]", _rights_array),
        rights_overrides=get("STEPFLOW_RIGHTS_OVERRIDES", "{}", _rights_overrides),
        slack_api_url=(_env(env, "SLACK_API_URL") or "https://slack.com/api").rstrip("/"),
        slack_api_token=_env(env, "SLACK_API_TOKEN"),
        slack_api_channel=_env(env, "SLACK_API_CHANNEL"),
        webhook_signing_secret=_env(env, "STEPFLOW_WEBHOOK_SIGNING_SECRET"),
        notification_credentials=get("STEPFLOW_NOTIFICATION_CREDENTIALS", "{}", _credentials),
        notifier_max_retries=get("STEPFLOW_NOTIFIER_MAX_RETRIES", "5", _non_negative_int),
        notifier_timeout=get("STEPFLOW_NOTIFIER_TIMEOUT", "10", _positive_float),
        dispatch_resend_after=get("STEPFLOW_DISPATCH_RESEND_AFTER", "30", _positive_float),
        outbox_resend_after=get("STEPFLOW_OUTBOX_RESEND_AFTER", "10", _positive_float),
        clock_interval=get("STEPFLOW_CLOCK_INTERVAL", "5", _positive_float),
        workers_status_interval=get("STEPFLOW_WORKERS_STATUS_INTERVAL", "10", _positive_float),
        busy_resend_max=get("STEPFLOW_BUSY_RESEND_MAX", "5", _non_negative_int),
        busy_resend_backoff=get("STEPFLOW_BUSY_RESEND_BACKOFF", "2", _positive_float),
        job_lease=get("STEPFLOW_JOB_LEASE", "600", _positive_float),
        job_leases=get("STEPFLOW_JOB_LEASES", "{}", _leases),
        websocket_heartbeat=get("STEPFLOW_WEBSOCKET_HEARTBEAT", "30", _positive_float),
        log_level=(_env(env, "STEPFLOW_LOG_LEVEL") or "info").lower(),
        metrics_enabled=get("STEPFLOW_METRICS_ENABLED", "true", _bool),
        metrics_basic_auth=_metrics_basic_auth(env),
        metrics_scale=get("STEPFLOW_METRICS_SCALE", "day", _metrics_scale),
        metrics_delta=get("STEPFLOW_METRICS_DELTA", "-1", int),
        prometheus_multiproc_dir=_optional(env, "PROMETHEUS_MULTIPROC_DIR", Path),
    )
