"""Cost of the shields and DLP on 1 MB of adversarial and of ordinary text.

    uv run --no-sync python bench/bench_shields.py [--size 1000000] [--rounds 3]

Prints, per detector, the milliseconds one call takes on each input (the best of
``--rounds``; the machine is shared). "Adversarial" inputs are the shapes that
made the old backtracking patterns take seconds: long runs of the characters a
pattern loops on (``a@a@…``, ``a.a.…@``, whitespace runs, ``http://`` + a long
host-like run, ``${${…``), and inputs with as many candidate matches as
possible. "Ordinary" is prose with numbers, paths, URLs and the odd e-mail.

Targets: at most 100 ms per detector per MB, and at most 0.1 s per MB for the
MCP result shields overall (``shield_result`` with the default modes).
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable
from typing import Any

from gatekit_mcp.config import ShieldsConfig
from gatekit_mcp.shields import shield_result

from gatekit.dlp import mask_value, scan_value
from gatekit.policy.shields import (
    MAX_INSPECTED_CHARS,
    find_internal_address,
    find_path_traversal,
    find_shell_injection,
)

WORDS = [
    *("the", "report", "for", "May", "lists", "42", "invoices,", "see", "/srv/data/q2.csv"),
    *("and", "https://example.com/a?b=1", "details;", "contact", "ops@example.org.", "Totals:"),
    *("1,234.50", "EUR", "(v2.0.1)", "at", "12:30", "on", "2024-05-01", "C:\\reports"),
]


def ordinary(size: int) -> str:
    rng = random.Random(7)
    lines: list[str] = []
    length = 0
    while length < size:
        line = " ".join(rng.choice(WORDS) for _ in range(14))
        lines.append(line)
        length += len(line) + 1
    return "\n".join(lines)[:size]


def repeat(unit: str, size: int, tail: str = "") -> str:
    return (unit * (size // len(unit) + 1))[: size - len(tail)] + tail


def dlp_inputs(size: int) -> dict[str, str]:
    return {
        "a@a@a@…": repeat("a@", size),
        "a.a.a.…@": repeat("a.", size, "@"),
        "eyJ-eyJ-…": repeat("eyJ-", size),
        "sk-sk-…!": repeat("sk-", size, "!"),
        "password=… x": repeat("password=", size),
        "-----BEGIN …": repeat("-----BEGIN A", size),
        "spaces": repeat(" ", size),
        "dense e-mails": repeat("a@b.cc ", size),
        "ordinary": ordinary(size),
    }


def ssrf_inputs(size: int) -> dict[str, str]:
    return {
        "http:// + host run": "http://" + repeat("a", size - 7),
        "http:// + digit run": "http://" + repeat("1.", size - 7),
        "scheme run + ://": repeat("a", size - 13, "://127.0.0.1"),
        "many URLs": repeat("a://b ", size),
        "many host:port": repeat("10.0.0.1:1 ", size),
        "%25 chains": repeat("%2525", size),
        "ordinary": ordinary(size),
    }


def shell_inputs(size: int) -> dict[str, str]:
    return {
        "${${…": repeat("${", size),
        "newlines then !": repeat("\n", size, "!"),
        "curl curl …": repeat("curl ", size),
        "'a''a'…": repeat("'a'", size),
        '"a`b"…': repeat('"a`b"', size),
        "ordinary": ordinary(size),
    }


def path_inputs(size: int) -> dict[str, str]:
    return {
        "./././…": repeat("./", size),
        "%2e%2e%2f…": repeat("%2e%2f", size),
        "ordinary": ordinary(size),
    }


def mcp_inputs(size: int) -> dict[str, str]:
    return {
        "newline run": repeat("\n", size, "x"),
        "space-newline run": repeat(" \n", size, "x"),
        "ignore ignore …": repeat("ignore all ", size),
        "System: lines": repeat("System: hi\n", size),
        "dense e-mails": repeat("a@b.cc ", size),
        "ordinary": ordinary(size),
    }


def best_ms(call: Callable[[], Any], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        call()
        times.append((time.perf_counter() - start) * 1000)
    return min(times)


def result_of(text: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], "isError": False}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    size = min(args.size, MAX_INSPECTED_CHARS)
    config = ShieldsConfig()
    suites: list[tuple[str, dict[str, str], dict[str, Callable[[str], Any]]]] = [
        ("DLP (client side)", dlp_inputs(size), {"scan_value": scan_value, "mask": mask_value}),
        ("SSRF shield", ssrf_inputs(size), {"find_internal_address": find_internal_address}),
        ("shell shield", shell_inputs(size), {"find_shell_injection": find_shell_injection}),
        ("path shield", path_inputs(size), {"find_path_traversal": find_path_traversal}),
        (
            "MCP result shields",
            mcp_inputs(size),
            {"shield_result": lambda text: shield_result(result_of(text), config)},
        ),
    ]
    print(f"{size:,} characters per input, best of {args.rounds} rounds\n")
    for title, inputs, detectors in suites:
        print(title)
        for name, detect in detectors.items():
            for label, text in inputs.items():
                ms = best_ms(lambda: detect(text), args.rounds)  # noqa: B023
                print(f"  {name:22} {label:22} {ms:9.1f} ms")
        print()


if __name__ == "__main__":
    main()
