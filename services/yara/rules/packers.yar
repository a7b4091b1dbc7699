/*
    UPX-packed Windows executables. UPX itself is legitimate and common, so this is
    informational: it tells the analyst why the other static services see so little.

    The section table is read with uint reads rather than `import "pe"`: the pe module builds
    its whole object tree for every file scanned, whatever its type, which cost 0.35 ms of the
    0.4 ms a 1 KiB file took against all the bundled rules. The condition is what pe.is_pe and
    pe.sections[i].name say: an MZ header whose e_lfanew points at "PE\0\0", and a section
    header (40 bytes each, after the 24-byte file header and the optional header) whose name,
    up to its first NUL, is UPX0 or UPX1.
*/

rule PE_UPX_Packed
{
    meta:
        description = "Windows PE with UPX section names (UPX0/UPX1), packed with UPX"
        author = "Sluice"
        score = 0
        category = "info"
        attack_id = "T1027.002"

    condition:
        uint16(0) == 0x5A4D and uint32(uint32(0x3C)) == 0x00004550 and
        for any i in (0 .. uint16(uint32(0x3C) + 6) - 1) : (
            (uint32(uint32(0x3C) + 24 + uint16(uint32(0x3C) + 20) + i * 40) == 0x30585055 or  // "UPX0"
             uint32(uint32(0x3C) + 24 + uint16(uint32(0x3C) + 20) + i * 40) == 0x31585055) and  // "UPX1"
            uint8(uint32(0x3C) + 24 + uint16(uint32(0x3C) + 20) + i * 40 + 4) == 0
        )
}
