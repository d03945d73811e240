"""Products: the Product type and catalog mutations (admins only)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from reads.documents import ProductDocument
from reads.view_documents import product_document
from schema.context import Info
from schema.dispatch import run_command
from schema.errors import NotFoundError, ValidationError, VersionConflictError
from schema.node import Node
from schema.scalars import Cents
from writes.commands import ChangeProductPrice, CreateProduct, RestockProduct
from writes.views import Committed, ProductView


@strawberry.type
class Product(Node):
    sku: str
    name: str
    description: str
    price_cents: Cents
    stock: int
    in_stock: bool
    units_sold: int
    version: int
    updated_at: datetime

    @classmethod
    def from_document(cls, doc: ProductDocument) -> Product:
        """A product from its read-model document: projected, from the write-store fallback,
        or a mutation's committed view (reads/view_documents.py)."""
        return cls(
            id=strawberry.ID(doc["_id"]),
            sku=doc["sku"],
            name=doc["name"],
            description=doc["description"],
            price_cents=Cents(doc["price_cents"]),
            stock=doc["stock"],
            in_stock=doc["in_stock"],
            units_sold=doc["units_sold"],
            version=doc["version"],
            updated_at=doc["updated_at"],
        )


@strawberry.type
class ProductSuccess:
    product: Product
    consistency_token: str


ProductResult = Annotated[
    ProductSuccess | ValidationError | NotFoundError | VersionConflictError,
    strawberry.union("ProductResult"),
]


@strawberry.input
class CreateProductInput:
    sku: str
    name: str
    description: str | None = ""
    price_cents: Cents
    stock: int


@strawberry.input
class ChangeProductPriceInput:
    product_id: strawberry.ID
    price_cents: Cents
    expected_version: int | None = None


@strawberry.input
class RestockProductInput:
    product_id: strawberry.ID
    quantity: int


def _success(info: Info, committed: Committed[ProductView]) -> ProductSuccess:
    return ProductSuccess(
        product=Product.from_document(product_document(committed.value)),
        consistency_token=info.context.consistency.issue(committed.position),
    )


@strawberry.type
class ProductMutations:
    @strawberry.mutation(description="Add a product to the catalog (admin).")
    async def create_product(self, info: Info, input: CreateProductInput) -> ProductResult:
        command = CreateProduct(
            sku=input.sku,
            name=input.name,
            description=input.description or "",
            price_cents=input.price_cents,
            stock=input.stock,
        )
        return await run_command(info, command, lambda c: _success(info, c))  # type: ignore[return-value]

    @strawberry.mutation(description="Set a product's price; expectedVersion guards edits (admin).")
    async def change_product_price(
        self, info: Info, input: ChangeProductPriceInput
    ) -> ProductResult:
        command = ChangeProductPrice(
            product_id=input.product_id,
            price_cents=input.price_cents,
            expected_version=input.expected_version,
        )
        return await run_command(info, command, lambda c: _success(info, c))  # type: ignore[return-value]

    @strawberry.mutation(description="Add units to a product's stock (admin).")
    async def restock_product(self, info: Info, input: RestockProductInput) -> ProductResult:
        command = RestockProduct(product_id=input.product_id, quantity=input.quantity)
        return await run_command(info, command, lambda c: _success(info, c))  # type: ignore[return-value]
