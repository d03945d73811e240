// graphql-sse for the shop API: the set-up docs/clients.md shows, verbatim.
import { createClient } from "graphql-sse";

export function shopSseClient({ url, getToken, getConsistencyToken, singleConnection = false }) {
  return createClient({
    url,
    singleConnection, // true: one stream for every operation (a PUT reserves it)
    // A function, so each request sends the current token; it returns a fresh object,
    // since in single connection mode the client adds its stream token to it.
    headers: () => ({
      ...(getToken() ? { Authorization: `Bearer ${getToken()}` } : {}),
      ...(getConsistencyToken() ? { "X-Consistency-Token": getConsistencyToken() } : {}),
    }),
  });
}
