/*
    VBA that runs by itself when a document opens or closes and starts another program: the
    shape of nearly every macro dropper. Matches macro source (from an olevba extraction, or
    the plain-text macro streams of some formats).
*/

rule VBA_AutoExec_Shell
{
    meta:
        description = "VBA macro with an auto-exec entry point that launches a program (Shell / WScript.Shell / ShellExecute)"
        author = "Sluice"
        score = 500
        attack_id = "T1059.005"

    strings:
        $auto1 = "AutoOpen" nocase ascii wide
        $auto2 = "Auto_Open" nocase ascii wide
        $auto3 = "Document_Open" nocase ascii wide
        $auto4 = "Workbook_Open" nocase ascii wide
        $auto5 = "AutoClose" nocase ascii wide
        $auto6 = "Document_Close" nocase ascii wide
        $auto7 = "AutoExec" nocase ascii wide
        $exec1 = /\bShell\s*\(/ nocase ascii wide
        $exec2 = "WScript.Shell" nocase ascii wide
        $exec3 = "Shell.Application" nocase ascii wide
        $exec4 = "ShellExecute" nocase ascii wide
        $exec5 = "Win32_Process" nocase ascii wide

    condition:
        any of ($auto*) and any of ($exec*)
}
