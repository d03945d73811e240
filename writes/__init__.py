"""The command side: PostgreSQL write model, commands, handlers, domain rules and the event log."""
