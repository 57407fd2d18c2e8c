"""Fulfilment: shipments of an order's lines, their delivery, and when an order is done."""
