"""Solar Proof: the API client, its errors, and the sandbox that stands in for it."""
