// urql runs the shop flow against SHOP_URL (node urql-flow.mjs).
import assert from "node:assert/strict";
import WebSocket from "ws";
import {
  CANCEL_ORDER, MY_ORDERS, MY_ORDERS_UPDATED, ORDER, PLACE_ORDER, SIGN_UP,
  adminProduct, env, unique, within,
} from "./flow.mjs";
import { shopUrqlClient } from "./shop-urql.mjs";

const url = env("SHOP_URL");
let token = null;
const client = shopUrqlClient({ url, getToken: () => token, webSocketImpl: WebSocket });
const ok = (result) => {
  assert.equal(result.error, undefined, String(result.error));
  return result.data;
};

const product = await adminProduct(url, env("ADMIN_TOKEN"));
const email = `${unique("urql")}@example.com`;
const signedUp = ok(await client.mutation(SIGN_UP, {
  input: { email, name: "Urql Una", password: "correct-horse-battery" },
}).toPromise());
assert.equal(signedUp.signUp.__typename, "AuthSuccess");
token = signedUp.signUp.token;

const placed = [];
let lastWrite = null;
for (let n = 0; n < 3; n++) {
  const data = ok(await client.mutation(PLACE_ORDER, {
    input: { lines: [{ productId: product.id, quantity: 2 }] },
  }).toPromise());
  assert.equal(data.placeOrder.__typename, "OrderSuccess", JSON.stringify(data));
  placed.push(data.placeOrder.order.id);
  lastWrite = data.placeOrder.consistencyToken;
  const read = ok(await client.query(ORDER, { id: data.placeOrder.order.id }, { requestPolicy: "network-only" }).toPromise());
  assert.equal(read.order.status, "PLACED", "read-your-writes through the token");
}

// Paging forward by cursor.
const seen = [];
let after = null;
for (;;) {
  const page = ok(await client.query(MY_ORDERS, { first: 2, after }, { requestPolicy: "network-only" }).toPromise());
  seen.push(...page.myOrders.edges.map((edge) => edge.node.id));
  if (!page.myOrders.pageInfo.hasNextPage) break;
  after = page.myOrders.pageInfo.endCursor;
}
assert.deepEqual([...seen].sort(), [...placed].sort());

// And backward from the end, by `last`/`before`: the same list.
const backward = [];
let before = null;
for (;;) {
  const page = ok(await client.query(MY_ORDERS, { last: 2, before }, { requestPolicy: "network-only" }).toPromise());
  backward.unshift(...page.myOrders.edges.map((edge) => edge.node.id));
  assert.equal(page.myOrders.totalCount, placed.length);
  if (!page.myOrders.pageInfo.hasPreviousPage) break;
  before = page.myOrders.pageInfo.startCursor;
}
assert.deepEqual(backward, seen);

// A subscription event after a mutation.
const cancelled = new Promise((resolve, reject) => {
  const { unsubscribe } = client
    .subscription(MY_ORDERS_UPDATED, { after: lastWrite })
    .subscribe((result) => {
      if (result.error) reject(result.error);
      const pushed = result.data?.myOrdersUpdated;
      if (pushed?.id === placed[1] && pushed.status === "CANCELLED") {
        unsubscribe();
        resolve(pushed);
      }
    });
});
const cancel = ok(await client.mutation(CANCEL_ORDER, { input: { orderId: placed[1] } }).toPromise());
assert.equal(cancel.cancelOrder.__typename, "OrderSuccess");
await within(30_000, "the cancellation over the websocket", cancelled);
console.log(`urql: ${placed.length} orders, ${seen.length} paged, cancellation pushed`);
process.exit(0);
