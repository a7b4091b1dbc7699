/*
    PowerShell that fetches code and runs it in memory: the "download cradle" of most
    script-based droppers, and PowerShell launched with an encoded command.
*/

rule PowerShell_Download_Cradle
{
    meta:
        description = "PowerShell downloads content and executes it (IEX + WebClient/Invoke-WebRequest)"
        author = "Sluice"
        score = 500
        attack_id = "T1059.001, T1105"

    strings:
        $exec1 = "IEX" nocase ascii wide
        $exec2 = "Invoke-Expression" nocase ascii wide
        $dl1 = "DownloadString" nocase ascii wide
        $dl2 = "DownloadData" nocase ascii wide
        $dl3 = "Net.WebClient" nocase ascii wide
        $dl4 = "Invoke-WebRequest" nocase ascii wide
        $dl5 = "Invoke-RestMethod" nocase ascii wide
        $dl6 = "Start-BitsTransfer" nocase ascii wide

    condition:
        any of ($exec*) and any of ($dl*)
}

rule PowerShell_Encoded_Command
{
    meta:
        description = "PowerShell started with an encoded command and a hidden window"
        author = "Sluice"
        score = 300
        attack_id = "T1059.001, T1027"

    strings:
        $ps = "powershell" nocase ascii wide
        $enc = /\s-e(nc(odedcommand)?)?\s+[A-Za-z0-9+\/]{20}/ nocase ascii wide
        $hidden = /\s-w(indowstyle)?\s+hidden/ nocase ascii wide

    condition:
        $ps and $enc and $hidden
}
