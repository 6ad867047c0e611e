"""Runs the report's commands one by one under one deadline: each gets its own time cap, cut to
what is left of the whole, and a command that fails or runs out of time is recorded (its
status, exit code, the end of its stderr) while the next still runs."""

import os
import shlex
import subprocess
import sys
import time


class Runner:
    def __init__(self, budget_s, log_path, env=None):
        self.start = time.monotonic()
        self.deadline = self.start + budget_s
        self.log = open(log_path, "w", encoding="utf-8")
        self.env = {**os.environ, **(env or {})}
        self.steps = []

    def left(self):
        return self.deadline - time.monotonic()

    def say(self, text):
        print(f"[{time.monotonic() - self.start:6.1f} s] {text}", file=sys.stderr, flush=True)

    def run(self, name, argv, cap_s, env=None):
        """Runs `argv`; returns the step record (status ok | failed | timeout | skipped)."""
        step = {"name": name, "command": " ".join(shlex.quote(str(a)) for a in argv)}
        limit = min(cap_s, self.left())
        if limit < 5:
            step.update(status="skipped", error=f"out of time ({self.left():.0f} s left of the report's budget)")
            self.say(f"{name}: skipped, out of time")
            self.steps.append(step)
            return step
        self.say(f"{name}: {step['command']}  (cap {limit:.0f} s)")
        t = time.monotonic()
        try:
            p = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=limit,
                               env={**self.env, **(env or {})}, errors="replace")
            step.update(rc=p.returncode, stdout=p.stdout, stderr=p.stderr)
            step["status"] = "ok" if p.returncode == 0 else "failed"
        except subprocess.TimeoutExpired as e:
            out = e.stdout.decode(errors="replace") if isinstance(e.stdout, bytes) else (e.stdout or "")
            err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
            step.update(status="timeout", rc=None, stdout=out, stderr=err, error=f"stopped after {limit:.0f} s")
        except OSError as e:
            step.update(status="failed", rc=None, stdout="", stderr=str(e))
        step["seconds"] = round(time.monotonic() - t, 2)
        self.log.write(f"== {name} ({step['status']}, {step['seconds']} s)\n$ {step['command']}\n")
        self.log.write(step.get("stdout", "") + step.get("stderr", "") + "\n")
        self.log.flush()
        if step["status"] != "ok":
            tail = (step.get("stderr") or "").strip().splitlines()[-3:]
            step.setdefault("error", " | ".join(tail) or f"exit code {step.get('rc')}")
            self.say(f"{name}: {step['status'].upper()} after {step['seconds']} s: {step['error']}")
        else:
            self.say(f"{name}: ok ({step['seconds']} s)")
        # Keep the record small: the stdout that callers parse, the end of stderr.
        step["stderr"] = "\n".join((step.get("stderr") or "").splitlines()[-20:])
        self.steps.append(step)
        return step

    def close(self):
        self.log.close()
