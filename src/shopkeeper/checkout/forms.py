"""Storefront forms: they check the shape of what the customer typed, nothing more.

The rules (stock, currencies, address completeness) live in the cart and checkout services,
which say why they refuse; a form only turns text into typed values with field-level messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from django import forms

from shopkeeper.checkout.services import MAX_QUANTITY
from shopkeeper.returns.rules import MAX_NOTE_LENGTH, REASONS, ReturnLineRequest


class AddToCartForm(forms.Form):
    sku = forms.CharField(max_length=64)
    quantity = forms.IntegerField(min_value=1, max_value=MAX_QUANTITY, initial=1)


class UpdateCartForm(forms.Form):
    """Zero removes the line."""

    sku = forms.CharField(max_length=64)
    quantity = forms.IntegerField(min_value=0, max_value=MAX_QUANTITY)


class RemoveFromCartForm(forms.Form):
    sku = forms.CharField(max_length=64)


class CheckoutForm(forms.Form):
    email = forms.EmailField(label="E-mail", max_length=254)
    name = forms.CharField(label="Full name", max_length=200)
    line1 = forms.CharField(label="Address", max_length=200)
    city = forms.CharField(max_length=100)
    postal_code = forms.CharField(label="Postal code", max_length=20)
    country = forms.RegexField(
        label="Country",
        regex=r"^[A-Za-z]{2}$",
        max_length=2,
        help_text='Two-letter code, such as "US" or "DE".',
        error_messages={"invalid": 'Enter a two-letter country code, such as "US".'},
    )

    def shipping_address(self) -> dict[str, str]:
        data = self.cleaned_data
        return {key: data[key] for key in ("name", "line1", "city", "postal_code", "country")}


class CardConfirmationForm(forms.Form):
    """A card the browser tokenised with Stripe.js (offline mode), by its Stripe id."""

    payment_method = forms.RegexField(
        regex=r"^(pm|card|src)_[A-Za-z0-9_]+$",
        max_length=255,
        error_messages={"invalid": "The card could not be read; enter it again."},
    )


REASON_LABELS = {
    "damaged": "It arrived damaged",
    "wrong_item": "I received the wrong item",
    "not_as_described": "It is not as described",
    "no_longer_needed": "I no longer need it",
    "other": "Another reason",
}


class ReturnRequestForm(forms.Form):
    """A customer's request to send shipped units back: per order line a quantity (0 or none:
    keep it) and a reason, and a note. Every line of the order may be named, and the page only
    offers what is returnable: what may come back is for returns.rules to say, as for staff."""

    note = forms.CharField(
        label="Anything to add",
        required=False,
        max_length=MAX_NOTE_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
    )

    def __init__(self, data: Any = None, *, lines: Iterable[Mapping[str, Any]]) -> None:
        super().__init__(data)
        self.lines = list(lines)
        for line in self.lines:
            quantity = forms.IntegerField(
                label=f"Quantity of {line['sku']}",
                min_value=0,
                max_value=MAX_QUANTITY,
                required=False,
            )
            if "returnable_quantity" in line:  # the browser's hint; the rule is the server's
                quantity.widget.attrs["max"] = line["returnable_quantity"]
            self.fields[f"quantity_{line['id']}"] = quantity
            self.fields[f"reason_{line['id']}"] = forms.ChoiceField(
                label=f"Reason for {line['sku']}",
                choices=[("", "Choose a reason"), *((r, REASON_LABELS[r]) for r in REASONS)],
                required=False,
            )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for line in self.lines:
            if data.get(f"quantity_{line['id']}") and not data.get(f"reason_{line['id']}"):
                self.add_error(f"reason_{line['id']}", "Choose why you send it back.")
        return data

    def requested(self) -> list[ReturnLineRequest]:
        """The lines asked for (a quantity above 0), for returns.services.request_return."""
        data = self.cleaned_data
        return [
            ReturnLineRequest(line["sku"], quantity, data[f"reason_{line['id']}"])
            for line in self.lines
            if (quantity := data.get(f"quantity_{line['id']}") or 0) > 0
        ]
