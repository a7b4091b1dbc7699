/*
    A Windows executable carried as base64 text: the first 12 bytes of the usual DOS header
    (MZ 90 00 03 00 00 00 04 00 00 00) encode to "TVqQAAMAAAAEAAAA". Scripts and documents that
    carry one are droppers.
*/

rule Base64_Encoded_PE
{
    meta:
        description = "Base64-encoded Windows PE header (TVqQAAMAAAAEAAAA) embedded in the file"
        author = "Sluice"
        score = 500
        attack_id = "T1027"

    strings:
        $mz = "TVqQAAMAAAAEAAAA" ascii wide
        // The same header reversed, a cheap trick to hide it from the rule above.
        $mz_reversed = "AAAAEAAAAMAAQqVT" ascii wide

    condition:
        any of them
}
