"""Background work: procrastinate on the PostgreSQL we already have (docs/jobs.md).

A job is deferred with `defer_in_transaction`, in the transaction of the change that needs it:
its row commits with the change or not at all. Each feature keeps its tasks in its own `jobs`
module (procrastinate's Django app imports every installed app's `jobs`); `shopkeeper worker`
runs them.
"""
