"""One module per section of the guide; each step finds, creates or updates, then waits."""
