// The shop flow every client test runs, written once: what a storefront does.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";

export const SIGN_UP = `mutation SignUp($input: SignUpInput!) {
  signUp(input: $input) {
    __typename
    ... on AuthSuccess { token consistencyToken customer { id email } }
  }
}`;
export const CREATE_PRODUCT = `mutation CreateProduct($input: CreateProductInput!) {
  createProduct(input: $input) {
    __typename
    ... on ProductSuccess { consistencyToken product { id sku stock } }
  }
}`;
export const PLACE_ORDER = `mutation PlaceOrder($input: PlaceOrderInput!) {
  placeOrder(input: $input) {
    __typename
    ... on OrderSuccess { consistencyToken order { id status totalCents } }
    ... on InsufficientStockError { message }
  }
}`;
export const CANCEL_ORDER = `mutation CancelOrder($input: OrderIdInput!) {
  cancelOrder(input: $input) {
    __typename
    ... on OrderSuccess { consistencyToken order { id status } }
  }
}`;
export const ORDER = `query Order($id: ID!) { order(id: $id) { id status totalCents } }`;
export const MY_ORDERS = `query MyOrders($first: Int, $after: String, $last: Int, $before: String) {
  myOrders(first: $first, after: $after, last: $last, before: $before) {
    totalCount
    edges { cursor node { id status } }
    pageInfo { hasNextPage endCursor hasPreviousPage startCursor }
  }
}`;
export const MY_ORDERS_UPDATED = `subscription MyOrdersUpdated($after: String) {
  myOrdersUpdated(afterToken: $after) { id status }
}`;

export function env(name) {
  const value = process.env[name];
  assert.ok(value, `${name} must be set`);
  return value;
}

export const unique = (prefix) => `${prefix}-${Math.random().toString(16).slice(2, 14)}`;

// A product to order, created by the admin over plain fetch (not the client under test).
export async function adminProduct(url, adminToken, stock = 100) {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${adminToken}` },
    body: JSON.stringify({
      query: CREATE_PRODUCT,
      variables: { input: { sku: unique("SKU"), name: "Client mug", priceCents: 1200, stock } },
    }),
  });
  const body = await response.json();
  assert.equal(body.data.createProduct.__typename, "ProductSuccess", JSON.stringify(body));
  return body.data.createProduct.product;
}

// Resolves with the first `count` values an async iterator of events yields, or rejects
// after `budgetMs`.
export function within(budgetMs, what, promise) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${budgetMs} ms`)), budgetMs);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// The map Apollo's `possibleTypes` wants (`shop schema possible-types` writes the file).
export const POSSIBLE_TYPES = JSON.parse(
  await readFile(new URL("../../possible-types.json", import.meta.url), "utf8"),
);
