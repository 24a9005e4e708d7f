"""Reading the audit log: lookup history, its summary, the CSV export and review records."""
