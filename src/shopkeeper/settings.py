"""One settings module, read from the environment.

Development defaults let the project run without a Stripe account (offline Stripe keys);
production mode (SHOPKEEPER_ENV=production) refuses to start with any of those defaults.
"""

from __future__ import annotations

import json
import os
import warnings
from datetime import timedelta
from pathlib import Path

import dj_database_url
from csp.constants import NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from shopkeeper.durations import BadDuration, parse_duration
from shopkeeper.failpoints import parse as parse_failpoints
from shopkeeper.notifications.email_url import BadEmailUrl, parse_email_url

PACKAGE_DIR = Path(__file__).resolve().parent
DATA_DIR = Path(os.environ.get("SHOPKEEPER_DATA_DIR", Path.cwd() / "var"))

ENVIRONMENT = os.environ.get("SHOPKEEPER_ENV", "development")
PRODUCTION = ENVIRONMENT == "production"
DEBUG = os.environ.get("SHOPKEEPER_DEBUG", "0" if PRODUCTION else "1") == "1"

DEFAULT_SECRET_KEY = "dev-insecure-shopkeeper-secret-key-change-me"
DEFAULT_STRIPE_SECRET_KEY = "sk_test_shopkeeper_offline"
DEFAULT_STRIPE_PUBLISHABLE_KEY = "pk_test_shopkeeper_offline"
DEFAULT_STRIPE_WEBHOOK_SECRET = "whsec_shopkeeper_offline"
DEFAULT_AUDIT_KEY = "dev-insecure-shopkeeper-audit-key-change-me"

SECRET_KEY = os.environ.get("SHOPKEEPER_SECRET_KEY", DEFAULT_SECRET_KEY)
ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("ALLOWED_HOSTS", "" if PRODUCTION else "127.0.0.1,localhost").split(",")
    if h.strip()
]
if not PRODUCTION:
    ALLOWED_HOSTS.append("testserver")

# Seals the audit chains (HMAC-SHA256); kept outside the database, never logged (docs/audit.md).
SHOPKEEPER_AUDIT_KEY = os.environ.get("SHOPKEEPER_AUDIT_KEY", DEFAULT_AUDIT_KEY)

STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", DEFAULT_STRIPE_SECRET_KEY)
STRIPE_PUBLISHABLE_KEY = os.environ.get("STRIPE_PUBLISHABLE_KEY", DEFAULT_STRIPE_PUBLISHABLE_KEY)
STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", DEFAULT_STRIPE_WEBHOOK_SECRET)
# An emulator's base URL (localstripe); unset means real Stripe.
STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "").rstrip("/") or None
# Seconds before a Stripe call counts as an unknown outcome.
STRIPE_TIMEOUT = float(os.environ.get("STRIPE_TIMEOUT", "10"))


def _non_negative(name: str, default: str) -> float:
    text = os.environ.get(name, "").strip() or default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value < 0:
        raise ImproperlyConfigured(f"{name} must be a number of 0 or more, not {text!r}")
    return value


# Stripe's rate limit, kept by every server, worker and command together in PostgreSQL
# (payments/stripe/rate_limit.py, docs/operations.md): requests a second to Stripe in all, and
# to any one endpoint (Stripe: 25/s in test mode, 100/s live, 25/s an endpoint). 0 turns the
# limiter off; an endpoint limit of 0 keeps the account's limit only.
STRIPE_TEST_MODE = STRIPE_API_BASE is not None or STRIPE_SECRET_KEY.startswith(
    ("sk_test_", "rk_test_")
)
STRIPE_MAX_REQUESTS_PER_SECOND = int(
    _non_negative("STRIPE_MAX_REQUESTS_PER_SECOND", "20" if STRIPE_TEST_MODE else "80")
)
STRIPE_MAX_REQUESTS_PER_SECOND_PER_ENDPOINT = int(
    _non_negative("STRIPE_MAX_REQUESTS_PER_SECOND_PER_ENDPOINT", "20")
)
# The longest one Stripe request waits for its turn and after Stripe's 429s, in seconds; past
# it the request is not sent and its outcome is unknown (certainly not done).
STRIPE_RATE_LIMIT_MAX_WAIT = _non_negative("STRIPE_RATE_LIMIT_MAX_WAIT", "10")

