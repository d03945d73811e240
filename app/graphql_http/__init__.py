"""GraphQL over HTTP (graphql.github.io/graphql-over-http): what ShopGraphQL adds to
strawberry's view. Content negotiation, JSON error bodies with codes for every refusal,
the spec's status codes, cache headers on GET and opt-in, bounded batches."""
