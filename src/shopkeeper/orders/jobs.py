"""The orders' background jobs, found by procrastinate's autodiscovery (a module named `jobs`
in each app): each feature's tasks live in their own module, imported here."""

from shopkeeper.orders import authorisations as authorisations
