"""A spending cap: refuse a submit that would take the units spent past a limit."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from kling_testkit.errors import KlingError
from kling_testkit.pricing import format_units, units
from kling_testkit.spec import ContractViolation, check_request


class BudgetExceeded(KlingError):
    """Raised by the client before sending a create that would go over its budget."""


class Budget:
    """Units a client may commit. A create reserves its price; a failed task gives it back."""

    def __init__(self, limit: float | Decimal) -> None:
        self.limit = Decimal(str(limit))
        self.spent = Decimal(0)
        self._lock = threading.Lock()

    @staticmethod
    def price(family: str, body: Mapping[str, Any]) -> Decimal:
        """Units a create body would cost if it succeeds (0 if the body is not valid)."""
        try:
            return units(family, check_request(family, dict(body)))
        except ContractViolation:
            return Decimal(0)  # the service refuses it; nothing is spent

    def reserve(self, family: str, body: Mapping[str, Any]) -> Decimal:
        """Take the body's price from the budget, or raise BudgetExceeded."""
        cost = self.price(family, body)
        with self._lock:
            if self.spent + cost > self.limit:
                raise BudgetExceeded(
                    f"this {family} task costs {format_units(cost)} units; "
                    f"{format_units(self.spent)} of {format_units(self.limit)} are already "
                    "committed"
                )
            self.spent += cost
        return cost

    def refund(self, cost: Decimal) -> None:
        with self._lock:
            self.spent = max(Decimal(0), self.spent - cost)

    @property
    def remaining(self) -> Decimal:
        return self.limit - self.spent
