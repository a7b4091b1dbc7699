"""IOCs: network indicators (URLs, domains, IP addresses, e-mail addresses) found in any file's strings."""
