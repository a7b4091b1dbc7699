"""Capabilities read from an executable's imported symbols and strings, for ELF and Mach-O alike:
the few combinations that mean a reverse shell, anti-debugging, preload hijacking, a coin miner or
an IoT bot, rather than any single common call."""

from __future__ import annotations

import re

# signature -> (symbols that must all be imported, or None) / (regex over the strings, or None)
SYMBOL_SETS = {
    "reverse_shell": {"socket", "connect", "dup2", "execve"},
    "anti_debug": {"ptrace"},
    "raw_sockets": {"socket", "sendto", "recvfrom", "setsockopt", "inet_addr"},
}
STRING_PATTERNS = {
    "preload_hijack": re.compile(rb"/etc/ld\.so\.preload|LD_PRELOAD="),
    "coin_miner": re.compile(rb"stratum\+(?:tcp|ssl)://|xmrig|cryptonight|randomx", re.I),
    "iot_bot": re.compile(rb"/bin/busybox\s+[A-Z]{4,}|POST /cdn-cgi/|/dev/watchdog|dvrHelper|MIRAI", re.I),
    "persistence_paths": re.compile(rb"/etc/cron\.d/|/etc/rc\.local|/etc/systemd/system/[\w.-]+\.service|Library/LaunchAgents/|Library/LaunchDaemons/"),
    "shell_history_wipe": re.compile(rb"history -c|unset HISTFILE|HISTFILE=/dev/null|rm -rf /var/log"),
}


def capabilities(imported: set[str], data: bytes) -> list[tuple[str, str]]:
    """(signature, evidence) for each capability shown."""
    found = []
    for signature, needed in SYMBOL_SETS.items():
        if needed <= imported:
            found.append((signature, "imports " + ", ".join(sorted(needed))))
    head = data[: 32 * 1024 * 1024]
    for signature, pattern in STRING_PATTERNS.items():
        match = pattern.search(head)
        if match:
            found.append((signature, "string " + match.group().decode("latin-1")[:80]))
    return found
