#!/usr/bin/env python3
"""Rewrites every `## rampart …` section of docs/cli.md with the binary's `--help` output.
Usage: python3 scripts/regen-cli-md.py [path/to/rampart]   (default: target/debug/rampart)
The test `docs_cli_md_matches_help` in tests/tests/cli.rs checks the result."""
import os, re, subprocess, sys

binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.environ.get("CARGO_TARGET_DIR", "target"), "debug", "rampart")
path = "docs/cli.md"
text = open(path).read()


def section(m):
    title = m.group(1)
    out = subprocess.run([binary] + title.split()[1:] + ["--help"], capture_output=True, text=True, check=True).stdout.rstrip("\n")
    return f"## {title}\n\n```\n{out}\n```\n"


open(path, "w").write(re.sub(r"## (rampart[^\n]*)\n\n```\n.*?```\n", section, text, flags=re.S))
