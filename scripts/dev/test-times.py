#!/usr/bin/env python3
"""Per-test times from `cargo test` logs run with libtest's `--report-time`.

scripts/rust-tests.sh runs the Rust tests with `-Z unstable-options --report-time`
(RUSTC_BOOTSTRAP=1 in the test binaries' environment lets the stable harness take the flag),
which ends each test's line with its time:
`test golden::cpu_embeddings_match_the_reference ... ok <6.604s>`. This prints them as one
Markdown table, slowest first, with each test binary's total, so that every CI log carries the
table docs/development.md shows.

    scripts/dev/test-times.py LOG... [--top N]   (N rows, the rest summed in one row; default all)
"""
import re
import sys
from collections import defaultdict

RUNNING = re.compile(r"^\s*Running (?:unittests )?(\S+) \((?:.*/)?([^/()]+?)(?:-[0-9a-f]{16})?\)\s*$")
DOC = re.compile(r"^\s*Doc-tests (\S+)")
TEST = re.compile(r"^test (.+?) \.\.\. (ok|FAILED|ignored)(?: <([0-9.]+)s>)?\s*$")


def main():
    args = sys.argv[1:]
    if not args or args[0].startswith("-"):
        sys.exit(__doc__.strip())
    top = None
    if "--top" in args:
        i = args.index("--top")
        try:
            top = int(args[i + 1])
        except (IndexError, ValueError):
            sys.exit("test-times.py: --top takes a number")
        del args[i:i + 2]
    rows = []
    untimed = 0
    for path in args:
        binary = "?"
        with open(path, encoding="utf-8", errors="replace") as log:
            for line in log:
                m = RUNNING.match(line)
                if m:
                    binary = m.group(2)
                    continue
                m = DOC.match(line)
                if m:
                    binary = f"doc-tests {m.group(1)}"
                    continue
                m = TEST.match(line)
                if not m:
                    continue
                name, outcome, secs = m.groups()
                if secs is None:
                    untimed += 1
                    secs = "0"
                rows.append((float(secs), binary, name, outcome))
    if not rows:
        sys.exit(f"test-times.py: no test lines in {', '.join(args)}")
    rows.sort(key=lambda r: -r[0])
    print("| test | binary | s |")
    print("| --- | --- | ---: |")
    shown = rows if top is None else rows[:top]
    for secs, binary, name, outcome in shown:
        mark = "" if outcome == "ok" else f" ({outcome})"
        print(f"| `{name}`{mark} | {binary} | {secs:.1f} |")
    rest = rows[len(shown):]
    if rest:
        print(f"| {len(rest)} other tests | | {sum(r[0] for r in rest):.1f} in all |")
    totals = defaultdict(lambda: [0, 0.0])
    for secs, binary, _, _ in rows:
        totals[binary][0] += 1
        totals[binary][1] += secs
    print()
    for binary, (n, secs) in sorted(totals.items(), key=lambda kv: -kv[1][1]):
        print(f"{binary}: {n} tests, {secs:.1f} s")
    if untimed:
        print(f"({untimed} test lines carried no time: run with -Z unstable-options --report-time)")


if __name__ == "__main__":
    main()
