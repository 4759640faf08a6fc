#!/usr/bin/env python3
"""How create, cleanup and list grow with the worktrees already there:
with 0, 100 and 1,000 ForgeFlow worktrees in one 200-file repository, each
`ff` command beside the bare git it wraps, in the same repository (so git
sees the same 1,000 worktrees), interleaved round by round; medians, the
ratio to git at each size, and each one's growth from 0 to 1,000.

    python3 scripts/growth-bench.py [ROUNDS] [SIZES...]   # default 9 rounds, 0 100 1000

The release build at target/release/ff, or FF_BENCH_BIN.
"""
import os, statistics, subprocess, sys, tempfile, time

args = sys.argv[1:]
ROUNDS = int(args[0]) if args else 9
SIZES = [int(a) for a in args[1:]] or [0, 100, 1000]
FF = os.environ.get("FF_BENCH_BIN") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "ff")
GIT = ["git", "-c", "user.name=b", "-c", "user.email=b@example.invalid"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith("FF_")}
ENV["FF_CONFIG_DIR"] = tempfile.mkdtemp(prefix="ff-bench-config-")


def run(cmd, cwd):
    t = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, env=ENV)
    return time.perf_counter() - t


with tempfile.TemporaryDirectory() as tmp:
    repo = os.path.join(tmp, "repo")
    os.makedirs(repo)
    subprocess.run(GIT + ["init", "-q", "-b", "main"], cwd=repo, check=True)
    for i in range(200):
        d = os.path.join(repo, "src", f"m{i % 10}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i}.rs"), "w") as f:
            f.write(f"// file {i}\n" * 20)
    # Room for the largest size and the rounds' own worktrees.
    with open(os.path.join(repo, "ff.toml"), "w") as f:
        f.write(f"max_worktrees = {max(SIZES) + 50}\n")
    with open(os.path.join(repo, ".gitignore"), "w") as f:
        f.write(".ff-worktrees/\n")
    subprocess.run(GIT + ["add", "-A"], cwd=repo, check=True)
    subprocess.run(GIT + ["commit", "-q", "-m", "init"], cwd=repo, check=True)
    bare = os.path.join(tmp, "bare")
    existing = 0
    rows = {}
    print(f"growth: {ROUNDS} interleaved rounds per size, 200-file repository, medians (ms)")
    for size in SIZES:
        t = time.perf_counter()
        while existing < size:
            run([FF, "create", f"w{existing}"], repo)
            existing += 1
        made = time.perf_counter() - t
        times = {k: [] for k in ["create", "git add", "cleanup", "git remove", "list", "git list"]}
        for r in range(ROUNDS):
            times["create"].append(run([FF, "create", f"r{size}-{r}"], repo))
            path = os.path.join(bare, f"b{size}-{r}")
            times["git add"].append(run(GIT + ["worktree", "add", "--quiet", "--no-track", "-b",
                                              f"bare-{size}-{r}", "--", path, "main"], repo))
            times["cleanup"].append(run([FF, "cleanup", f"r{size}-{r}"], repo))
            times["git remove"].append(run(["git", "worktree", "remove", "--", path], repo)
                                       + run(["git", "branch", "-D", "-q", "--", f"bare-{size}-{r}"], repo))
            times["list"].append(run([FF, "list", "--format=plain"], repo))
            times["git list"].append(run(["git", "worktree", "list", "--porcelain"], repo))
        m = {k: statistics.median(v) * 1e3 for k, v in times.items()}
        rows[size] = m
        print(f"  {size:5} worktrees (made in {made:5.1f} s): "
              f"create {m['create']:7.2f} / git {m['git add']:7.2f} = {m['create'] / m['git add']:4.2f}x   "
              f"cleanup {m['cleanup']:7.2f} / git {m['git remove']:7.2f} = {m['cleanup'] / m['git remove']:4.2f}x   "
              f"list {m['list']:7.2f} / git {m['git list']:7.2f} = {m['list'] / m['git list']:4.2f}x")
    lo, hi = min(SIZES), max(SIZES)
    if lo != hi:
        print(f"growth from {lo} to {hi} worktrees (time at {hi} / time at {lo}):")
        for ours, theirs in [("create", "git add"), ("cleanup", "git remove"), ("list", "git list")]:
            print(f"  {ours:8} ff {rows[hi][ours] / rows[lo][ours]:5.2f}x   git {rows[hi][theirs] / rows[lo][theirs]:5.2f}x")
