"""The Stripe adapter of the payment port (`payments/gateway.py`).

- `client`: `StripeGateway`, the only module that imports the Stripe SDK: requests, errors,
  retries, webhook signatures.
- `snapshots`: Stripe objects (plain dicts) into the port's snapshots.
- `emulator`: `EmulatorGateway`, localstripe's quirks, used only when `STRIPE_API_BASE` is set.
"""
