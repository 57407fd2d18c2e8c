"""One settings module, read from the environment.

Development defaults let the project run with nothing installed (SQLite, offline Stripe keys);
production mode (SHOPKEEPER_ENV=production) refuses to start with any of those defaults.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from shopkeeper.failpoints import parse as parse_failpoints

PACKAGE_DIR = Path(__file__).resolve().parent
DATA_DIR = Path(os.environ.get("SHOPKEEPER_DATA_DIR", Path.cwd() / "var"))

ENVIRONMENT = os.environ.get("SHOPKEEPER_ENV", "development")
PRODUCTION = ENVIRONMENT == "production"
DEBUG = os.environ.get("SHOPKEEPER_DEBUG", "0" if PRODUCTION else "1") == "1"

DEFAULT_SECRET_KEY = "dev-insecure-shopkeeper-secret-key-change-me"
DEFAULT_STRIPE_SECRET_KEY = "sk_test_shopkeeper_offline"
DEFAULT_STRIPE_PUBLISHABLE_KEY = "pk_test_shopkeeper_offline"
DEFAULT_STRIPE_WEBHOOK_SECRET = "whsec_shopkeeper_offline"

SECRET_KEY = os.environ.get("SHOPKEEPER_SECRET_KEY", DEFAULT_SECRET_KEY)
ALLOWED_HOSTS = [
    h.strip()
    for h in os.environ.get("ALLOWED_HOSTS", "" if PRODUCTION else "127.0.0.1,localhost").split(",")
    if h.strip()
]
if not PRODUCTION:
    ALLOWED_HOSTS.append("testserver")

STRIPE_SECRET_KEY = os.environ.get("STRIPE_SECRET_KEY", DEFAULT_STRIPE_SECRET_KEY)
STRIPE_PUBLISHABLE_KEY = os.environ.get("STRIPE_PUBLISHABLE_KEY", DEFAULT_STRIPE_PUBLISHABLE_KEY)
STRIPE_WEBHOOK_SECRET = os.environ.get("STRIPE_WEBHOOK_SECRET", DEFAULT_STRIPE_WEBHOOK_SECRET)
# An emulator's base URL (localstripe); unset means real Stripe.
STRIPE_API_BASE = os.environ.get("STRIPE_API_BASE", "").rstrip("/") or None
# Seconds before a Stripe call counts as an unknown outcome.
STRIPE_TIMEOUT = float(os.environ.get("STRIPE_TIMEOUT", "10"))

SHOPKEEPER_CAPTURE = os.environ.get("SHOPKEEPER_CAPTURE", "automatic")
if SHOPKEEPER_CAPTURE not in ("automatic", "manual"):
    raise ImproperlyConfigured("SHOPKEEPER_CAPTURE must be 'automatic' or 'manual'")
# Flat shipping fee per order, as a decimal string in the order's currency.
SHOPKEEPER_SHIPPING_FEE = os.environ.get("SHOPKEEPER_SHIPPING_FEE", "5.00").strip()


def _refuse_defaults_in_production() -> None:
    defaults = {
        "SHOPKEEPER_SECRET_KEY": SECRET_KEY == DEFAULT_SECRET_KEY,
        "STRIPE_SECRET_KEY": STRIPE_SECRET_KEY == DEFAULT_STRIPE_SECRET_KEY,
        "STRIPE_WEBHOOK_SECRET": STRIPE_WEBHOOK_SECRET == DEFAULT_STRIPE_WEBHOOK_SECRET,
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
    "shopkeeper.accounts",
    "shopkeeper.audit",
    "shopkeeper.catalog",
    "shopkeeper.orders",
    "shopkeeper.payments",
    "shopkeeper.refunds",
    "shopkeeper.disputes",
    "shopkeeper.idempotency",
    "shopkeeper.checkout",
    "shopkeeper.backoffice",
    "shopkeeper.ops",
    "shopkeeper.reconciliation",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
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

DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{DATA_DIR / 'shopkeeper.sqlite3'}"),
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Wait for a writer instead of failing at once; SQLite serialises writers.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 20

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

# Largest refund each role may make without a second person's approval, per currency (decimal
# strings). Roles not listed have no limit; a listed role needs approval in every currency its
# table does not name. Override with JSON, e.g. '{"support": {"USD": "50.00"}}'.
SHOPKEEPER_REFUND_LIMITS: dict[str, dict[str, str]] = json.loads(
    os.environ.get("SHOPKEEPER_REFUND_LIMITS", "")
    or '{"support": {"USD": "100.00", "EUR": "100.00", "GBP": "100.00", "JPY": "15000"}}'
)
# Seconds to wait before each retry of a refund whose outcome Stripe left unknown (same
# idempotency key each time); after the last one the refund stays pending for reconciliation.
SHOPKEEPER_REFUND_RETRY_DELAYS: list[float] = [
    float(delay)
    for delay in os.environ.get("SHOPKEEPER_REFUND_RETRY_DELAYS", "0.5,2").split(",")
    if delay.strip()
]
# Reconciliation leaves a pending refund without Stripe's answer alone this long after it was
# last touched (its request and retries may still be under way) before sending it again.
SHOPKEEPER_RECONCILE_IN_FLIGHT_SECONDS = float(
    os.environ.get("SHOPKEEPER_RECONCILE_IN_FLIGHT_SECONDS", "300")
)
# How long a request waits for another request holding the same Idempotency-Key to finish.
SHOPKEEPER_IDEMPOTENCY_WAIT_SECONDS = float(
    os.environ.get("SHOPKEEPER_IDEMPOTENCY_WAIT_SECONDS", "10")
)

# Largest request body accepted; a larger one is answered 413 before it is read.
SHOPKEEPER_MAX_BODY_BYTES = int(os.environ.get("SHOPKEEPER_MAX_BODY_BYTES", str(1024 * 1024)))
DATA_UPLOAD_MAX_MEMORY_SIZE = SHOPKEEPER_MAX_BODY_BYTES

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

# Tests only: failpoints switched on by name, e.g. "refund.after_stripe=kill" (see
# shopkeeper/failpoints.py). Production refuses to start with any.
SHOPKEEPER_FAILPOINTS: dict[str, str] = parse_failpoints(
    os.environ.get("SHOPKEEPER_FAILPOINTS", "")
)
if PRODUCTION and SHOPKEEPER_FAILPOINTS:
    raise ImproperlyConfigured("SHOPKEEPER_FAILPOINTS is for tests; unset it in production")
