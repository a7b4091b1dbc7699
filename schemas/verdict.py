"""Score → verdict, with Assemblyline's thresholds."""

VERDICTS: tuple[tuple[int, str], ...] = (
    (1000, "malicious"),
    (700, "highly_suspicious"),
    (300, "suspicious"),
    (0, "info"),
)


def verdict_for(score: int) -> str:
    for threshold, name in VERDICTS:
        if score >= threshold:
            return name
    return "safe"
