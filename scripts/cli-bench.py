#!/usr/bin/env python3
"""Whole-process wall time of `ff create` against bare `git worktree add`,
interleaved round by round on one 200-file repository (file creation on
this disk slows after mass deletion, so the two must alternate).

Usage: cargo build --release -p ff-cli && python3 scripts/cli-bench.py [ROUNDS]
Prints medians and the ratio. Cleanup (`ff cleanup` / `git worktree remove`
+ `git branch -D`) runs between rounds and is timed too.
"""
import os, statistics, subprocess, sys, tempfile, time

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 30
FF = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "ff")

def run(args, cwd):
    t = time.perf_counter()
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t

with tempfile.TemporaryDirectory() as tmp:
    repo = os.path.join(tmp, "repo")
    os.makedirs(repo)
    git = ["git", "-c", "user.name=b", "-c", "user.email=b@example.invalid"]
    subprocess.run(git + ["init", "-q", "-b", "main"], cwd=repo, check=True)
    for i in range(200):
        d = os.path.join(repo, "src", f"m{i % 10}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i}.rs"), "w") as f:
            f.write(f"// file {i}\n" * 20)
    subprocess.run(git + ["add", "-A"], cwd=repo, check=True)
    subprocess.run(git + ["commit", "-q", "-m", "init"], cwd=repo, check=True)
    bare_base = os.path.join(tmp, "bare")
    times = {k: [] for k in ("ff create", "git worktree add", "ff cleanup", "git remove + branch -D")}
    run([FF, "list"], repo)  # first run creates the state directory
    for r in range(ROUNDS):
        times["ff create"].append(run([FF, "create", f"i{r}"], repo))
        path = os.path.join(bare_base, f"b{r}")
        times["git worktree add"].append(run(["git", "worktree", "add", "--quiet", "--no-track", "-b", f"bare-{r}", "--", path, "main"], repo))
        times["ff cleanup"].append(run([FF, "cleanup", f"i{r}"], repo))
        times["git remove + branch -D"].append(run(["git", "worktree", "remove", "--", path], repo) + run(["git", "branch", "-D", "--", f"bare-{r}"], repo))
    med = {k: statistics.median(v) * 1e3 for k, v in times.items()}
    print(f"whole processes, {ROUNDS} interleaved rounds, 200-file repository, medians")
    print(f"  ff create      {med['ff create']:7.1f} ms   git worktree add       {med['git worktree add']:7.1f} ms   ratio {med['ff create'] / med['git worktree add']:.2f}x")
    print(f"  ff cleanup     {med['ff cleanup']:7.1f} ms   git remove + branch -D {med['git remove + branch -D']:7.1f} ms   ratio {med['ff cleanup'] / med['git remove + branch -D']:.2f}x")
