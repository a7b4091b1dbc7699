"""PE: the structure of a Windows executable (pefile), and the classic signs of packing and tampering."""
