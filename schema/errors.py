"""Errors in the API: typed result-union members, and top-level errors with a code.

Domain failures from `writes` are translated here, once, for every resolver: this is
where a command's field, named as `writes` names it, becomes the input path a client sent.
"""

from __future__ import annotations

import strawberry

from schema.enums import OrderStatus
from writes import errors as domain


class ApiError(Exception):
    """A top-level GraphQL error whose message is safe to show and whose code is kept."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@strawberry.interface(description="A domain rule refused the mutation; nothing was written.")
class UserError:
    code: str
    message: str


@strawberry.type
class ValidationError(UserError):
    field: str | None


@strawberry.type
class NotFoundError(UserError):
    id: strawberry.ID


@strawberry.type
class InsufficientStockError(UserError):
    product_id: strawberry.ID
    requested: int
    available: int


@strawberry.type
class VersionConflictError(UserError):
    expected_version: int
    actual_version: int


@strawberry.type
class InvalidTransitionError(UserError):
    from_: OrderStatus = strawberry.field(name="from")
    to: OrderStatus


@strawberry.type
class EmailTakenError(UserError):
    pass


@strawberry.type
class InvalidCredentialsError(UserError):
    pass


@strawberry.type(description="Too many attempts from this address or for this account.")
class RateLimitedError(UserError):
    retry_after_seconds: int = strawberry.field(
        description="Seconds until an attempt is counted again; the call may then succeed."
    )


# Each command field as the mutation's input names it. PlaceOrderInput's lines are
# OrderLineInput objects, so a field of one line is reached through `lines[i]`.
INPUT_FIELDS: dict[domain.CommandField, str] = {
    "email": "email",
    "name": "name",
    "password": "password",
    "sku": "sku",
    "description": "description",
    "price_cents": "priceCents",
    "stock": "stock",
    "quantity": "quantity",
    "lines": "lines",
    "product_id": "productId",
    "idempotency_key": "idempotencyKey",
}


def input_path(exc: domain.ValidationFailed) -> str:
    """The path, within the mutation's `input`, of the field a ValidationFailed names."""
    field = INPUT_FIELDS[exc.field]
    return field if exc.line is None else f"lines[{exc.line}].{field}"


def user_error(exc: domain.DomainError) -> UserError:
    """The result-union member for a refused command.

    Authentication and authorization failures are not union members: they are
    re-raised as top-level errors with code UNAUTHENTICATED / FORBIDDEN.
    """
    message = str(exc)
    match exc:
        case domain.ValidationFailed():
            path = input_path(exc)
            return ValidationError(code=exc.code, message=f"{path}: {exc.message}", field=path)
        case domain.NotFound():
            return NotFoundError(code=exc.code, message=message, id=strawberry.ID(exc.id))
        case domain.InsufficientStock():
            return InsufficientStockError(
                code=exc.code,
                message=message,
                product_id=strawberry.ID(exc.product_id),
                requested=exc.requested,
                available=exc.available,
            )
        case domain.VersionConflict():
            return VersionConflictError(
                code=exc.code,
                message=message,
                expected_version=exc.expected_version,
                actual_version=exc.actual_version,
            )
        case domain.InvalidTransition():
            return InvalidTransitionError(
                code=exc.code,
                message=message,
                from_=OrderStatus(exc.from_status),
                to=OrderStatus(exc.to_status),
            )
        case domain.EmailTaken():
            return EmailTakenError(code=exc.code, message=message)
        case domain.InvalidCredentials():
            return InvalidCredentialsError(code=exc.code, message=message)
    raise exc
