"""The staff sign-in form: Django's AuthenticationForm behind the login throttle."""

from __future__ import annotations

import math
from typing import Any

from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import ValidationError
from django.utils import timezone

from shopkeeper.accounts.throttle import (
    clear_login_failures,
    login_locked_until,
    record_login_failure,
)
from shopkeeper.client_address import client_ip


class ThrottledAuthenticationForm(AuthenticationForm):
    """Refuses sign-in after too many failures for the e-mail at the client's address, or from
    the address at all (accounts.throttle), without trying the password.

    Use it as `LoginView.as_view(authentication_form=ThrottledAuthenticationForm)`; the view
    passes the request, whose client address (client_address.client_ip) is the one counted.
    The message is the same whichever key is locked and whether the e-mail exists.
    """

    error_messages = {
        **AuthenticationForm.error_messages,
        "throttled": (
            "Too many failed sign-in attempts from your address. "
            "Try again in %(minutes)s minute(s)."
        ),
    }

    def clean(self) -> dict[str, Any]:
        email = self.cleaned_data.get("username") or ""
        ip = client_ip(self.request)
        if email:
            until = login_locked_until(email=email, ip=ip)
            if until is not None:
                raise self._throttled(until)
        try:
            cleaned = super().clean()
        except ValidationError:
            if email and self.cleaned_data.get("password"):
                until = record_login_failure(email=email, ip=ip)
                if until is not None:
                    raise self._throttled(until) from None
            raise
        clear_login_failures(email=email, ip=ip)
        return cleaned

    def _throttled(self, until: Any) -> ValidationError:
        minutes = max(1, math.ceil((until - timezone.now()).total_seconds() / 60))
        return ValidationError(
            self.error_messages["throttled"], code="throttled", params={"minutes": minutes}
        )
