"""Who acts: the type of the `actor` every use case takes.

An actor is a member of staff. Where nobody on the staff acts (Stripe's news, the customer, a
scheduled job), a use case takes `None` and an `actor_label` ("Stripe", "Customer") that the
audit log records instead: `Actor | None`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeAlias

if TYPE_CHECKING:
    from shopkeeper.accounts.models import User

Actor: TypeAlias = "User"

# The audit log's actor label for what Shopkeeper does by itself: the worker's periodic jobs
# (expiring unpaid orders, lapsing authorisations, the nightly reconcile), its own retries.
SYSTEM = "Shopkeeper"
