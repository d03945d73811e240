// Apollo Client's BatchHttpLink against a server with BATCHING on (URL as the argument):
// three queries issued together travel in one POST and each gets its own result, in order.
// Exits 1, saying what went wrong, when they do not.
import { ApolloClient, InMemoryCache, gql } from '@apollo/client/core/index.js';
import { BatchHttpLink } from '@apollo/client/link/batch-http/index.js';

const url = process.argv[2];
let posts = 0;
const countingFetch = (input, init) => {
  posts += 1;
  return fetch(input, init);
};

const client = new ApolloClient({
  link: new BatchHttpLink({ uri: url, fetch: countingFetch, batchMax: 10, batchInterval: 20 }),
  cache: new InMemoryCache(),
});

const names = ['First', 'Second', 'Third'];
const results = await Promise.all(
  names.map((name) =>
    client.query({ query: gql(`query ${name} { __typename }`), fetchPolicy: 'network-only' }),
  ),
);

const problems = [];
if (posts !== 1) problems.push(`expected one POST for the batch, saw ${posts}`);
results.forEach((result, index) => {
  if (result.errors?.length || result.data?.__typename !== 'Query') {
    problems.push(`${names[index]}: ${JSON.stringify(result)}`);
  }
});
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log(`batched ${results.length} queries in ${posts} request`);