# automatic: charged at checkout; manual: authorised, staff capture; on_fulfillment: authorised,
# captured by the worker when the order is fully shipped (docs/fulfilment.md). Kept per payment.
SHOPKEEPER_CAPTURE = os.environ.get("SHOPKEEPER_CAPTURE", "automatic")
if SHOPKEEPER_CAPTURE not in ("automatic", "manual", "on_fulfillment"):
    raise ImproperlyConfigured(
        "SHOPKEEPER_CAPTURE must be 'automatic', 'manual' or 'on_fulfillment'"
    )
# Flat shipping fee per order, as a decimal string in the order's currency.
SHOPKEEPER_SHIPPING_FEE = os.environ.get("SHOPKEEPER_SHIPPING_FEE", "5.00").strip()


def _refuse_defaults_in_production() -> None:
    defaults = {
        "SHOPKEEPER_SECRET_KEY": SECRET_KEY == DEFAULT_SECRET_KEY,
        "STRIPE_SECRET_KEY": STRIPE_SECRET_KEY == DEFAULT_STRIPE_SECRET_KEY,
        "STRIPE_WEBHOOK_SECRET": STRIPE_WEBHOOK_SECRET == DEFAULT_STRIPE_WEBHOOK_SECRET,
        "SHOPKEEPER_AUDIT_KEY": SHOPKEEPER_AUDIT_KEY == DEFAULT_AUDIT_KEY,
    }
    still_default = [name for name, is_default in defaults.items() if is_default]
    if still_default:
        raise ImproperlyConfigured(
            "Refusing to run in production with default secrets: " + ", ".join(still_default)
        )
    if not ALLOWED_HOSTS:
        raise ImproperlyConfigured("ALLOWED_HOSTS must be set in production")


if PRODUCTION:
    _refuse_defaults_in_production()

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    # Serves Swagger UI from our own static files (no CDN, no inline script) at /api/docs.
    "ninja",
    # The job queue's tables, by its own migrations; its admin is not used.
    "procrastinate.contrib.django",
    "shopkeeper.jobs",
    "shopkeeper.accounts",
    "shopkeeper.audit",
    "shopkeeper.catalog",
    "shopkeeper.orders",
    "shopkeeper.payments",
    "shopkeeper.stripe_events",
    "shopkeeper.refunds",
    "shopkeeper.disputes",
    "shopkeeper.fulfilment",
    "shopkeeper.returns",
    "shopkeeper.notifications",
    "shopkeeper.idempotency",
    "shopkeeper.checkout",
    "shopkeeper.backoffice",
    "shopkeeper.demo",
    "shopkeeper.server",
    "shopkeeper.reconciliation",
    "shopkeeper.monitoring",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "shopkeeper.security_headers.ContentSecurityPolicyMiddleware",
    "shopkeeper.request_guard.RequestGuardMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "shopkeeper.audit.middleware.RequestContextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "shopkeeper.urls"
WSGI_APPLICATION = "shopkeeper.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# PostgreSQL only (row locks, triggers); no default: `dev.py` starts an embedded one and sets it.
DATABASE_URL = os.environ.get("DATABASE_URL", "").strip()
if not DATABASE_URL:
    raise ImproperlyConfigured(
        "DATABASE_URL is not set: point it at a PostgreSQL database, e.g. "
        "postgres://user:password@127.0.0.1:5432/shopkeeper "
        "(python3 dev.py run and python3 dev.py test start an embedded one)"
    )
# Persistent connections (docs/deployment.md): each of the server's request threads keeps its
# connection for DATABASE_CONN_MAX_AGE seconds (0: a new one per request) instead of opening one
# per request; a connection that died meanwhile (a database restart) is found by the health
# check at the start of the next request and replaced, not reported as an error
# (DATABASE_CONN_HEALTH_CHECKS=0 saves that round trip and lets one request per thread fail).
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "600")),
        conn_health_checks=os.environ.get("DATABASE_CONN_HEALTH_CHECKS", "1") == "1",
    )
}
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("DATABASE_URL must name a PostgreSQL database (postgres://...)")

