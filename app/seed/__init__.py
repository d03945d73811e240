"""`shop seed`: a realistic demo shop written through the command bus (plan, then writer)."""
