"""The GraphQL layer: strawberry types, resolvers, context, permissions and error mapping."""
