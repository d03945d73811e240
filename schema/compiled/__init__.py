"""Compiled operations: a query known ahead, prepared once per process (decision 0072).

An operation seen a second time is compiled into a plan (plan.py): its fields collected
once, as graphql-core would collect them, into emitters that turn a read-model document
straight into the response's plain data (readers.py), and a MongoDB projection of just
the fields the selection reads. run.py runs a plan for one request with the same reads,
authorization and consistency bookkeeping as the resolvers. Whatever a plan cannot
serve exactly as the standard path would (an error of any kind, a field with no reader,
an unusual value) abandons it, and the standard path answers instead.
"""
