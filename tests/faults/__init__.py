"""Stripe fault injection: a proxy in front of localstripe, and the tests that use it."""
