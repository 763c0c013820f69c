"""Orders as the service accepts them, validated without a framework.

Validation is hand-written on purpose: measured on Lambda-like cold starts, a
schema library adds more init time than everything else this handler imports
beyond boto3.
Money is integer cents: floats lose cents and DynamoDB rejects them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .errors import FieldError, InvalidOrderError

MAX_ID_LENGTH = 128
# Ids travel in URLs, headers and log lines: no spaces, slashes or control characters.
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")
ID_RULE = "letters, digits, '.', '_', ':' or '-', starting with a letter or digit"
MAX_ITEMS = 100


@dataclass(frozen=True, slots=True)
class OrderItem:
    sku: str
    quantity: int
    unit_price_cents: int


@dataclass(frozen=True, slots=True)
class Order:
    order_id: str
    customer_id: str
    items: tuple[OrderItem, ...]


@dataclass(frozen=True, slots=True)
class RecordedOrder:
    order_id: str
    customer_id: str
    items: tuple[OrderItem, ...]
    total_cents: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "order_id": self.order_id,
            "customer_id": self.customer_id,
            "items": [
                {"sku": item.sku, "quantity": item.quantity, "unit_price_cents": item.unit_price_cents}
                for item in self.items
            ],
            "total_cents": self.total_cents,
        }


def parse_order(payload: object) -> Order:
    """Return the order in ``payload`` or raise InvalidOrderError listing every bad field.

    Unknown fields are ignored, so producers can add fields before consumers read them.
    """
    errors: list[FieldError] = []
    if not isinstance(payload, dict):
        raise InvalidOrderError([FieldError("body", "must be a JSON object")])
    order_id = _identifier(payload, "order_id", "order_id", errors)
    customer_id = _identifier(payload, "customer_id", "customer_id", errors)
    items = _items(payload.get("items"), errors)
    if errors:
        raise InvalidOrderError(errors)
    return Order(order_id=order_id, customer_id=customer_id, items=items)


def _identifier(data: dict[Any, Any], key: str, where: str, errors: list[FieldError]) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value.strip():
        errors.append(FieldError(where, "must be a non-empty string"))
        return ""
    if len(value) > MAX_ID_LENGTH:
        errors.append(FieldError(where, f"must be at most {MAX_ID_LENGTH} characters"))
    elif not ID_PATTERN.fullmatch(value):
        errors.append(FieldError(where, f"must be {ID_RULE}"))
    return value


def _count(data: dict[Any, Any], key: str, where: str, minimum: int, errors: list[FieldError]) -> int:
    value = data.get(key)
    # bool is an int in Python; JSON true is not a quantity.
    if not isinstance(value, int) or isinstance(value, bool):
        errors.append(FieldError(where, "must be an integer"))
        return 0
    if value < minimum:
        errors.append(FieldError(where, f"must be at least {minimum}"))
    return value


def _items(value: object, errors: list[FieldError]) -> tuple[OrderItem, ...]:
    if not isinstance(value, list) or not value:
        errors.append(FieldError("items", "must be a non-empty list"))
        return ()
    if len(value) > MAX_ITEMS:
        errors.append(FieldError("items", f"must have at most {MAX_ITEMS} entries"))
        return ()
    items: list[OrderItem] = []
    for index, raw in enumerate(value):
        where = f"items[{index}]"
        if not isinstance(raw, dict):
            errors.append(FieldError(where, "must be an object"))
            continue
        items.append(
            OrderItem(
                sku=_identifier(raw, "sku", f"{where}.sku", errors),
                quantity=_count(raw, "quantity", f"{where}.quantity", 1, errors),
                unit_price_cents=_count(raw, "unit_price_cents", f"{where}.unit_price_cents", 0, errors),
            )
        )
    return tuple(items)
