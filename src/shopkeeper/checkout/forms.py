"""Storefront forms: they check the shape of what the customer typed, nothing more.

The rules (stock, currencies, address completeness) live in the cart and checkout services,
which say why they refuse; a form only turns text into typed values with field-level messages.
"""

from __future__ import annotations

from django import forms

from shopkeeper.checkout.services import MAX_QUANTITY


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
