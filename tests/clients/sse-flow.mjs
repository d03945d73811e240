// graphql-sse runs the shop flow's subscription over Server-Sent Events (node sse-flow.mjs).
import assert from "node:assert/strict";
import { shopSseClient } from "./shop-sse.mjs";
import {
  CANCEL_ORDER, MY_ORDERS_UPDATED, ORDER, PLACE_ORDER, SIGN_UP, adminProduct, env, unique, within,
} from "./flow.mjs";

const url = env("SHOP_URL");
let token = null;
let latest = null;
const headers = () => ({
  ...(token ? { Authorization: `Bearer ${token}` } : {}),
  ...(latest ? { "X-Consistency-Token": latest } : {}),
});
const post = async (query, variables) => {
  const response = await fetch(url, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers() },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  assert.equal(body.errors, undefined, JSON.stringify(body.errors));
  for (const payload of Object.values(body.data)) {
    if (payload && typeof payload.consistencyToken === "string") latest = payload.consistencyToken;
  }
  return body.data;
};

for (const singleConnection of [false, true]) {
  token = null;
  latest = null;
  const sse = shopSseClient({ url, getToken: () => token, getConsistencyToken: () => latest, singleConnection });
  const product = await adminProduct(url, env("ADMIN_TOKEN"));
  const signedUp = await post(SIGN_UP, {
    input: { email: `${unique("sse")}@example.com`, name: "Sse Sam", password: "correct-horse-battery" },
  });
  token = signedUp.signUp.token;
  const placed = await post(PLACE_ORDER, { input: { lines: [{ productId: product.id, quantity: 1 }] } });
  const order = placed.placeOrder.order;
  const afterPlacing = placed.placeOrder.consistencyToken;

  // A query over the stream reads the write it follows (the token header).
  for await (const result of sse.iterate({ query: ORDER, variables: { id: order.id } })) {
    assert.deepEqual(result.data.order, { id: order.id, status: "PLACED", totalCents: 1200 });
  }

  // A subscription event after a mutation.
  const events = sse.iterate({ query: MY_ORDERS_UPDATED, variables: { after: afterPlacing } });
  const cancelled = (async () => {
    for await (const result of events) {
      assert.equal(result.errors, undefined, JSON.stringify(result.errors));
      if (result.data.myOrdersUpdated.status === "CANCELLED") {
        await events.return();
        return result.data.myOrdersUpdated;
      }
    }
    throw new Error("the stream completed before the cancellation");
  })();
  await post(CANCEL_ORDER, { input: { orderId: order.id } });
  const pushed = await within(30_000, "the cancellation over SSE", cancelled);
  assert.equal(pushed.id, order.id);
  sse.dispose();
  console.log(`sse (singleConnection: ${singleConnection}): query and cancellation pushed`);
}
process.exit(0);