# The jobs: each feature's tasks are in its `jobs` module (procrastinate imports every app's).
PROCRASTINATE_AUTODISCOVER_MODULE_NAME = "jobs"
# A worker survives losing a race for a job lock (shopkeeper/jobs/fetching.py).
PROCRASTINATE_ON_APP_READY = "shopkeeper.jobs.fetching.install"

AUTH_USER_MODEL = "accounts.User"
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]
LOGIN_URL = "/admin/login/"
LOGIN_REDIRECT_URL = "/admin/"

# Behind a TLS-terminating proxy (issue 7): the origins staff use, e.g. https://shop.example.com,
# are trusted for CSRF even when this server sees plain HTTP.
CSRF_TRUSTED_ORIGINS = [
    origin.strip()
    for origin in os.environ.get("SHOPKEEPER_TRUSTED_ORIGINS", "").split(",")
    if origin.strip()
]
if any("://" not in origin for origin in CSRF_TRUSTED_ORIGINS):
    raise ImproperlyConfigured(
        "SHOPKEEPER_TRUSTED_ORIGINS: each origin needs its scheme, e.g. https://shop.example.com"
    )
# Opt-in: the header a TLS-terminating proxy sets to "https" (e.g. X-Forwarded-Proto) makes a
# request count as HTTPS. Only set it when that proxy always sets or overwrites the header.
PROXY_SSL_HEADER_NAME = os.environ.get("SHOPKEEPER_PROXY_SSL_HEADER", "").strip()
if PROXY_SSL_HEADER_NAME:
    SECURE_PROXY_SSL_HEADER = ("HTTP_" + PROXY_SSL_HEADER_NAME.upper().replace("-", "_"), "https")

# Every page: our own scripts, styles and images, no inline script or style; Stripe.js, its
# frames and its API as Stripe documents them (security_headers.py adds an emulator's origin).
STRIPE_JS_SOURCES = ["https://js.stripe.com", "https://*.js.stripe.com"]
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, *STRIPE_JS_SOURCES],
        "frame-src": [*STRIPE_JS_SOURCES, "https://hooks.stripe.com"],
        "connect-src": [SELF, "https://api.stripe.com"],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    }
}
# HTTPS only, remembered by browsers for a year (sent on HTTPS answers: behind a TLS proxy,
# only with SHOPKEEPER_PROXY_SSL_HEADER set).
SECURE_HSTS_SECONDS = int(
    os.environ.get("SHOPKEEPER_HSTS_SECONDS", "31536000" if PRODUCTION else "0")
)

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
CSRF_FAILURE_VIEW = "shopkeeper.problems.csrf_failure"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
if not PRODUCTION:
    # Development serves static files from the apps (finders); no collectstatic directory.
    warnings.filterwarnings("ignore", message="No directory at")
WHITENOISE_USE_FINDERS = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"mask_secrets": {"()": "shopkeeper.redaction.MaskSecretsFilter"}},
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["mask_secrets"],
        }
    },
    "root": {"handlers": ["console"], "level": os.environ.get("SHOPKEEPER_LOG_LEVEL", "INFO")},
    "loggers": {
        "stripe": {"level": "WARNING"},
        # Django's default console handler on "django" would print every record again,
        # unmasked: its records go to the masked root handler only.
        "django": {"handlers": [], "level": "INFO", "propagate": True},
        # A line per deferred job (every webhook), per registered task and per periodic tick
        # (in every command, twice a minute in the worker) is noise; the worker's own lines (a
        # job started, ended, retried) stay.
        "procrastinate.jobs": {"level": "WARNING"},
        "procrastinate.blueprints": {"level": "WARNING"},
        # Two lines per periodic task at every start of every command; the tasks log their runs.
        "procrastinate.periodic": {"level": "WARNING"},
    },
}

