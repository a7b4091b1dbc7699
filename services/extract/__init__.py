"""Extract: unpack zip, tar (plain or compressed) and single-stream gzip/bzip2/xz into children.

Archives are hostile input: every member is read as bytes under size, ratio and count limits,
and nothing is ever written to disk under a name taken from the archive.
"""
