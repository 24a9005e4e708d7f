"""The audit log's integrity: hashing, signing, appending, checkpoints, verifying, pruning."""
