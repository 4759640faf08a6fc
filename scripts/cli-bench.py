#!/usr/bin/env python3
"""Whole-process cost of `ff` against the bare tool each command wraps,
candidate and baseline interleaved round by round (A B A B: this disk
slows file creation for minutes after mass deletion, and the machine is
noisy), medians and ratios; then each command's page faults and peak
resident memory beside the bare tool's, and how many git processes each
`ff` command spawns (strace, when installed).

    cargo build --release -p ff-cli && python3 scripts/cli-bench.py [ROUNDS]
    FF_BENCH_BIN=/path/to/other/ff python3 scripts/cli-bench.py [ROUNDS]

Pairs, on one 200-file repository:
  ff --version                     vs  a hello-world built here by rustc -O
  ff lock NAME -- true             vs  flock FILE true
  ff once --key K -- true (done)   vs  flock FILE true
  ff list --format=plain           vs  git worktree list --porcelain
  ff list (state columns)          vs  the git calls its columns replace: git worktree
                                       list, then in each worktree git status and
                                       git rev-list --left-right --count base...HEAD
  ff get ISSUE                     vs  git worktree list --porcelain
  ff locks                         vs  ls -l of the lock directory
  ff sync ISSUE (one new upstream  vs  git fetch origin + git rebase origin/main,
    commit each round)                 in a worktree of its own
  ff create ISSUE                  vs  git worktree add --no-track -b B PATH main
  ff cleanup ISSUE                 vs  git worktree remove PATH + git branch -D B
  the create + cleanup cycle       vs  the bare cycle
"""
import os, shutil, statistics, subprocess, sys, tempfile, time

ROUNDS = int(sys.argv[1]) if len(sys.argv) > 1 else 30
# FF_BENCH_BIN names another build (an earlier release, to compare ratios).
FF = os.environ.get("FF_BENCH_BIN") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "target", "release", "ff")
GIT = ["git", "-c", "user.name=b", "-c", "user.email=b@example.invalid"]
ENV = {k: v for k, v in os.environ.items() if not k.startswith("FF_")}
# The user's approvals and config.toml stay out of the measurement.
ENV["FF_CONFIG_DIR"] = tempfile.mkdtemp(prefix="ff-bench-config-")


def run(args, cwd):
    t = time.perf_counter()
    subprocess.run(args, cwd=cwd, check=True, stdout=subprocess.DEVNULL, env=ENV)
    return time.perf_counter() - t


def bare_table(repo):
    """The git calls `ff list`'s state columns stand for, one after another."""
    took = run(["git", "worktree", "list", "--porcelain"], repo)
    base = os.path.join(repo, ".ff-worktrees")
    for w in sorted(e for e in os.listdir(base) if not e.startswith(".")):
        wt = os.path.join(base, w)
        took += run(["git", "status", "--porcelain=v1", "-z", "--untracked-files=normal"], wt)
        took += run(["git", "rev-list", "--left-right", "--count", "--end-of-options", "main...HEAD"], wt)
    return took


def usage(args, cwd):
    """One run of `args`: its minor page faults and its peak resident set
    in KiB (the largest of it and the children it waited for), by GNU
    time: a child forked from this Python would report Python's own peak,
    which an exec does not reset."""
    out = subprocess.run(["/usr/bin/time", "-f", "%R %M", *args], cwd=cwd, check=True,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=ENV, text=True)
    faults, peak = out.stderr.strip().splitlines()[-1].split()
    return int(faults), int(peak)


