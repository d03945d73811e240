"""The projection pipeline: an arq worker that projects the event log into MongoDB."""
