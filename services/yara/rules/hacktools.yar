/*
    Mimikatz, the credential-dumping tool: its module commands and its author's signature
    strings survive in the binary, in its PowerShell ports and in most of its rebuilds.
*/

rule HackTool_Mimikatz
{
    meta:
        description = "Mimikatz credential dumping tool strings"
        author = "Sluice"
        score = 1000
        family = "Mimikatz"
        attack_id = "T1003.001"

    strings:
        $cmd1 = "sekurlsa::logonpasswords" nocase ascii wide
        $cmd2 = "sekurlsa::pth" nocase ascii wide
        $cmd3 = "lsadump::sam" nocase ascii wide
        $cmd4 = "lsadump::dcsync" nocase ascii wide
        $cmd5 = "privilege::debug" nocase ascii wide
        $id1 = "gentilkiwi" ascii wide
        $id2 = "mimikatz" nocase ascii wide
        $id3 = "mimilib" nocase ascii wide
        $id4 = "kiwi_msv1_0" ascii wide

    condition:
        2 of ($cmd*) or (any of ($cmd*) and any of ($id*)) or 3 of ($id*)
}
