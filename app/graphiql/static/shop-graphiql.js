// Starts GraphiQL on the page app/graphiql serves: every script is local (no CDN), and the
// Content-Security-Policy allows no inline script, so this file does what an inline
// <script> would. Queries go to the page's own /graphql; subscriptions over graphql-ws on
// the same path. The headers pane's headers reach the websocket as its connectionParams.
(function () {
  "use strict";
  var root = document.getElementById("graphiql");
  var endpoint = new URL(root.dataset.endpoint, window.location.href);
  var subscriptions = new URL(endpoint.href);
  subscriptions.protocol = endpoint.protocol === "https:" ? "wss:" : "ws:";
  // #query=...&variables=...&headers=... open the editors with those texts (links to
  // share). In the fragment, not the query string: a browser never sends it, so a token in
  // `headers` reaches no server log, and ?query= stays a GraphQL GET request.
  var params = new URLSearchParams(window.location.hash.slice(1));
  var given = function (name) {
    var value = params.get(name);
    return value === null ? undefined : value;
  };
  var props = {
    fetcher: GraphiQL.createFetcher({
      url: endpoint.href,
      subscriptionUrl: subscriptions.href,
    }),
    plugins: [GraphiQLPluginExplorer.explorerPlugin()],
    defaultQuery: root.dataset.defaultQuery,
    query: given("query"),
    variables: given("variables"),
    headers: given("headers"),
    // A bearer token typed into the headers pane stays in this tab, not in localStorage.
    shouldPersistHeaders: false,
    defaultEditorToolsVisibility: given("headers") !== undefined ? "headers" : false,
  };
  ReactDOM.createRoot(root).render(React.createElement(GraphiQL, props));
})();