# Flat shipping fee per currency (decimal strings); others use SHOPKEEPER_SHIPPING_FEE.
SHOPKEEPER_SHIPPING_FEES: dict[str, str] = {
    "JPY": "800",
    "KRW": "6000",
    "KWD": "1.500",
    "BHD": "2.000",
    "JOD": "3.500",
    **{
        code.strip().upper(): fee.strip()
        for code, _, fee in (
            item.partition("=")
            for item in os.environ.get("SHOPKEEPER_SHIPPING_FEES", "").split(",")
        )
        if code.strip() and fee.strip()
    },
}

# Largest sum of refunds nobody approved that a role may bring an order to without a second
# person's approval, per currency (decimal strings). Roles not listed have no limit; a listed
# role needs approval for every refund in a currency its table does not name. Override with
# JSON, e.g. '{"support": {"USD": "50.00"}}'.
SHOPKEEPER_REFUND_LIMITS: dict[str, dict[str, str]] = json.loads(
    os.environ.get("SHOPKEEPER_REFUND_LIMITS", "")
    or '{"support": {"USD": "100.00", "EUR": "100.00", "GBP": "100.00", "JPY": "15000"}}'
)
# What one member of staff may refund without approval over any 24 hours, per role and currency
# (same JSON shape and rules as SHOPKEEPER_REFUND_LIMITS; refunds approved by someone else do not
# count). Roles not listed have no daily limit.
SHOPKEEPER_REFUND_DAILY_LIMITS: dict[str, dict[str, str]] = json.loads(
    os.environ.get("SHOPKEEPER_REFUND_DAILY_LIMITS", "")
    or '{"support": {"USD": "500.00", "EUR": "500.00", "GBP": "500.00", "JPY": "75000"}}'
)
# Seconds to wait before each retry of a refund whose outcome Stripe left unknown (same
# idempotency key each time); after the last one the refund stays pending for reconciliation.
SHOPKEEPER_REFUND_RETRY_DELAYS: list[float] = [
    float(delay)
    for delay in os.environ.get("SHOPKEEPER_REFUND_RETRY_DELAYS", "0.5,2").split(",")
    if delay.strip()
]
# The worker's retries of a refund Stripe's answer to which was lost (refunds/jobs.py): seconds
# before each, in turn; all within the 24 hours Stripe keeps an idempotency key.
SHOPKEEPER_REFUND_SETTLE_DELAYS: list[float] = [
    float(delay)
    for delay in os.environ.get(
        "SHOPKEEPER_REFUND_SETTLE_DELAYS", "60,300,1800,7200,21600,43200"
    ).split(",")
    if delay.strip()
]
if sum(SHOPKEEPER_REFUND_SETTLE_DELAYS) >= 24 * 3600:
    raise ImproperlyConfigured(
        "SHOPKEEPER_REFUND_SETTLE_DELAYS must add up to less than 24 hours (Stripe forgets an "
        "idempotency key after 24 hours: a later send could refund twice)"
    )
# Reconciliation leaves a pending refund without Stripe's answer alone this long after it was
# last touched (its request and retries may still be under way) before sending it again.
SHOPKEEPER_RECONCILE_IN_FLIGHT_SECONDS = float(
    os.environ.get("SHOPKEEPER_RECONCILE_IN_FLIGHT_SECONDS", "300")
)
# Requests a second `reconcile` makes to Stripe at most: Stripe allows 25/s in test mode and
# 100/s live, for the whole account (the shop's own requests included). 0: unpaced.
SHOPKEEPER_RECONCILE_REQUESTS_PER_SECOND = float(
    os.environ.get("SHOPKEEPER_RECONCILE_REQUESTS_PER_SECOND", "10")
)
# Processing a stored Stripe event (a job): tries in all, and the wait before the first retry
# (each next wait is 4 times longer: 10 s, 40 s, 160 s, 11 min, 43 min by default).
# /readyz and `shopkeeper status` (jobs/health.py): unready when no worker's heartbeat is this
# recent, or when more jobs than this are due and waiting.
SHOPKEEPER_WORKER_HEARTBEAT_MAX_AGE = float(
    os.environ.get("SHOPKEEPER_WORKER_HEARTBEAT_MAX_AGE", "60")
)
SHOPKEEPER_QUEUE_DEPTH_MAX = int(os.environ.get("SHOPKEEPER_QUEUE_DEPTH_MAX", "1000"))
SHOPKEEPER_WEBHOOK_TRIES = int(os.environ.get("SHOPKEEPER_WEBHOOK_TRIES", "6"))
SHOPKEEPER_WEBHOOK_RETRY_SECONDS = float(os.environ.get("SHOPKEEPER_WEBHOOK_RETRY_SECONDS", "10"))
if SHOPKEEPER_WEBHOOK_TRIES < 1:
    raise ImproperlyConfigured("SHOPKEEPER_WEBHOOK_TRIES must be at least 1")
