"""Shopkeeper: order and payment back office for shops that take card payments through Stripe."""
