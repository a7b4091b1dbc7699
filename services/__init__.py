"""The service SDK (`services.sdk`) and the built-in services, one folder each with its manifest."""