# How long a request waits for another request holding the same Idempotency-Key to finish.
SHOPKEEPER_IDEMPOTENCY_WAIT_SECONDS = float(
    os.environ.get("SHOPKEEPER_IDEMPOTENCY_WAIT_SECONDS", "10")
)
# The longest a request holding an Idempotency-Key can run (the refund endpoints): a refund is
# sent at most once plus once per retry delay, each send up to STRIPE_TIMEOUT plus its wait at
# the rate limiter (STRIPE_RATE_LIMIT_MAX_WAIT, when it is on), with the delays in between.
# gunicorn's worker `timeout` is no bound: a gthread worker keeps beating while one of its
# threads waits, so a slow request is not cut off.
_STRIPE_SEND_SECONDS = STRIPE_TIMEOUT + (
    STRIPE_RATE_LIMIT_MAX_WAIT if STRIPE_MAX_REQUESTS_PER_SECOND else 0.0
)
IDEMPOTENT_REQUEST_SECONDS = (1 + len(SHOPKEEPER_REFUND_RETRY_DELAYS)) * _STRIPE_SEND_SECONDS + sum(
    SHOPKEEPER_REFUND_RETRY_DELAYS
)
# A claim on an Idempotency-Key is a lease: after it, the same key takes over from a request
# that died holding it. It must outlast any request: by default 4 x the longest (at least
# 5 minutes); a shorter one than the longest request is refused.
SHOPKEEPER_IDEMPOTENCY_LEASE_SECONDS = float(
    os.environ.get("SHOPKEEPER_IDEMPOTENCY_LEASE_SECONDS", "")
    or max(300.0, 4 * IDEMPOTENT_REQUEST_SECONDS)
)
if SHOPKEEPER_IDEMPOTENCY_LEASE_SECONDS <= IDEMPOTENT_REQUEST_SECONDS:
    raise ImproperlyConfigured(
        f"SHOPKEEPER_IDEMPOTENCY_LEASE_SECONDS must exceed the longest request "
        f"({IDEMPOTENT_REQUEST_SECONDS:g} s with STRIPE_TIMEOUT, STRIPE_RATE_LIMIT_MAX_WAIT and "
        f"SHOPKEEPER_REFUND_RETRY_DELAYS)"
    )

# Largest request body accepted; a larger one is answered 413 before it is read.
SHOPKEEPER_MAX_BODY_BYTES = int(os.environ.get("SHOPKEEPER_MAX_BODY_BYTES", str(1024 * 1024)))
DATA_UPLOAD_MAX_MEMORY_SIZE = SHOPKEEPER_MAX_BODY_BYTES

# An API token's `last_used_at` is written at most this often (seconds), not on every request.
SHOPKEEPER_TOKEN_TOUCH_SECONDS = float(os.environ.get("SHOPKEEPER_TOKEN_TOUCH_SECONDS", "300"))

# Staff sign-in throttle (accounts.throttle): failures within the window per e-mail at one
# address, and per address whatever the e-mails.
SHOPKEEPER_LOGIN_MAX_FAILURES = int(os.environ.get("SHOPKEEPER_LOGIN_MAX_FAILURES", "5"))
SHOPKEEPER_LOGIN_MAX_FAILURES_PER_ADDRESS = int(
    os.environ.get("SHOPKEEPER_LOGIN_MAX_FAILURES_PER_ADDRESS", "20")
)
SHOPKEEPER_LOGIN_THROTTLE_SECONDS = int(os.environ.get("SHOPKEEPER_LOGIN_THROTTLE_SECONDS", "900"))
# Reverse proxies in front of the server that append to X-Forwarded-For (shopkeeper.client_address).
# 0: the client is REMOTE_ADDR and X-Forwarded-For is ignored.
SHOPKEEPER_PROXY_COUNT = int(os.environ.get("SHOPKEEPER_PROXY_COUNT", "0"))

