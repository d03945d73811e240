// Runs graphql-http's GraphQL-over-HTTP audit (serverAudits) against the URL given as the
// first argument, prints every result, and exits 1 on any error or warning not allowed below.
//
//   node audit.mjs http://127.0.0.1:8000/graphql
//
// ALLOWED lists audit ids whose warning we accept; each entry must name the decision record
// (docs/decisions/) that explains it. It is empty: every audit passes.
import { serverAudits } from 'graphql-http';

const ALLOWED = new Map([
  // ['ID', 'docs/decisions/NNNN-...: why'],
]);

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs URL');
  process.exit(2);
}

const results = await Promise.all(serverAudits({ url }).map((audit) => audit.fn()));
let failed = 0;
for (const result of results) {
  const allowed = ALLOWED.get(result.id);
  let line = `${result.status.padEnd(6)} ${result.id} ${result.name}`;
  if (result.status !== 'ok') {
    line += `\n       ${result.reason}`;
    if (result.response) {
      const body = await result.response.text().catch(() => '(unreadable body)');
      line += `\n       ${result.response.status} ${result.response.headers.get('content-type')} ${body.slice(0, 300)}`;
    }
    if ((result.status === 'error' || result.status === 'warn') && !allowed) failed += 1;
    if (allowed) line += `\n       allowed: ${allowed}`;
  }
  console.log(line);
}
const counts = results.reduce((acc, r) => ({ ...acc, [r.status]: (acc[r.status] ?? 0) + 1 }), {});
console.log(`\n${results.length} audits: ${JSON.stringify(counts)}; ${failed} not allowed`);
process.exit(failed ? 1 : 0);
