"""Who is acting, from where: set once per request (or command) and read by the audit log."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RequestContext:
    request_id: str = ""
    ip: str | None = None
    user_agent: str = ""


_current: contextvars.ContextVar[RequestContext] = contextvars.ContextVar(
    "shopkeeper_request_context",
    default=RequestContext(),  # noqa: B039 (frozen)
)


def current_context() -> RequestContext:
    return _current.get()


def set_context(context: RequestContext) -> contextvars.Token[RequestContext]:
    return _current.set(context)


def reset_context(token: contextvars.Token[RequestContext]) -> None:
    _current.reset(token)
