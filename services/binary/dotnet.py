""".NET assemblies through dnfile: the assembly's identity, the assemblies it references, its
managed resources (handed on as children: droppers keep their payload there), its P/Invoke
imports, the framework members it calls that matter for triage, and obfuscators' marks.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import dnfile

from services.binary.common import DOTNET_API, DOTNET_OBFUSCATOR, Finding, add

# (namespace.type, member or "*") -> signature
SUSPICIOUS_MEMBERS = {
    ("System.Reflection.Assembly", "Load"): "reflection_load",
    ("System.Reflection.Assembly", "LoadFile"): "reflection_load",
    ("System.Reflection.MethodBase", "Invoke"): "reflection_invoke",
    ("System.Diagnostics.Process", "Start"): "process_start",
    ("System.Net.WebClient", "DownloadData"): "web_download",
    ("System.Net.WebClient", "DownloadString"): "web_download",
    ("System.Net.WebClient", "DownloadFile"): "web_download",
    ("System.Net.Http.HttpClient", "GetByteArrayAsync"): "web_download",
    ("System.Runtime.InteropServices.Marshal", "GetDelegateForFunctionPointer"): "function_pointer",
    ("System.Runtime.InteropServices.Marshal", "Copy"): "marshal_copy",
    ("Microsoft.Win32.Registry", "SetValue"): "registry_write",
    ("Microsoft.Win32.RegistryKey", "SetValue"): "registry_write",
    ("System.Convert", "FromBase64String"): "base64_decode",
    ("System.Security.Cryptography.RijndaelManaged", "*"): "crypto",
    ("System.Security.Cryptography.Aes", "Create"): "crypto",
    ("System.Diagnostics.Debugger", "get_IsAttached"): "anti_debug",
}
SUSPICIOUS_PINVOKE = {
    "VirtualAlloc": "shellcode_api", "VirtualAllocEx": "injection_api", "WriteProcessMemory": "injection_api",
    "CreateRemoteThread": "injection_api", "NtUnmapViewOfSection": "injection_api", "CreateThread": "shellcode_api",
    "SetWindowsHookEx": "keylogger_api", "GetAsyncKeyState": "keylogger_api", "IsDebuggerPresent": "anti_debug",
    "CheckRemoteDebuggerPresent": "anti_debug", "AmsiScanBuffer": "amsi_tamper",
}
OBFUSCATOR_MARKS = {
    "ConfusedByAttribute": "ConfuserEx", "DotfuscatorAttribute": "Dotfuscator", "SmartAssemblyAttribute": "SmartAssembly",
    "PoweredByAttribute": "SmartAssembly", "BabelObfuscatorAttribute": "Babel", "ObfuscatedByGoliath": "Goliath",
    "EazfuscatorAttribute": "Eazfuscator", "YanoAttribute": "Yano", "NineRays.Obfuscator": "Spices.Net",
    "CryptoObfuscator": "Crypto Obfuscator", "ObfuscatedByAgileDotNetAttribute": "Agile.NET", "Xenocode.Client.Attributes": "Xenocode",
}


@dataclass
class Resource:
    name: str
    data: bytes


@dataclass
class DotNetReport:
    assembly: dict[str, str]
    references: list[str]
    resources: list[Resource]
    pinvoke: list[str]
    findings: dict[int, Finding] = field(default_factory=dict)


def _rows(table) -> list:
    return list(table.rows) if table is not None else []


def read(data: bytes) -> DotNetReport | None:
    """The assembly's report, or None when the PE has no .NET metadata."""
    pe = dnfile.dnPE(data=data)
    net = pe.net
    if net is None or net.mdtables is None:
        return None
    tables = net.mdtables
    assembly: dict[str, str] = {"runtime": (net.metadata.struct.Version or b"").rstrip(b"\x00").decode("latin-1")}
    for row in _rows(tables.Assembly)[:1]:
        assembly.update({"name": str(row.Name), "version": f"{row.MajorVersion}.{row.MinorVersion}.{row.BuildNumber}.{row.RevisionNumber}",
                         "culture": str(row.Culture) or "neutral"})
    references = [f"{row.Name} {row.MajorVersion}.{row.MinorVersion}.{row.BuildNumber}.{row.RevisionNumber}" for row in _rows(tables.AssemblyRef)]
    resources = [Resource(str(r.name), r.data) for r in (net.resources or []) if isinstance(r.data, bytes) and r.data]
    report = DotNetReport(assembly, references, resources, [])
    for row in _rows(tables.MemberRef):
        parent = getattr(row.Class, "row", None)
        type_name = f"{getattr(parent, 'TypeNamespace', '')}.{getattr(parent, 'TypeName', '')}"
        member = str(row.Name)
        signature = SUSPICIOUS_MEMBERS.get((type_name, member)) or SUSPICIOUS_MEMBERS.get((type_name, "*"))
        if signature:
            add(report.findings, DOTNET_API, "Suspicious .NET API use", signature, f"{type_name}::{member}")
    for row in _rows(tables.ImplMap):
        scope = getattr(row.ImportScope, "row", None)
        name = str(row.ImportName)
        report.pinvoke.append(f"{getattr(scope, 'Name', '?')}!{name}")
        if name in SUSPICIOUS_PINVOKE:
            add(report.findings, DOTNET_API, "Suspicious .NET API use", SUSPICIOUS_PINVOKE[name], f"P/Invoke {getattr(scope, 'Name', '?')}!{name}")
    type_names = {str(r.TypeName) for r in _rows(tables.TypeRef)} | {str(r.TypeName) for r in _rows(tables.TypeDef)}
    type_names |= {f"{r.TypeNamespace}.{r.TypeName}" for r in _rows(tables.TypeRef)}
    for mark, tool in OBFUSCATOR_MARKS.items():
        if mark in type_names:
            add(report.findings, DOTNET_OBFUSCATOR, ".NET obfuscator", tool.lower().replace(" ", "_").replace(".", ""), f"{mark}: {tool}")
    return report
