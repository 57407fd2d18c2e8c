"""The Content-Security-Policy of every page (django-csp), with the Stripe emulator's origin.

The policy is CONTENT_SECURITY_POLICY in settings: our own scripts, styles and images only, no
inline script or style, and Stripe.js with its frames and API as Stripe documents them. Offline,
Stripe.js is localstripe's stand-in, served from STRIPE_API_BASE (which a test may change while
the process runs), so that origin is added per response.
"""

from __future__ import annotations

import urllib.parse

from csp.middleware import CSPMiddleware, PolicyParts
from django.conf import settings
from django.http import HttpRequest, HttpResponseBase

EMULATOR_DIRECTIVES = ("script-src", "connect-src", "frame-src")


def origin_of(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


class ContentSecurityPolicyMiddleware(CSPMiddleware):
    def get_policy_parts(
        self, request: HttpRequest, response: HttpResponseBase, report_only: bool = False
    ) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if settings.STRIPE_API_BASE and not report_only:
            emulator = origin_of(settings.STRIPE_API_BASE)
            update = dict(parts.update or {})
            for directive in EMULATOR_DIRECTIVES:
                update[directive] = [*update.get(directive, ()), emulator]
            parts.update = update
        return parts
