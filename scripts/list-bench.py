#!/usr/bin/env python3
"""`ff list` against what it replaces, interleaved round by round: bare
`git worktree list`, and the per-worktree git calls its state columns make
(`git status --porcelain` and `git rev-list --left-right --count` in each
worktree), beside `ff list --format plain` (no git call per worktree) and
the default table; optionally an older `ff` too. Medians and ratios; and
how many git processes each spawns (strace).

    python3 scripts/list-bench.py FF [ROUNDS] [--worktrees N] [--old OLD_FF]
"""
import os, shutil, statistics, subprocess, sys, tempfile, time

FF = sys.argv[1]
args = sys.argv[2:]
def opt(name, default):
    if name in args:
        i = args.index(name)
        v = args[i + 1]
        del args[i:i + 2]
        return v
    return default
N = int(opt("--worktrees", "10"))
OLD = opt("--old", None)
R = int(args[0]) if args else 20

env = {k: v for k, v in os.environ.items() if not k.startswith("FF_")}
env["FF_CONFIG_DIR"] = tempfile.mkdtemp()
env["COLUMNS"] = "120"
d = tempfile.mkdtemp(prefix="list-bench-")
g = lambda *a, cwd=d: subprocess.run(["git", *a], cwd=cwd, check=True, stdout=subprocess.DEVNULL, env=env)
g("init", "-q", "-b", "main"); g("config", "user.name", "b"); g("config", "user.email", "b@x")
for i in range(200):
    open(os.path.join(d, f"f{i}.txt"), "w").write("x" * 100 + "\n")
g("add", "."); g("commit", "-q", "-m", "init")
paths = []
for i in range(N):
    out = subprocess.run([FF, "create", f"i{i}", "--print-path"], cwd=d, check=True,
                         capture_output=True, text=True, env=env).stdout.strip()
    paths.append(out)
    if i % 2:
        open(os.path.join(out, "draft.txt"), "w").write("draft\n")

def bare_state():
    # What the table's state columns cost done by hand: two git calls a worktree.
    for p in paths:
        subprocess.run(["git", "status", "--porcelain=v1", "-z", "--untracked-files=normal"],
                       cwd=p, check=True, stdout=subprocess.DEVNULL, env=env)
        subprocess.run(["git", "rev-list", "--left-right", "--count", "main...HEAD"],
                       cwd=p, check=True, stdout=subprocess.DEVNULL, env=env)

cases = {
    "git worktree list": lambda: subprocess.run(["git", "worktree", "list"], cwd=d, check=True, stdout=subprocess.DEVNULL, env=env),
    "git worktree list + per-worktree status, rev-list": lambda: (subprocess.run(["git", "worktree", "list"], cwd=d, check=True, stdout=subprocess.DEVNULL, env=env), bare_state()),
    "ff list --format plain": lambda: subprocess.run([FF, "list", "--format", "plain"], cwd=d, check=True, stdout=subprocess.DEVNULL, env=env),
    "ff list (table)": lambda: subprocess.run([FF, "list"], cwd=d, check=True, stdout=subprocess.DEVNULL, env=env),
}
if OLD:
    cases["old ff list"] = lambda: subprocess.run([OLD, "list"], cwd=d, check=True, stdout=subprocess.DEVNULL, env=env)
res = {k: [] for k in cases}
names = list(cases)
for r in range(R):
    order = names if r % 2 == 0 else list(reversed(names))
    for k in order:
        s = time.perf_counter(); cases[k](); res[k].append(time.perf_counter() - s)

def git_processes(cmd):
    if not shutil.which("strace"):
        return "?"
    out = subprocess.run(["strace", "-f", "-e", "trace=execve", "-qq", *cmd], cwd=d,
                         capture_output=True, text=True, env=env).stderr
    return sum(1 for l in out.splitlines() if 'execve("' in l and "/git\"" in l and "= 0" in l)

base = statistics.median(res["git worktree list"])
print(f"ff list, {N} worktrees (half with a changed file), {R} interleaved rounds, medians")
for k in names:
    m = statistics.median(res[k])
    print(f"  {k:52s} {m*1000:8.2f} ms  {m/base:5.2f}x git worktree list")
print("git processes spawned:")
print(f"  ff list --format plain: {git_processes([FF, 'list', '--format', 'plain'])}")
print(f"  ff list (table):        {git_processes([FF, 'list'])}")
if OLD:
    print(f"  old ff list:            {git_processes([OLD, 'list'])}")
shutil.rmtree(d, ignore_errors=True)
