// graphql-sse's own client (both modes) against a live API: a query, then a subscription
// that hears the order this script places. Exits non-zero, saying why, when it fails.
// Environment: API_URL, CUSTOMER_TOKEN, PRODUCT_ID, AFTER_TOKEN (a consistency token from
// before the order, so the event arrives whether the subscription replays or is live).
import { createClient } from 'graphql-sse';

const { API_URL, CUSTOMER_TOKEN, PRODUCT_ID, AFTER_TOKEN } = process.env;
const url = `${API_URL}/graphql`;
const headers = { authorization: `Bearer ${CUSTOMER_TOKEN}` };

async function placeOrder() {
  const response = await fetch(url, {
    method: 'POST',
    headers: { ...headers, 'content-type': 'application/json' },
    body: JSON.stringify({
      query: `mutation($input: PlaceOrderInput!) { placeOrder(input: $input) {
        __typename ... on OrderSuccess { order { id } } } }`,
      variables: { input: { lines: [{ productId: PRODUCT_ID, quantity: 1 }] } },
    }),
  });
  const body = await response.json();
  if (body.data?.placeOrder?.__typename !== 'OrderSuccess') {
    throw new Error(`placeOrder failed: ${JSON.stringify(body)}`);
  }
  return body.data.placeOrder.order.id;
}

async function flow(singleConnection) {
  // A copy: in single connection mode the client writes its stream token into the object
  // it was given, and this script's own fetch must not send that token along.
  const methods = new Set();
  const fetchFn = (input, init) => {
    methods.add(init?.method ?? 'GET');
    return fetch(input, init);
  };
  const client = createClient({
    url,
    headers: { ...headers },
    singleConnection,
    retryAttempts: 0,
    fetchFn,
  });
  try {
    const answers = [];
    for await (const result of client.iterate({ query: '{ apiVersion }' })) answers.push(result);
    if (answers.length !== 1 || !answers[0].data?.apiVersion) {
      throw new Error(`query over SSE: ${JSON.stringify(answers)}`);
    }

    const events = client.iterate({
      query: 'subscription($after: String) { myOrdersUpdated(afterToken: $after) { id status } }',
      variables: { after: AFTER_TOKEN },
    });
    let pending = events.next();
    const orderId = await placeOrder();
    // Replayed orders of earlier flows may come first; each must be a whole result.
    for (;;) {
      const { value, done } = await pending;
      if (done || !value?.data?.myOrdersUpdated?.id) {
        throw new Error(`expected order ${orderId}, got ${JSON.stringify(value)}`);
      }
      if (value.data.myOrdersUpdated.id === orderId) break;
      pending = events.next();
    }
    await events.return(); // stops the subscription (single mode: a DELETE)
    if (methods.has('PUT') !== singleConnection) {
      throw new Error(`singleConnection=${singleConnection} but the client sent ${[...methods]}`);
    }
  } finally {
    client.dispose();
  }
}

const deadline = setTimeout(() => {
  console.error('the graphql-sse flow did not finish in 60 s');
  process.exit(2);
}, 60_000);
try {
  await flow(false);
  await flow(true);
  clearTimeout(deadline);
} catch (error) {
  console.error(error);
  process.exit(1);
}
