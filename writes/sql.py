"""placeOrder's statements and the event log's append, as plain SQL for the driver.

The hot command sends these through the transaction's own asyncpg connection
(UnitOfWork.driver), not through SQLAlchemy's execution layer: docs/decisions/0077.
They are plain strings in a module that imports nothing, so bench/raw_writes.py sends
the very same text (the same prepared statements) without loading SQLAlchemy.
"""

from __future__ import annotations

SELECT_CUSTOMER = "SELECT id, name, email FROM customers WHERE id = $1"
# In id order, so two orders sharing products cannot deadlock.
LOCK_PRODUCTS = (
    "SELECT id, sku, name, price_cents, stock FROM products "
    "WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE"
)
TAKE_STOCK = (
    "UPDATE products SET stock = products.stock - taken.quantity, "
    "units_sold = products.units_sold + taken.quantity, updated_at = $1 "
    "FROM unnest($2::uuid[], $3::integer[]) AS taken(id, quantity) "
    "WHERE products.id = taken.id"
)
INSERT_ORDER = (
    "INSERT INTO orders (id, customer_id, status, item_count, total_cents, placed_at, "
    "updated_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
)
INSERT_LINES = (
    "INSERT INTO order_lines (order_id, line_no, product_id, sku, name, unit_price_cents, "
    "quantity) SELECT $1, line.* FROM unnest($2::integer[], $3::uuid[], $4::text[], "
    "$5::text[], $6::bigint[], $7::integer[]) AS line"
)
# An idempotency key: claimed before the order is placed (a concurrent claim of the
# same key blocks on the primary key until the first transaction ends), read back when
# the claim loses, and given its result in the order's own commit.
CLAIM_KEY = (
    "INSERT INTO idempotency_keys (customer_id, key, request_hash, created_at) "
    "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING key"
)
STORED_KEY = (
    "SELECT request_hash, result, position FROM idempotency_keys "
    "WHERE customer_id = $1 AND key = $2"
)
STORE_RESULT = (
    "UPDATE idempotency_keys SET order_id = $3, result = $4::jsonb, position = $5 "
    "WHERE customer_id = $1 AND key = $2"
)

# Appends take this transaction-scoped advisory lock, so positions become visible in
# commit order and a reader never sees position N+1 while N may still commit
# (docs/decisions/0003-serialized-event-appends.md).
EVENT_LOG_LOCK = 0x5B09_E7E4
LOCK_EVENT_LOG = "SELECT pg_advisory_xact_lock($1)"
APPEND_EVENT = (
    "INSERT INTO event_log (event_id, stream_type, stream_id, stream_version, type, data, "
    "metadata) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7::jsonb) RETURNING position"
)

# What placing an order without an idempotency key sends, in order (bench.writes checks
# a live capture against it before every B3 run).
PLACE_ORDER = (
    SELECT_CUSTOMER, LOCK_PRODUCTS, TAKE_STOCK, INSERT_ORDER, INSERT_LINES, LOCK_EVENT_LOG,
    APPEND_EVENT,
)  # fmt: skip
