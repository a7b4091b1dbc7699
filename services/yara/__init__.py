"""YARA: match the file against a rule set (bundled, or handed over by the updater)."""
