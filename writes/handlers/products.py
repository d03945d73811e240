"""Catalog management (admins only: writes/authorization.py)."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from writes import rules
from writes.clock import iso
from writes.commands import ChangeProductPrice, CreateProduct, RestockProduct
from writes.errors import NotFound, ValidationFailed, VersionConflict
from writes.events import ProductCreated, ProductPriceChanged, ProductRestocked
from writes.models import Product
from writes.unit_of_work import UnitOfWork
from writes.views import Committed, ProductView, product_view


async def create_product(cmd: CreateProduct, uow: UnitOfWork) -> Committed[ProductView]:
    """Add a product to the catalog; skus are unique."""
    now = uow.now()
    product = Product(
        id=uuid.uuid4(),
        sku=rules.sku(cmd.sku),
        name=rules.name(cmd.name),
        description=rules.description(cmd.description),
        price_cents=rules.price_cents(cmd.price_cents),
        stock=rules.stock(cmd.stock),
        units_sold=0,
        version=1,
        created_at=now,
        updated_at=now,
    )
    if await uow.session.scalar(select(Product.id).where(Product.sku == product.sku)):
        raise ValidationFailed("sku", f"sku {product.sku!r} is taken by another product")
    uow.session.add(product)
    try:
        await uow.session.flush()
    except IntegrityError:
        raise ValidationFailed("sku", f"sku {product.sku!r} is taken by another product") from None
    uow.record(
        ProductCreated(
            product_id=str(product.id),
            sku=product.sku,
            name=product.name,
            description=product.description,
            price_cents=product.price_cents,
            stock=product.stock,
            created_at=iso(now),
        ),
        stream_id=product.id,
        stream_version=product.version,
    )
    return Committed(product_view(product), await uow.commit())


async def change_product_price(cmd: ChangeProductPrice, uow: UnitOfWork) -> Committed[ProductView]:
    """Set a new price, refusing a stale expectedVersion."""
    price = rules.price_cents(cmd.price_cents)
    product = await _locked(uow, cmd.product_id)
    if cmd.expected_version is not None and cmd.expected_version != product.version:
        raise VersionConflict(cmd.expected_version, product.version)
    previous = product.price_cents
    product.price_cents = price
    _touch(product, uow)
    uow.record(
        ProductPriceChanged(
            product_id=str(product.id),
            previous_price_cents=previous,
            price_cents=price,
            changed_at=iso(product.updated_at),
        ),
        stream_id=product.id,
        stream_version=product.version,
    )
    return Committed(product_view(product), await uow.commit())


async def restock_product(cmd: RestockProduct, uow: UnitOfWork) -> Committed[ProductView]:
    """Add units to a product's stock."""
    product = await _locked(uow, cmd.product_id)
    quantity = rules.restock_quantity(cmd.quantity, product.stock)
    product.stock += quantity
    _touch(product, uow)
    uow.record(
        ProductRestocked(
            product_id=str(product.id), quantity=quantity, restocked_at=iso(product.updated_at)
        ),
        stream_id=product.id,
        stream_version=product.version,
    )
    return Committed(product_view(product), await uow.commit())


async def _locked(uow: UnitOfWork, raw_id: str) -> Product:
    product_id = rules.entity_id(raw_id, "product")
    product = await uow.session.scalar(
        select(Product).where(Product.id == product_id).with_for_update()
    )
    if product is None:
        raise NotFound("product", raw_id)
    return product


def _touch(product: Product, uow: UnitOfWork) -> None:
    product.version += 1
    product.updated_at = uow.now()
