"""The `sluice` command and the async Python client."""