# /metrics (Prometheus) answers only a request with `Authorization: Bearer <this token>`; unset,
# it answers nobody in production and anyone in development (docs/operations.md).
SHOPKEEPER_METRICS_TOKEN = os.environ.get("SHOPKEEPER_METRICS_TOKEN", "").strip()

# Customer e-mails (notifications/, docs/emails.md): where they go (smtp://, smtps://, console:,
# file:///dir), who they are from, and the address links in them start with. Lower case: the
# parsed URL is not a setting of its own (Django's debug page would show its password).
try:
    _email = parse_email_url(os.environ.get("SHOPKEEPER_EMAIL_URL", "") or "console:")
except BadEmailUrl as error:
    raise ImproperlyConfigured(str(error)) from None
EMAIL_BACKEND = _email.backend
EMAIL_HOST = _email.host
EMAIL_PORT = _email.port
EMAIL_HOST_USER = _email.username
EMAIL_HOST_PASSWORD = _email.password
EMAIL_USE_TLS = _email.use_tls
EMAIL_USE_SSL = _email.use_ssl
EMAIL_TIMEOUT = _email.timeout
EMAIL_FILE_PATH = _email.file_path
DEFAULT_FROM_EMAIL = (
    os.environ.get("SHOPKEEPER_EMAIL_FROM", "").strip() or "Shopkeeper <shop@localhost>"
)
SHOPKEEPER_SITE_URL = (
    os.environ.get("SHOPKEEPER_SITE_URL", "").strip() or "http://127.0.0.1:8000"
).rstrip("/")
if not SHOPKEEPER_SITE_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured(
        f"SHOPKEEPER_SITE_URL must start with http:// or https://, not {SHOPKEEPER_SITE_URL!r}"
    )


def _duration(name: str, default: str) -> timedelta:
    text = os.environ.get(name, "").strip() or default
    try:
        return parse_duration(text)
    except BadDuration as error:
        raise ImproperlyConfigured(f"{name}: {error}") from None


def _hours(name: str, default: str, *, most: int) -> int:
    text = os.environ.get(name, "").strip() or default
    if not text.isdigit() or not 1 <= int(text) <= most:
        raise ImproperlyConfigured(
            f"{name} must be a whole number of hours, 1 to {most}, not {text!r}"
        )
    return int(text)


def _choice(name: str, choices: tuple[str, ...], default: str) -> str:
    value = os.environ.get(name, "").strip().lower() or default
    if value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, not {value!r}")
    return value


# Periodic jobs run by the worker (docs/operations.md, "Periodic jobs"). Durations are written
# 90s, 2m, 60m, 6d18h (shopkeeper/durations.py).
# An order still unpaid this long after checkout is cancelled and its stock returned.
SHOPKEEPER_UNPAID_ORDER_TTL = _duration("SHOPKEEPER_UNPAID_ORDER_TTL", "60m")
# An authorisation not captured this long is flagged in the back office; at EXPIRE_AFTER (Stripe
# releases a card authorisation after about 7 days) the action decides: void it, capture it, or
# only notify a person.
SHOPKEEPER_AUTH_WARN_AFTER = _duration("SHOPKEEPER_AUTH_WARN_AFTER", "5d")
SHOPKEEPER_AUTH_EXPIRE_AFTER = _duration("SHOPKEEPER_AUTH_EXPIRE_AFTER", "6d18h")
SHOPKEEPER_AUTH_EXPIRY_ACTION = _choice(
    "SHOPKEEPER_AUTH_EXPIRY_ACTION", ("void", "capture", "notify"), "notify"
)
if SHOPKEEPER_AUTH_WARN_AFTER > SHOPKEEPER_AUTH_EXPIRE_AFTER:
    raise ImproperlyConfigured(
        "SHOPKEEPER_AUTH_WARN_AFTER must not be after SHOPKEEPER_AUTH_EXPIRE_AFTER"
    )
