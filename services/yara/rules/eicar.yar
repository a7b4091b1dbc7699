/*
    The EICAR anti-malware test file: harmless, but every scanner must report it, so it is the
    end-to-end check that YARA is wired in and that a malicious verdict reaches the summary.
*/

rule EICAR_Test_File
{
    meta:
        description = "EICAR anti-malware test string"
        author = "Sluice"
        score = 1000
        family = "EICAR-Test-File"
        reference = "https://www.eicar.org/download-anti-malware-testfile/"

    strings:
        $eicar = "X5O!P%@AP[4\\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"

    condition:
        $eicar in (0..128)
}
