/*
    PHP web shells hide their code as base64 and evaluate it at run time; legitimate PHP
    almost never evaluates decoded data.
*/

rule PHP_Webshell_Eval_Base64
{
    meta:
        description = "PHP evaluates base64-decoded code (eval(base64_decode(...))), typical of web shells"
        author = "Sluice"
        score = 500
        attack_id = "T1505.003"

    strings:
        $php = "<?php" nocase
        $eval = /(eval|assert)\s*\(\s*(gzinflate\s*\(\s*|str_rot13\s*\(\s*|gzuncompress\s*\(\s*)*base64_decode\s*\(/ nocase

    condition:
        $php and $eval
}