# Missed webhooks (stripe_events/missed.py): every hour the worker lists Stripe's Events API over
# the last this many hours (1 to 720, Stripe keeps 30 days), reaching further back by itself to
# where its last finished listing began (a worker that was down). 3: each event is listed by
# three runs, a few requests an hour; a longer window only lists the same events again.
SHOPKEEPER_EVENTS_SYNC_HOURS = _hours("SHOPKEEPER_EVENTS_SYNC_HOURS", "3", most=720)


def _time_of_day(name: str, default: str) -> tuple[int, int]:
    """ "HH:MM" on a 24-hour clock, as (hour, minute)."""
    text = os.environ.get(name, "").strip() or default
    hour, colon, minute = text.partition(":")
    if (
        colon
        and len(hour) in (1, 2)
        and len(minute) == 2
        and hour.isdigit()
        and minute.isdigit()
        and int(hour) < 24
        and int(minute) < 60
    ):
        return int(hour), int(minute)
    raise ImproperlyConfigured(f"{name} must be a time of day as HH:MM (e.g. 03:00), not {text!r}")


def _flag(name: str, default: str) -> bool:
    value = os.environ.get(name, "").strip() or default
    if value not in ("0", "1"):
        raise ImproperlyConfigured(f"{name} must be 1 (on) or 0 (off), not {value!r}")
    return value == "1"


# The nightly reconcile (reconciliation/jobs.py) starts at this time of day, UTC, over what
# changed since the last scheduled run; with FIX=1 it records what Stripe proves (`--fix`).
SHOPKEEPER_RECONCILE_AT = _time_of_day("SHOPKEEPER_RECONCILE_AT", "03:00")
SHOPKEEPER_RECONCILE_FIX = _flag("SHOPKEEPER_RECONCILE_FIX", "0")


def _every_as_cron(name: str, default: str) -> str:
    """A period (10s, 1m, 15m) as the cron line of a periodic task: whole seconds that divide a
    minute, or whole minutes that divide an hour."""
    seconds = _duration(name, default).total_seconds()
    if seconds < 60 and seconds >= 1 and seconds == int(seconds) and 60 % seconds == 0:
        return f"* * * * * */{int(seconds)}"
    minutes = seconds / 60
    if 1 <= minutes <= 60 and minutes == int(minutes) and 60 % minutes == 0:
        return f"*/{int(minutes)} * * * *"
    raise ImproperlyConfigured(
        f"{name} must divide a minute (1s, 5s, 10s, 30s...) or an hour (1m, 5m, 15m, 60m)"
    )


# Stalled jobs (shopkeeper/jobs/stalled.py): a worker whose heartbeat is older than this is dead
# (it beats 3 times as often), and the periodic check, every ..._CHECK_EVERY, retries its jobs.
SHOPKEEPER_STALLED_JOB_AFTER = _duration("SHOPKEEPER_STALLED_JOB_AFTER", "30s")
if SHOPKEEPER_STALLED_JOB_AFTER.total_seconds() < 1:
    raise ImproperlyConfigured("SHOPKEEPER_STALLED_JOB_AFTER must be at least 1s")
SHOPKEEPER_STALLED_JOB_CHECK_CRON = _every_as_cron("SHOPKEEPER_STALLED_JOB_CHECK_EVERY", "1m")

# Tests only: failpoints switched on by name, e.g. "refund.after_stripe=kill" (see
# shopkeeper/failpoints.py). Production refuses to start with any.
SHOPKEEPER_FAILPOINTS: dict[str, str] = parse_failpoints(
    os.environ.get("SHOPKEEPER_FAILPOINTS", "")
)
if PRODUCTION and SHOPKEEPER_FAILPOINTS:
    raise ImproperlyConfigured("SHOPKEEPER_FAILPOINTS is for tests; unset it in production")
