"""Every /api/admin operation (method, path, permission) and a valid body for each that
changes state: the RBAC matrices of test_security.py and test_security_suite.py."""

from __future__ import annotations

from shopkeeper.api import api

# A valid body for each state-changing endpoint, so a refusal can only come from the role.
BODIES = {
    "/api/admin/products": {"sku": "NEW", "name": "New", "price": "1.00", "currency": "USD"},
    "/api/admin/orders/{number}/cancel": {"reason": "rbac check"},
    "/api/admin/orders/{number}/capture": {},
    "/api/admin/orders/{number}/refunds": {"amount": "1.00", "reason": "requested_by_customer"},
    "/api/admin/orders/{number}/refunds/preview": {"amount": "1.00"},
    "/api/admin/refunds/{refund_id}/approve": {},
    "/api/admin/refunds/{refund_id}/reject": {},
}


def admin_operations() -> list[tuple[str, str, str]]:
    """(method, path template, required permission) of every /api/admin operation."""
    found = []
    for prefix, router in api._routers:
        for path, path_view in router.path_operations.items():
            full = f"/api{prefix}{path}"
            if not full.startswith("/api/admin"):
                continue
            for operation in path_view.operations:
                permission = getattr(operation.view_func, "required_permission", None)
                for method in operation.methods:
                    found.append((method, full, str(permission) if permission else ""))
    return sorted(found)


OPERATIONS = admin_operations()


def concrete(path: str, number: str) -> str:
    return path.replace("{number}", number).replace("{refund_id}", "999999")
