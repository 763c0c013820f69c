"""Orders as the service accepts them, validated without a framework.

Validation is hand-written on purpose: measured on Lambda-like cold starts, a
schema library adds more init time than everything else this handler imports
beyond boto3.
Money is integer cents: floats lose cents and DynamoDB rejects them.
Every bound below keeps a valid order inside what DynamoDB stores (38 digits,
2048-byte keys, 400 KB items) and what a JavaScript client reads exactly
(integers below 2**53), so nothing that passes here fails later.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .errors import FieldError, InvalidOrderError, MalformedEventError

MAX_ID_LENGTH = 128
# Ids travel in URLs, headers and log lines: no spaces, slashes or control characters.
ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")
ID_RULE = "letters, digits, '.', '_', ':' or '-', starting with a letter or digit"
MAX_ITEMS = 100
# A line beyond these is a bulk contract or a typo, not a web order.
MAX_QUANTITY = 10_000
MAX_UNIT_PRICE_CENTS = 100_000_000
# 100,000,000.00: an order worth more needs a person, not a queue.
MAX_TOTAL_CENTS = 10_000_000_000
# Ten times the largest valid order (about 20 KB): decoding stays cheap, and a refused body plus its
# reason always fits one dead-letter message (SQS takes 1 MiB).
MAX_BODY_BYTES = 256 * 1024


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


def parse_json(body: str | bytes) -> object:
    """Decode a JSON body or raise MalformedEventError, whatever made it unreadable.

    Beyond ``json.loads`` this refuses what strict JSON, UTF-8 or DynamoDB would
    reject later: NaN and Infinity, lone surrogates, duplicate keys (parsers
    disagree on which one wins), nesting deep enough to exhaust the stack, and
    bodies over MAX_BODY_BYTES.
    """
    try:
        raw = body if isinstance(body, bytes) else body.encode("utf-8")
        if len(raw) > MAX_BODY_BYTES:
            raise MalformedEventError(f"the body must be at most {MAX_BODY_BYTES} bytes")
        payload = json.loads(
            raw.decode("utf-8"), parse_constant=_refuse_constant, object_pairs_hook=_object_without_duplicates
        )
        # A JSON escape such as \ud800 decodes to a lone surrogate, which no UTF-8 encoder (boto3's included) can send.
        json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except MalformedEventError:
        raise
    except (ValueError, RecursionError) as error:
        # ValueError covers JSONDecodeError, UnicodeDecodeError/EncodeError and over-long integers.
        reason = "nested too deeply" if isinstance(error, RecursionError) else str(error)
        raise MalformedEventError(f"the body is not valid JSON: {reason}") from error
    return payload


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not a JSON number")


def _object_without_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("an object has the same key twice")
    return result


def parse_order_id(value: object, where: str = "order_id") -> str:
    """Return ``value`` as an order id (a path parameter, say) or raise InvalidOrderError."""
    errors: list[FieldError] = []
    order_id = _identifier({where: value}, where, where, errors)
    if errors:
        raise InvalidOrderError(errors)
    return order_id


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


def _count(data: dict[Any, Any], key: str, where: str, minimum: int, maximum: int, errors: list[FieldError]) -> int:
    value = data.get(key)
    # bool is an int in Python; JSON true is not a quantity.
    if not isinstance(value, int) or isinstance(value, bool):
        errors.append(FieldError(where, "must be an integer"))
        return 0
    if value < minimum:
        errors.append(FieldError(where, f"must be at least {minimum}"))
    elif value > maximum:
        errors.append(FieldError(where, f"must be at most {maximum}"))
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
                quantity=_count(raw, "quantity", f"{where}.quantity", 1, MAX_QUANTITY, errors),
                unit_price_cents=_count(
                    raw, "unit_price_cents", f"{where}.unit_price_cents", 0, MAX_UNIT_PRICE_CENTS, errors
                ),
            )
        )
    return tuple(items)
