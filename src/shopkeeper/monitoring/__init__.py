"""Operating Shopkeeper: /healthz, /readyz, /metrics and `shopkeeper status` (docs/operations.md).

It reads every feature below it and none reads it; what it reports is registered in
`shopkeeper.health` (checks, counts), by this package for the database and the webhooks, and by
any other package from its `AppConfig.ready()`.
"""
