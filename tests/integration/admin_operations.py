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
    "/api/admin/orders/{number}/shipments": {"carrier": "DHL", "tracking_number": "1"},
    "/api/admin/orders/{number}/shipments/{shipment_id}/deliver": {},
    "/api/admin/orders/{number}/notes": {"text": "rbac check"},
    "/api/admin/orders/{number}/returns": {
        "lines": [{"sku": "MUG", "quantity": 1, "reason": "other"}]
    },
    "/api/admin/returns/{return_id}/receive": {},
    "/api/admin/returns/{return_id}/refund": {},
    "/api/admin/returns/{return_id}/reject": {"note": "rbac check"},
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
    for name in ("{refund_id}", "{shipment_id}", "{return_id}"):
        path = path.replace(name, "999999")
    return path.replace("{number}", number)
