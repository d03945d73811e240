// Apollo Client 3 for the shop API: the set-up docs/clients.md shows, verbatim.
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, split } from "@apollo/client/core/index.js";
import { createPersistedQueryLink } from "@apollo/client/link/persisted-queries/index.js";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions/index.js";
import { getMainDefinition, relayStylePagination } from "@apollo/client/utilities/index.js";
import { createClient } from "graphql-ws";

// Read-your-writes: every mutation result carries a consistencyToken; sending the latest
// one back (header X-Consistency-Token, or connectionParams on the websocket) means no
// read answers from state older than your own write.
export function consistencyLink() {
  let latest = null;
  const link = new ApolloLink((operation, forward) => {
    if (latest) {
      operation.setContext(({ headers = {} }) => ({
        headers: { ...headers, "X-Consistency-Token": latest },
      }));
    }
    return forward(operation).map((result) => {
      for (const payload of Object.values(result.data ?? {})) {
        if (payload && typeof payload.consistencyToken === "string") {
          latest = payload.consistencyToken;
        }
      }
      return result;
    });
  });
  return { link, latest: () => latest };
}

// Automatic persisted queries: a query travels as its sha256 (over GET, cacheable) once the
// server has seen its text; crypto.subtle is in browsers and in Node 20.
async function sha256(text) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((byte) => byte.toString(16).padStart(2, "0")).join("");
}

export function shopApolloClient({ url, getToken, webSocketImpl, possibleTypes = {}, fetch }) {
  const consistency = consistencyLink();
  const auth = new ApolloLink((operation, forward) => {
    const token = getToken();
    if (token) {
      operation.setContext(({ headers = {} }) => ({
        headers: { ...headers, Authorization: `Bearer ${token}` },
      }));
    }
    return forward(operation);
  });
  const persisted = createPersistedQueryLink({ sha256, useGETForHashedQueries: true });
  const http = new HttpLink({ uri: url, fetch });
  const ws = new GraphQLWsLink(
    createClient({
      url: url.replace(/^http/, "ws"),
      webSocketImpl, // the browser's WebSocket when left out; Node needs the `ws` package
      // Read on every (re)connect, so a new log-in or write is picked up.
      connectionParams: () => ({
        Authorization: getToken() ? `Bearer ${getToken()}` : undefined,
        "X-Consistency-Token": consistency.latest() ?? undefined,
      }),
    }),
  );
  const isSubscription = ({ query }) => {
    const definition = getMainDefinition(query);
    return definition.kind === "OperationDefinition" && definition.operation === "subscription";
  };
  return new ApolloClient({
    link: split(isSubscription, ws, ApolloLink.from([auth, consistency.link, persisted, http])),
    cache: new InMemoryCache({
      // Result unions (e.g. PlaceOrderResult): `shop schema possible-types` writes this map.
      possibleTypes,
      typePolicies: {
        Query: { fields: { myOrders: relayStylePagination(), products: relayStylePagination(["search"]) } },
      },
    }),
  });
}
