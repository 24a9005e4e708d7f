"""The installer's run sheet: several projects looked up together."""
