"""The one rule of every status table (orders, payments, refunds): a move is allowed when the
table lists it, staying put is always allowed (a replayed webhook or a retried request is a
no-op), and any other move is refused with `IllegalTransition`. Pure: no Django, no Stripe.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Generic, TypeVar

from shopkeeper.errors import IllegalTransition

S = TypeVar("S", bound=StrEnum)


@dataclass(frozen=True)
class StateMachine(Generic[S]):
    status: type[S]
    table: Mapping[S, frozenset[S]]
    # How errors name what moves: "order" ("An order cannot move from ... to ...").
    kind: str

    def can_move(self, current: S | str, target: S | str) -> bool:
        current, target = self.status(current), self.status(target)
        return current == target or target in self.table[current]

    def move(self, current: S | str, target: S | str) -> S:
        current, target = self.status(current), self.status(target)
        if not self.can_move(current, target):
            article = "An" if self.kind[0] in "aeiou" else "A"
            raise IllegalTransition(
                f"{article} {self.kind} cannot move from {current} to {target}",
                kind=self.kind,
                current=str(current),
                target=str(target),
            )
        return target
