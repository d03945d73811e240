// Apollo Client 3 runs the shop flow against SHOP_URL (node apollo-flow.mjs).
import assert from "node:assert/strict";
import { gql } from "@apollo/client/core/index.js";
import WebSocket from "ws";
import {
  CANCEL_ORDER, MY_ORDERS, MY_ORDERS_UPDATED, ORDER, PLACE_ORDER, POSSIBLE_TYPES, SIGN_UP,
  adminProduct, env, unique, within,
} from "./flow.mjs";
import { shopApolloClient } from "./shop-apollo.mjs";

const url = env("SHOP_URL");
let token = null;
// Every request the client sends, to see the persisted-query link at work.
const sent = [];
const recordingFetch = async (input, init) => {
  const response = await fetch(input, init);
  const body = await response.clone().json();
  const request = init?.body ? JSON.parse(init.body) : Object.fromEntries(new URL(input).searchParams);
  const codes = (body.errors ?? []).map((error) => error.extensions?.code);
  sent.push({ method: init?.method ?? "GET", hashOnly: !request.query, codes });
  return response;
};
const client = shopApolloClient({
  url, getToken: () => token, webSocketImpl: WebSocket, possibleTypes: POSSIBLE_TYPES,
  fetch: recordingFetch,
});

try {
  const product = await adminProduct(url, env("ADMIN_TOKEN"));
  const email = `${unique("apollo")}@example.com`;
  const signedUp = await client.mutate({
    mutation: gql(SIGN_UP),
    variables: { input: { email, name: "Apollo Ada", password: "correct-horse-battery" } },
  });
  assert.equal(signedUp.data.signUp.__typename, "AuthSuccess");
  token = signedUp.data.signUp.token;

  // Five orders; each read straight after its write sees it (the consistency link).
  const placed = [];
  let lastWrite = null;
  for (let n = 0; n < 5; n++) {
    const result = await client.mutate({
      mutation: gql(PLACE_ORDER),
      variables: { input: { lines: [{ productId: product.id, quantity: 1 }] } },
    });
    assert.equal(result.data.placeOrder.__typename, "OrderSuccess", JSON.stringify(result.data));
    const order = result.data.placeOrder.order;
    placed.push(order.id);
    lastWrite = result.data.placeOrder.consistencyToken;
    const read = await client.query({
      query: gql(ORDER), variables: { id: order.id }, fetchPolicy: "network-only",
    });
    assert.deepEqual(read.data.order, { __typename: "Order", id: order.id, status: "PLACED", totalCents: 1200 });
  }

  // relayStylePagination: pages of two, merged by the cache into one list.
  const first = await client.query({ query: gql(MY_ORDERS), variables: { first: 2 }, fetchPolicy: "network-only" });
  let pageInfo = first.data.myOrders.pageInfo;
  while (pageInfo.hasNextPage) {
    const more = await client.query({
      query: gql(MY_ORDERS), variables: { first: 2, after: pageInfo.endCursor }, fetchPolicy: "network-only",
    });
    pageInfo = more.data.myOrders.pageInfo;
  }
  const merged = client.readQuery({ query: gql(MY_ORDERS), variables: { first: 2 } });
  const ids = merged.myOrders.edges.map((edge) => edge.node.id);
  assert.deepEqual([...ids].sort(), [...placed].sort(), "every order once, across the pages");
  assert.equal(merged.myOrders.totalCount, placed.length);

  // And backward, from the end: `last`/`before` pages, which relayStylePagination
  // prepends, make up the same list (the cache's list dropped first).
  client.cache.evict({ fieldName: "myOrders" });
  let list = (await client.query({ query: gql(MY_ORDERS), variables: { last: 2 }, fetchPolicy: "network-only" })).data.myOrders;
  while (list.pageInfo.hasPreviousPage) {
    list = (await client.query({
      query: gql(MY_ORDERS), variables: { last: 2, before: list.pageInfo.startCursor }, fetchPolicy: "network-only",
    })).data.myOrders;
  }
  assert.deepEqual(list.edges.map((edge) => edge.node.id), ids, "paging backward walks the same list");

  // possibleTypes: a fragment on a union member matches through the union.
  const union = client.readFragment({
    id: `Order:${placed[0]}`,
    fragment: gql`fragment O on Order { id status }`,
  });
  assert.equal(union.id, placed[0]);
  assert.ok(client.cache.policies.fragmentMatches("OrderSuccess", "PlaceOrderResult"));

  // A subscription event after a mutation: the cancellation reaches the websocket (live,
  // or replayed from afterToken if it subscribed late), and the cache's Order is updated.
  const events = client.subscribe({ query: gql(MY_ORDERS_UPDATED), variables: { after: lastWrite } });
  const cancelled = new Promise((resolve, reject) => {
    const subscription = events.subscribe({
      next: ({ data }) => {
        if (data.myOrdersUpdated.id === placed[0] && data.myOrdersUpdated.status === "CANCELLED") {
          subscription.unsubscribe();
          resolve(data.myOrdersUpdated);
        }
      },
      error: reject,
    });
  });
  const cancel = await client.mutate({ mutation: gql(CANCEL_ORDER), variables: { input: { orderId: placed[0] } } });
  assert.equal(cancel.data.cancelOrder.__typename, "OrderSuccess");
  await within(30_000, "the cancellation over the websocket", cancelled);
  const cached = client.cache.readFragment({ id: `Order:${placed[0]}`, fragment: gql`fragment S on Order { status }` });
  assert.equal(cached.status, "CANCELLED", "the cache normalised the pushed order by its id");
  // The persisted-query link: unknown hashes were sent again in full, and repeated
  // queries were answered by hash alone, over GET.
  const hits = sent.filter((r) => r.hashOnly && r.method === "GET" && r.codes.length === 0);
  const misses = sent.filter((r) => r.codes.includes("PERSISTED_QUERY_NOT_FOUND"));
  assert.ok(misses.length > 0 && hits.length >= 4, JSON.stringify(sent));
  console.log(`apollo: ${placed.length} orders, ${ids.length} paged, ${hits.length} by hash, cancellation pushed`);
} finally {
  client.stop();
  await client.clearStore().catch(() => {});
}
process.exit(0);
