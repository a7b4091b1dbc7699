"""Wire types, the file-type taxonomy and the limits: the vocabulary every other package speaks.

Nothing here does I/O beyond reading this package's own data files.
"""
