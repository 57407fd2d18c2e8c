"""The back office's gate, `staff_view`: in accounts.staff_pages, shared with other features'
pages."""

from shopkeeper.accounts.staff_pages import View, problem_page, staff_view

__all__ = ["View", "problem_page", "staff_view"]