def git_processes(args, cwd):
    """git processes (successful execs) that one run of `args` starts."""
    trace = os.path.join(cwd, "..", "strace.out")
    subprocess.run(["strace", "-f", "-qq", "-e", "trace=execve", "-e", "signal=none", "-o", trace] + args,
                   cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
    with open(trace) as f:
        execs = [l for l in f if "execve(" in l and l.rstrip().endswith("= 0")]
    os.remove(trace)
    return sum(1 for l in execs if "git" in l.split("execve(", 1)[1].split(",", 1)[0])


with tempfile.TemporaryDirectory() as tmp:
    repo = os.path.join(tmp, "repo")
    os.makedirs(repo)
    subprocess.run(GIT + ["init", "-q", "-b", "main"], cwd=repo, check=True)
    for i in range(200):
        d = os.path.join(repo, "src", f"m{i % 10}")
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, f"f{i}.rs"), "w") as f:
            f.write(f"// file {i}\n" * 20)
    subprocess.run(GIT + ["add", "-A"], cwd=repo, check=True)
    subprocess.run(GIT + ["commit", "-q", "-m", "init"], cwd=repo, check=True)
    bare_base = os.path.join(tmp, "bare")
    lockfile = os.path.join(tmp, "flock.lock")
    run([FF, "list"], repo)  # the first run creates the state directory
    run([FF, "once", "--key", "done", "--", "true"], repo)
    for w in range(3):  # a few worktrees for list to show
        run([FF, "create", f"keep{w}"], repo)
    # A remote that main tracks, and a clone that adds a commit to it before
    # each round of sync.
    origin = os.path.join(tmp, "origin.git")
    pusher = os.path.join(tmp, "pusher")
    subprocess.run(GIT + ["clone", "-q", "--bare", repo, origin], check=True)
    subprocess.run(GIT + ["remote", "add", "origin", origin], cwd=repo, check=True)
    subprocess.run(GIT + ["fetch", "-q", "origin"], cwd=repo, check=True)
    subprocess.run(GIT + ["branch", "-q", "--set-upstream-to=origin/main", "main"], cwd=repo, check=True)
    subprocess.run(GIT + ["clone", "-q", origin, pusher], check=True)
    run([FF, "create", "syncme"], repo)
    bare_sync = os.path.join(tmp, "bare-sync")
    subprocess.run(GIT + ["worktree", "add", "--quiet", "-b", "bare-sync", "--", bare_sync, "main"],
                   cwd=repo, check=True, stdout=subprocess.DEVNULL)

    def push_one(n):
        with open(os.path.join(pusher, f"upstream{n}.txt"), "w") as f:
            f.write(f"{n}\n")
        subprocess.run(GIT + ["add", "-A"], cwd=pusher, check=True)
        subprocess.run(GIT + ["commit", "-q", "-m", f"upstream {n}"], cwd=pusher, check=True)
        subprocess.run(GIT + ["push", "-q", "origin", "main"], cwd=pusher, check=True,
                       stderr=subprocess.DEVNULL)

    def bare_sync_once():
        return (run(GIT + ["fetch", "-q", "origin"], bare_sync)
                + run(GIT + ["rebase", "-q", "origin/main"], bare_sync))
    # The floor of any Rust process: what `ff --version` is measured against.
    hello = os.path.join(tmp, "hello")
    with open(hello + ".rs", "w") as f:
        f.write('fn main() { println!("hello"); }\n')
    subprocess.run(["rustc", "-O", "-o", hello, hello + ".rs"], check=True)
    pairs = {
        "version": ("ff --version", "hello-world (rustc -O)"),
        "lock": ("ff lock NAME -- true", "flock FILE true"),
        "once": ("ff once --key K -- true (completed)", "flock FILE true"),
        "list": ("ff list --format=plain", "git worktree list --porcelain"),
        "table": ("ff list (state columns)", "worktree list + status, rev-list each"),
        "get": ("ff get ISSUE", "git worktree list --porcelain"),
        "locks": ("ff locks", "ls -l of the lock directory"),
        "sync": ("ff sync ISSUE (1 new upstream commit)", "git fetch + git rebase"),
        "create": ("ff create", "git worktree add --no-track -b"),
        "cleanup": ("ff cleanup", "git worktree remove + branch -D"),
    }
    times = {k: ([], []) for k in pairs}
    cycle = ([], [])
    # The quick commands first, apart from the worktree churn below, whose
    # writeback would slow whichever process runs next.
    for r in range(ROUNDS):
        times["version"][0].append(run([FF, "--version"], repo))
        times["version"][1].append(run([hello], repo))
        times["lock"][0].append(run([FF, "lock", "bench", "--", "true"], repo))
        times["lock"][1].append(run(["flock", lockfile, "true"], repo))
        times["once"][0].append(run([FF, "once", "--key", "done", "--", "true"], repo))
        times["once"][1].append(run(["flock", lockfile, "true"], repo))
        times["list"][0].append(run([FF, "list", "--format=plain"], repo))
        times["list"][1].append(run(["git", "worktree", "list", "--porcelain"], repo))
        times["table"][0].append(run([FF, "list"], repo))
        times["table"][1].append(bare_table(repo))
        times["get"][0].append(run([FF, "get", "keep0"], repo))
        times["get"][1].append(run(["git", "worktree", "list", "--porcelain"], repo))
        times["locks"][0].append(run([FF, "locks"], repo))
        times["locks"][1].append(run(["ls", "-l", os.path.join(repo, ".git", "ff", "locks")], repo))
        push_one(r)
        # Alternating which goes first.
        if r % 2:
            times["sync"][1].append(bare_sync_once())
            times["sync"][0].append(run([FF, "sync", "syncme"], repo))
        else:
            times["sync"][0].append(run([FF, "sync", "syncme"], repo))
            times["sync"][1].append(bare_sync_once())
    for r in range(ROUNDS):
        c = run([FF, "create", f"i{r}"], repo)
        path = os.path.join(bare_base, f"b{r}")
        b = run(["git", "worktree", "add", "--quiet", "--no-track", "-b", f"bare-{r}", "--", path, "main"], repo)
        times["create"][0].append(c)
        times["create"][1].append(b)
        cc = run([FF, "cleanup", f"i{r}"], repo)
        bc = run(["git", "worktree", "remove", "--", path], repo) + run(["git", "branch", "-D", "--", f"bare-{r}"], repo)
        times["cleanup"][0].append(cc)
        times["cleanup"][1].append(bc)
        cycle[0].append(c + cc)
        cycle[1].append(b + bc)
    print(f"whole processes, {ROUNDS} interleaved rounds, 200-file repository, medians")
    rows = [(pairs[k][0], pairs[k][1], times[k]) for k in pairs]
    rows.append(("create + cleanup cycle", "bare cycle", cycle))
    for cand, base, (a, b) in rows:
        ma, mb = statistics.median(a) * 1e3, statistics.median(b) * 1e3
        print(f"  {cand:38} {ma:7.2f} ms   {base:33} {mb:7.2f} ms   {ma / mb:5.2f}x")
    print("minor page faults and peak resident memory, one run each")
    for name, args in [("ff --version", [FF, "--version"]), ("hello-world", [hello]),
                       ("ff lock", [FF, "lock", "bench", "--", "true"]), ("flock", ["flock", lockfile, "true"]),
                       ("ff once (completed)", [FF, "once", "--key", "done", "--", "true"]),
                       ("ff locks", [FF, "locks"]), ("ff stats", [FF, "stats"]),
                       ("ff list --format=plain", [FF, "list", "--format=plain"]), ("ff list", [FF, "list"]),
                       ("git worktree list", ["git", "worktree", "list", "--porcelain"]),
                       ("ff get", [FF, "get", "keep0"]),
                       ("ff create", [FF, "create", "measured"]), ("ff cleanup", [FF, "cleanup", "measured"]),
                       ("git worktree add", GIT + ["worktree", "add", "--quiet", "--no-track", "-b", "measured-bare",
                                                   "--", os.path.join(bare_base, "measured"), "main"]),
                       ("git worktree remove", ["git", "worktree", "remove", "--", os.path.join(bare_base, "measured")])]:
        faults, peak = usage(args, repo)
        print(f"  {name:22} {faults:6} faults  {peak / 1024:6.1f} MB peak")
    if shutil.which("strace"):
        print("git processes per command (successful execs, git's own children included)")
        counts = [
            ("ff lock", [FF, "lock", "bench", "--", "true"]),
            ("ff once (completed)", [FF, "once", "--key", "done", "--", "true"]),
            ("ff list --format=plain", [FF, "list", "--format=plain"]),
            ("ff list", [FF, "list"]),
            ("ff create", [FF, "create", "counted"]),
            ("ff cleanup", [FF, "cleanup", "counted"]),
            ("ff locks", [FF, "locks"]),
            ("ff stats", [FF, "stats"]),
            ("ff get", [FF, "get", "keep0"]),
        ]
        for name, args in counts:
            print(f"  {name:22} {git_processes(args, repo)}")
        bare_path = os.path.join(bare_base, "counted")
        print(f"  {'bare worktree add':22} {git_processes(['git', 'worktree', 'add', '--quiet', '--no-track', '-b', 'counted-bare', '--', bare_path, 'main'], repo)}")
        print(f"  {'bare worktree remove':22} {git_processes(['git', 'worktree', 'remove', '--', bare_path], repo)}")
        push_one("counted")
        print(f"  {'ff sync':22} {git_processes([FF, 'sync', 'syncme'], repo)}")
        push_one("counted-bare")
        fetch = git_processes(GIT + ["fetch", "-q", "origin"], bare_sync)
        rebase = git_processes(GIT + ["rebase", "-q", "origin/main"], bare_sync)
        print(f"  {'bare fetch + rebase':22} {fetch + rebase}")
