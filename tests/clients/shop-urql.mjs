// urql for the shop API: the set-up docs/clients.md shows, verbatim.
import { Client, cacheExchange, fetchExchange, mapExchange, subscriptionExchange } from "@urql/core";
import { createClient as createWsClient } from "graphql-ws";

export function shopUrqlClient({ url, getToken, webSocketImpl }) {
  // Read-your-writes: keep the latest mutation's consistencyToken, send it with every request.
  let latest = null;
  const headers = () => ({
    ...(getToken() ? { Authorization: `Bearer ${getToken()}` } : {}),
    ...(latest ? { "X-Consistency-Token": latest } : {}),
  });
  const ws = createWsClient({
    url: url.replace(/^http/, "ws"),
    webSocketImpl, // the browser's WebSocket when left out; Node needs the `ws` package
    connectionParams: headers, // read on every (re)connect
  });
  return new Client({
    url,
    fetchOptions: () => ({ headers: headers() }),
    exchanges: [
      mapExchange({
        onResult(result) {
          for (const payload of Object.values(result.data ?? {})) {
            if (payload && typeof payload.consistencyToken === "string") {
              latest = payload.consistencyToken;
            }
          }
        },
      }),
      cacheExchange,
      fetchExchange,
      subscriptionExchange({
        forwardSubscription: (request) => ({
          subscribe: (sink) => ({ unsubscribe: ws.subscribe({ ...request, query: request.query ?? "" }, sink) }),
        }),
      }),
    ],
  });
}
