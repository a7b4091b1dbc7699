"""Extract: unpack archives, disk images and installers (zip, 7z, tar and single streams, RAR,
ISO/UDF, DMG, CAB, MSI, cpio, ar/.deb, xar, VHD/VHDX and raw disks) into children.

Archives are hostile input: every member is read as bytes under size, ratio and count limits,
and nothing is ever written to disk under a name taken from the archive.
"""
