"""Returns: shipped goods coming back, received (and restocked), then refunded or rejected."""
