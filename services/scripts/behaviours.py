"""What a script does, read from its peeled text: one heuristic per behaviour, one signature per
way of doing it, so the manifest's `signature_score_map` prices each way and carries its ATT&CK id.

Patterns run on every layer's text after simplification, so `'Down'+'loadString'` and a base64
`-EncodedCommand` are judged by what they spell. They are deliberately about *calls*
(`DownloadString(`, `-urlcache -f http`), not words: an admin script that mentions a URL or
prints "download complete" must not match.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# heuristic ids (the manifest's)
OBFUSCATION, CRADLE, DOWNLOAD_EXECUTE, LOLBIN, AMSI, ETW, PERSISTENCE, DENSITY = 1, 2, 3, 4, 5, 6, 7, 8
STEALTH_FLAGS, EXECUTION, EVASION, CREDENTIALS, IN_MEMORY, WEBSHELL, EXECUTABLE_PAYLOAD, SMUGGLING = 9, 10, 11, 12, 13, 14, 15, 16

_URL = r"(?:https?|ftp)://"
_RAW: dict[int, dict[str, str]] = {
    CRADLE: {
        "ps_webclient": r"\b(?:Net\.WebClient|WebClient)\b[\s\S]{0,400}?\.Download(?:String|File|Data)(?:Async)?\s*\(|\.Download(?:String|File|Data)\s*\(\s*[\"']?" + _URL,
        "ps_invoke_webrequest": r"\b(?:Invoke-WebRequest|iwr|Invoke-RestMethod|irm|wget|curl)\b\s+(?:-Uri\s+)?[\"'(]?\s*" + _URL + r"[^\s\"')]*\.(?:ps1|exe|dll|hta|vbs|js|bat|scr|txt|png|jpg)\b",
        "bits": r"\bStart-BitsTransfer\b|\bbitsadmin\b[^\n]{0,80}/transfer\b",
        "certutil_urlcache": r"\bcertutil(?:\.exe)?\b[^\n]{0,60}-urlcache\b",
        "xmlhttp": r"(?:MSXML2|Microsoft)\.(?:Server)?XMLHTTP|WinHttp\.WinHttpRequest",
        "curl_wget_shell": r"\b(?:curl|wget)(?:\.exe)?\s+[^\n|]{0,80}" + _URL + r"[^\n]{0,120}(?:-o\s|--output\s|-O\b|\|\s*(?:ba|z)?sh\b)",
        "mshta_url": r"\bmshta(?:\.exe)?\s+[\"']?" + _URL,
        "php_fetch": r"\b(?:file_get_contents|fopen|curl_exec)\s*\(\s*[\"']" + _URL,
    },
    DOWNLOAD_EXECUTE: {
        "iex_download": r"\b(?:IEX|Invoke-Expression)\b[\s\S]{0,200}?\.Download(?:String|Data)\b|\.DownloadString\s*\([^)]*\)\s*\)?\s*\|\s*(?:IEX|Invoke-Expression)\b|\b(?:iwr|irm|Invoke-WebRequest|Invoke-RestMethod)\b[^\n|]*\|\s*(?:IEX|Invoke-Expression)\b",
        "download_then_run": r"\.Download(?:File|Data)\s*\([\s\S]{0,600}?(?:Start-Process|\.Run\s*\(|\.Exec\s*\(|ShellExecute|Invoke-Item|&\s*\$|cmd\s*/c|start\s)",
        "stream_save_run": r"ADODB\.Stream[\s\S]{0,1500}?SaveToFile[\s\S]{0,800}?(?:\.Run\b|\.Exec\b|ShellExecute|Shell\s*\()",
        "xmlhttp_run": r"XMLHTTP[\s\S]{0,1500}?(?:responseBody|responseText)[\s\S]{0,1500}?(?:\.Run\b|\.Exec\b|ShellExecute|eval\s*\(|Execute(?:Global)?\s)",
        "pipe_to_shell": r"\b(?:curl|wget)\b[^\n]{0,200}" + _URL + r"[^\n]*\|\s*(?:ba|z)?sh\b",
        "certutil_then_run": r"certutil[^\n]{0,60}-urlcache[\s\S]{0,400}?(?:start\s|call\s|\.exe\b)",
        "bits_then_run": r"bitsadmin[^\n]{0,80}/transfer[\s\S]{0,400}?(?:start\s|call\s|rundll32|\.exe\b)",
    },
    LOLBIN: {
        "mshta": r"\bmshta(?:\.exe)?\s+(?:[\"']?(?:javascript|vbscript):|" + _URL + r"|[^\s]+\.hta\b)",
        "rundll32_script": r"\brundll32(?:\.exe)?\s+[^\n]{0,40}(?:javascript:|url\.dll|shell32\.dll,\s*ShellExec_RunDLL|,\s*#\d+|\\AppData\\|%temp%|\\Temp\\|\\Public\\)",
        "regsvr32_scrobj": r"\bregsvr32(?:\.exe)?\b[^\n]{0,80}/i:[^\s]*(?:" + _URL + r"|scrobj)|\bregsvr32\b[^\n]{0,40}scrobj\.dll",
        "certutil_decode": r"\bcertutil(?:\.exe)?\s+[^\n]{0,20}-decode(?:hex)?\b",
        "wmic_process": r"\bwmic(?:\.exe)?\b[^\n]{0,80}process\s+call\s+create\b|Win32_Process[\s\S]{0,80}\.Create\b",
        "msiexec_remote": r"\bmsiexec(?:\.exe)?\s+[^\n]{0,20}/(?:i|q)\S*\s+[^\n]{0,10}" + _URL,
        "installutil_regasm": r"\b(?:InstallUtil|RegAsm|RegSvcs)(?:\.exe)?\s+[^\n]{0,40}/U\b|\bcmstp(?:\.exe)?\s+[^\n]{0,20}/s\b[^\n]{0,80}\.inf\b|\bodbcconf(?:\.exe)?\s+[^\n]{0,20}/a\s+\{?regsvr|\bforfiles\b[^\n]{0,80}/c\s+[\"']?cmd|\bpcalua(?:\.exe)?\s+-a\b|\bmsxsl(?:\.exe)?\s+\S+\.xml\b",
        "msbuild_inline": r"\bMSBuild(?:\.exe)?\s+[^\n]{0,80}(?:\\Temp\\|%temp%|\\AppData\\|\\Public\\|\.xml\b)",
        "script_host_temp": r"\b(?:wscript|cscript)(?:\.exe)?\s+[^\n]{0,40}(?:%temp%|\\Temp\\|\\AppData\\|\\Public\\|//e:)",
        "powershell_from_other": r"(?:Shell\s*\(|\.Run\s*\(|\.Exec\s*\(|ShellExecute|cmd(?:\.exe)?\s*/c|Start-Process)[^\n]{0,60}\bpowershell",
    },
    AMSI: {"amsi": r"\bAmsiUtils\b|amsiInitFailed|AmsiScanBuffer|amsi\.dll|AmsiOpenSession"},
    ETW: {"etw": r"EtwEventWrite|PSEtwLogProvider|etwProvider|m_enabled[\s\S]{0,60}SetValue|EventProvider[\s\S]{0,80}m_enabled"},
    PERSISTENCE: {
        "run_key": r"\\(?:CurrentVersion)\\(?:Run|RunOnce|RunServices)\b",
        "scheduled_task": r"\bschtasks(?:\.exe)?\s+/create\b|\bRegister-ScheduledTask\b|\bNew-ScheduledTaskAction\b|Schedule\.Service",
        "startup_folder": r"\\Start Menu\\Programs\\Startup\b|shell:startup|\bStartup\b[\"']?\s*\)\s*&|SpecialFolders\(\s*[\"']Startup",
        "wmi_subscription": r"__EventFilter|CommandLineEventConsumer|ActiveScriptEventConsumer|__FilterToConsumerBinding",
        "service_install": r"\bsc(?:\.exe)?\s+create\b|\bNew-Service\b",
        "winlogon": r"\\Winlogon\\(?:Userinit|Shell)\b|Image File Execution Options\\[^\n]{0,80}Debugger",
    },
    STEALTH_FLAGS: {
        "hidden_window": r"\s-w(?:i|in|ind|indo|indow|indows|indowst|indowsty|indowstyl|indowstyle)?\s+(?:hidden|1)\b|WindowStyle\s*=?\s*[\"']?Hidden|\.Run\s*\([^,\n]+,\s*0\b|CreateNoWindow\s*=\s*\$?true",
        "execution_policy_bypass": r"-(?:ep|exec|executionpolicy)\s+(?:bypass|unrestricted)\b",
        "no_profile": r"\s-nop(?:rofile)?\b",
        "non_interactive": r"\s-noni(?:nteractive)?\b",
    },
    EXECUTION: {
        "shell_object": r"WScript\.Shell|Shell\.Application|ShellExecute",
        "invoke_expression": r"\b(?:IEX|Invoke-Expression)\b|\.InvokeScript\s*\(",
        "vba_shell": r"(?<![\w.])Shell\s*\(|\bVBA\.Shell\b|\bCreateObject\s*\(\s*[\"']WScript\.Shell",
        "eval_decoded": r"\beval\s*\(\s*(?:atob|unescape|base64_decode|gzinflate|decodeURIComponent|String\.fromCharCode)\b|\bExecute(?:Global)?\s*\(?\s*(?:StrReverse|Chr|Replace)\b",
        "cmd_c": r"\bcmd(?:\.exe)?\s*/[ck]\s",
    },
    EVASION: {
        "defender_off": r"Set-MpPreference\s+[^\n]{0,40}-Disable\w+\s+\$?true|Add-MpPreference\s+[^\n]{0,10}-Exclusion\w+|DisableAntiSpyware",
        "shadow_copies": r"vssadmin(?:\.exe)?\s+delete\s+shadows|wmic\s+shadowcopy\s+delete|wbadmin\s+delete\s+catalog|Win32_ShadowCopy[\s\S]{0,80}Delete",
        "recovery_off": r"bcdedit[^\n]{0,40}recoveryenabled\s+no|bcdedit[^\n]{0,40}bootstatuspolicy\s+ignoreallfailures",
        "log_clearing": r"\bwevtutil(?:\.exe)?\s+cl\b|\bClear-EventLog\b|Remove-EventLog\b",
        "firewall_off": r"netsh\s+(?:advfirewall\s+set\s+\w+\s+state\s+off|firewall\s+set\s+opmode\s+disable)",
    },
    CREDENTIALS: {
        "mimikatz": r"\bmimikatz\b|sekurlsa::|Invoke-Mimikatz|kerberos::golden|lsadump::",
        "lsass_dump": r"comsvcs(?:\.dll)?[,\s]+MiniDump|procdump[^\n]{0,40}lsass|Out-Minidump|MiniDumpWriteDump",
        "hive_save": r"\breg(?:\.exe)?\s+save\s+hklm\\(?:sam|security|system)\b",
        "browser_store": r"\\Login Data\b|\\Local State\b[\s\S]{0,200}encrypted_key|logins\.json",
    },
    IN_MEMORY: {
        "assembly_load": r"\[(?:System\.)?Reflection\.Assembly\]::(?:Load|LoadFile|UnsafeLoadFrom)\s*\(",
        "shellcode_runner": r"VirtualAlloc[\s\S]{0,800}(?:CreateThread|WriteProcessMemory|RtlMoveMemory|Marshal\]::Copy)|GetDelegateForFunctionPointer",
        "add_type_pinvoke": r"Add-Type[\s\S]{0,400}DllImport[\s\S]{0,200}kernel32",
    },
    WEBSHELL: {
        "php_eval_input": r"\b(?:eval|assert|system|passthru|shell_exec|exec|popen|proc_open|preg_replace)\s*\([^;]{0,80}\$_(?:GET|POST|REQUEST|COOKIE|SERVER)\b",
        "php_decoded_eval": r"\beval\s*\(\s*(?:gzinflate|base64_decode|str_rot13|gzuncompress)\s*\(",
        "asp_eval_request": r"\b(?:eval|Execute(?:Global)?)\s*\(?\s*Request(?:\.Form|\.QueryString|\.Item)?\s*[\(\[]",
        "jsp_exec_param": r"Runtime\.getRuntime\(\)\.exec\s*\(\s*request\.getParameter",
    },
    SMUGGLING: {
        "blob_download": r"new\s+Blob\s*\([\s\S]{0,2000}?(?:createObjectURL|msSaveOrOpenBlob|msSaveBlob)[\s\S]{0,800}?(?:\.download\s*=|\.click\s*\(|msSave)",
        "data_uri_download": r"\.download\s*=\s*[\"'][^\"']+\.(?:exe|zip|iso|img|js|hta|vbs|lnk|msi|scr|one)[\"'][\s\S]{0,600}?(?:atob|base64)",
    },
}
PATTERNS: dict[int, dict[str, re.Pattern[str]]] = {
    heur: {name: re.compile(p, re.I) for name, p in sigs.items()} for heur, sigs in _RAW.items()
}
# Words (lower case) one of which every match of a signature contains: a signature's regex runs
# only on text holding one of them. Case-insensitive regexes over megabytes are slow (seconds for
# the whole table on 2 MiB); a substring test is not, and most text holds none of these words.
ANCHORS: dict[str, tuple[str, ...]] = {
    "ps_webclient": (".download",), "ps_invoke_webrequest": ("invoke-webrequest", "iwr", "invoke-restmethod", "irm", "wget", "curl"),
    "bits": ("start-bitstransfer", "bitsadmin"), "certutil_urlcache": ("certutil",), "xmlhttp": ("xmlhttp", "winhttp"),
    "curl_wget_shell": ("curl", "wget"), "mshta_url": ("mshta",), "php_fetch": ("file_get_contents", "fopen", "curl_exec"),
    "iex_download": ("iex", "invoke-expression"), "download_then_run": (".download",), "stream_save_run": ("adodb.stream",),
    "xmlhttp_run": ("xmlhttp",), "pipe_to_shell": ("curl", "wget"), "certutil_then_run": ("certutil",), "bits_then_run": ("bitsadmin",),
    "mshta": ("mshta",), "rundll32_script": ("rundll32",), "regsvr32_scrobj": ("regsvr32",), "certutil_decode": ("certutil",),
    "wmic_process": ("wmic", "win32_process"), "msiexec_remote": ("msiexec",),
    "installutil_regasm": ("installutil", "regasm", "regsvcs", "cmstp", "odbcconf", "forfiles", "pcalua", "msxsl"),
    "msbuild_inline": ("msbuild",), "script_host_temp": ("wscript", "cscript"), "powershell_from_other": ("powershell",),
    "amsi": ("amsi",), "etw": ("etweventwrite", "psetwlogprovider", "etwprovider", "m_enabled"),
    "run_key": ("currentversion",), "scheduled_task": ("schtasks", "scheduledtask", "schedule.service"), "startup_folder": ("startup",),
    "wmi_subscription": ("__eventfilter", "eventconsumer", "__filtertoconsumerbinding"), "service_install": ("create", "new-service"),
    "winlogon": ("winlogon", "image file execution options"),
    "hidden_window": ("-w", "windowstyle", ".run", "createnowindow"), "execution_policy_bypass": ("-ep", "-exec"),
    "no_profile": ("-nop",), "non_interactive": ("-noni",),
    "shell_object": ("wscript.shell", "shell.application", "shellexecute"), "invoke_expression": ("iex", "invoke-expression", "invokescript"),
    "vba_shell": ("shell",), "eval_decoded": ("eval", "execute"), "cmd_c": ("cmd",),
    "defender_off": ("mppreference", "disableantispyware"), "shadow_copies": ("vssadmin", "shadowcopy", "wbadmin"),
    "recovery_off": ("bcdedit",), "log_clearing": ("wevtutil", "clear-eventlog", "remove-eventlog"), "firewall_off": ("netsh",),
    "mimikatz": ("mimikatz", "sekurlsa::", "kerberos::golden", "lsadump::"),
    "lsass_dump": ("comsvcs", "procdump", "out-minidump", "minidumpwritedump"), "hive_save": ("hklm\\",),
    "browser_store": ("login data", "local state", "logins.json"),
    "assembly_load": ("reflection.assembly",), "shellcode_runner": ("virtualalloc", "getdelegateforfunctionpointer"),
    "add_type_pinvoke": ("add-type",),
    "php_eval_input": ("$_get", "$_post", "$_request", "$_cookie", "$_server"), "php_decoded_eval": ("gzinflate", "base64_decode", "str_rot13", "gzuncompress"),
    "asp_eval_request": ("eval", "execute"), "jsp_exec_param": ("runtime.getruntime",),
    "blob_download": ("blob",), "data_uri_download": (".download",),
}
_ALL_ANCHORS = frozenset(word for words in ANCHORS.values() for word in words)


@dataclass
class Behaviour:
    heur_id: int
    signature: str
    layer: int
    evidence: str  # the matched text, shortened


def _shorten(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def behaviours(layers: list[tuple[int, str]], max_scan: int = 2 * 1024 * 1024) -> list[Behaviour]:
    """Each (heuristic, signature) found in any layer's text, once, with the first layer that shows it."""
    found: dict[tuple[int, str], Behaviour] = {}
    for number, text in layers:
        head = text[:max_scan]
        lower = head.lower()
        present = {word for word in _ALL_ANCHORS if word in lower}  # each word searched once, not once per signature
        for heur, signatures in PATTERNS.items():
            for name, pattern in signatures.items():
                if (heur, name) in found or present.isdisjoint(ANCHORS[name]):
                    continue
                match = pattern.search(head)
                if match:
                    found[(heur, name)] = Behaviour(heur, name, number, _shorten(match.group()))
    return list(found.values())


_OBFUSCATION_TOKENS = re.compile(r"`[a-z]|\^[a-z]|\[char\]|Chr[W$]?\(|fromCharCode|['\"]\s*[+&]\s*['\"]|\\x[0-9a-f]{2}|%[0-9a-f]{2}|-f\s*['\"]|-bxor|StrReverse|\.reverse\(\)", re.I)


def obfuscation_density(text: str) -> float:
    """Obfuscation constructs per 100 characters of script (0 for a short or empty text)."""
    if len(text) < 200:
        return 0.0
    return 100.0 * len(_OBFUSCATION_TOKENS.findall(text[:1_000_000])) / min(len(text), 1_000_000)
