import "pe"

/*
    UPX-packed Windows executables. UPX itself is legitimate and common, so this is
    informational: it tells the analyst why the other static services see so little.
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
        pe.is_pe and for any section in pe.sections : (section.name == "UPX0" or section.name == "UPX1")
}
