#!/usr/bin/env python3
"""Large repositories: a deterministic generator, and `ff create` / `ff
cleanup` beside the bare git calls they wrap, interleaved round by round
with alternating order; medians and ratios.

    python3 scripts/large-repo-bench.py FF [ROUNDS] [--files N] [--dirs N]
        [--commits N] [--ignored N] [--prepare-files N] [--smoke]

The generator (same parameters, same repository, byte for byte: fixed
contents, dates and identity) makes N files spread over --dirs
directories, --commits commits of history (each touching 1 % of the
files), and a `node_modules`-like ignored tree of --ignored files in the
main working tree (what a dependency install leaves; git ignores it, ff's
`.worktreeinclude` does not name it). Defaults: the issue's 60,000 files in
300 directories, 1 commit, no ignored tree.

Measured each round, in fresh worktrees of one issue:
  bare `git worktree add -b B PATH` then `git worktree remove --force PATH`
  + `git branch -D B`, against `ff create ISSUE` then `ff cleanup ISSUE
  --force`; and an unforced `ff cleanup` of an untouched worktree against
  bare `git status --porcelain` in it (the check it must make). `ff
  cleanup` returns before its files are deleted (in the background): the
  time from its return until they are gone is shown apart, and waited for
  before the next step. And a sparse create of 1 % of the directories
  (`ff create ISSUE --sparse DIR...`) against the full bare add, beside the
  bare git it wraps (`worktree add --no-checkout`, `sparse-checkout set
  --cone`, `checkout`). And the warm pool (`[pool] size = 1`): `ff create`
  taking a pool worktree made ahead of time (`ff pool fill`, not timed)
  against the full bare add; and, with a dependency install of
  --prepare-files files (a local generator: no network), the time from
  `ff create` to a worktree ready for the agent: the install run by
  `post_create` with no pool, against a pool whose `pool_prepare` ran it
  at fill time. The pool's refill after each create is waited for before
  the next step.

--smoke: 2,000 files, 3 rounds (CI runs this; it checks the harness and
the ratios' presence, not their size).
"""
import argparse, os, shutil, statistics, subprocess, tempfile, time

parser = argparse.ArgumentParser(description="ff create/cleanup on a large generated repository")
parser.add_argument("ff")
parser.add_argument("rounds", nargs="?", type=int)
parser.add_argument("--files", type=int)
parser.add_argument("--dirs", type=int)
parser.add_argument("--commits", type=int, default=1)
parser.add_argument("--ignored", type=int, default=0)
parser.add_argument("--prepare-files", type=int)
parser.add_argument("--smoke", action="store_true")
a = parser.parse_args()
FF = os.path.abspath(a.ff)
FILES = a.files or (2000 if a.smoke else 60000)
DIRS = a.dirs or (20 if a.smoke else 300)
COMMITS, IGNORED = a.commits, a.ignored
R = a.rounds or (3 if a.smoke else 5)
PREPARE = a.prepare_files or (500 if a.smoke else 20000)

env = {k: v for k, v in os.environ.items() if not k.startswith("FF_")}
env.update({
    "FF_CONFIG_DIR": tempfile.mkdtemp(),
    # The bench's own ff.toml hooks (the dependency install) run.
    "FF_HOOKS": "allow",
    "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.invalid",
    "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.invalid",
    "GIT_AUTHOR_DATE": "2026-01-01T00:00:00Z", "GIT_COMMITTER_DATE": "2026-01-01T00:00:00Z",
})


def generate(d):
    """The repository the parameters name, the same every time."""
    g = lambda *a: subprocess.run(["git", *a], cwd=d, check=True, stdout=subprocess.DEVNULL, env=env)
    g("init", "-q", "-b", "main")
    per_dir = max(1, FILES // DIRS)
    paths = []
    for i in range(FILES):
        sub = os.path.join(d, f"src/d{i // per_dir:04d}")
        os.makedirs(sub, exist_ok=True)
        p = os.path.join(sub, f"f{i:06d}.txt")
        with open(p, "w") as f:
            f.write(f"file {i}\n" + "line of text\n" * (i % 7 + 1))
        paths.append(p)
    with open(os.path.join(d, ".gitignore"), "w") as f:
        f.write("node_modules/\n")
    g("add", "-A")
    g("commit", "-q", "-m", "generated")
    step = max(1, FILES // 100)
    for c in range(1, COMMITS):
        for p in paths[c % step::step]:
            with open(p, "a") as f:
                f.write(f"commit {c}\n")
        g("commit", "-q", "-am", f"commit {c}")
    for i in range(IGNORED):
        sub = os.path.join(d, f"node_modules/pkg{i // 100:04d}")
        os.makedirs(sub, exist_ok=True)
        with open(os.path.join(sub, f"m{i:06d}.js"), "w") as f:
            f.write(f"module.exports = {i};\n")


def run(cmd, cwd):
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)


def timed(f):
    s = time.perf_counter()
    f()
    return time.perf_counter() - s


d = tempfile.mkdtemp(prefix="large-repo-")
t0 = time.perf_counter()
generate(d)
made_in = time.perf_counter() - t0
base = os.path.join(d, ".ff-worktrees")
bare_path = os.path.join(tempfile.mkdtemp(prefix="large-bare-"), "wt")

res = {k: [] for k in ["bare add", "ff create", "bare remove + branch -D", "ff cleanup --force",
                       "background deletion after it", "git status (in the worktree)",
                       "ff cleanup (unforced, untouched)", "bare sparse add (1 % of dirs)",
                       "ff create --sparse (1 % of dirs)", "ff create (warm pool)",
                       "ready: create + post_create install (no pool)",
                       "ready: create from a prepared pool"]}
SPARSE = [f"src/d{i:04d}" for i in range(max(1, DIRS // 100))]


def bare_round():
    res["bare add"].append(timed(lambda: run(["git", "worktree", "add", "-q", "-b", "bare-b", bare_path], d)))
    res["bare remove + branch -D"].append(timed(lambda: (
        run(["git", "worktree", "remove", "--force", bare_path], d),
        run(["git", "branch", "-q", "-D", "bare-b"], d))))


def deleted_after_return():
    """Seconds until the files a cleanup left for its background deleter
    (`<base>/.ff-deleting-*`) are gone: not part of what the caller waits
    for, but waited for here so the next round runs on a quiet disk."""
    s = time.perf_counter()
    while any(n.startswith(".ff-deleting-") for n in os.listdir(base)):
        time.sleep(0.01)
    return time.perf_counter() - s


def ff_round():
    res["ff create"].append(timed(lambda: run([FF, "create", "big"], d)))
    res["ff cleanup --force"].append(timed(lambda: run([FF, "cleanup", "big", "--force"], d)))
    res["background deletion after it"].append(deleted_after_return())


def unforced_round():
    run([FF, "create", "big"], d)
    wt = os.path.join(base, "big")
    res["git status (in the worktree)"].append(timed(lambda: run(["git", "status", "--porcelain"], wt)))
    res["ff cleanup (unforced, untouched)"].append(timed(lambda: run([FF, "cleanup", "big"], d)))
    deleted_after_return()


def bare_sparse_round():
    def add():
        run(["git", "worktree", "add", "-q", "--no-checkout", "-b", "bare-s", bare_path], d)
        run(["git", "sparse-checkout", "set", "--cone", "--", *SPARSE], bare_path)
        run(["git", "checkout", "-q"], bare_path)
    res["bare sparse add (1 % of dirs)"].append(timed(add))
    run(["git", "worktree", "remove", "--force", bare_path], d)
    run(["git", "branch", "-q", "-D", "bare-s"], d)


def sparse_round():
    res["ff create --sparse (1 % of dirs)"].append(
        timed(lambda: run([FF, "create", "sparse", "--sparse", *SPARSE], d)))
    run([FF, "cleanup", "sparse", "--force"], d)
    deleted_after_return()


# The dependency install: PREPARE files under node_modules/, 100 a folder.
INSTALL = ("python3 -c \"import os\nfor i in range(%d):\n p='node_modules/p%%d' %% (i//100)\n "
           "os.makedirs(p, exist_ok=True)\n open('%%s/f%%d.js' %% (p, i), 'w').write('x')\"" % PREPARE)
with open(os.path.join(d, ".git", "info", "exclude"), "a") as f:
    f.write("node_modules/\nff.toml\n")


def toml(text):
    with open(os.path.join(d, "ff.toml"), "w") as f:
        f.write(text)


def pool_ready():
    """Waits until the pool's background refill has made its worktree."""
    import json
    while True:
        out = subprocess.run([FF, "pool", "status", "--json"], cwd=d, check=True,
                             capture_output=True, env=env).stdout
        entries = json.loads(out)["entries"]
        if entries and all(e["state"] == "ready" for e in entries):
            return
        time.sleep(0.05)


def pool_round(prepare):
    hooks = '[hooks]\npool_prepare = [%s]\n' % json_str(INSTALL) if prepare else ""
    toml("[pool]\nsize = 1\n\n" + hooks)
    run([FF, "pool", "fill"], d)
    key = "ready: create from a prepared pool" if prepare else "ff create (warm pool)"
    res[key].append(timed(lambda: run([FF, "create", "pooled"], d)))
    pool_ready()
    run([FF, "pool", "drain"], d)
    os.remove(os.path.join(d, "ff.toml"))
    run([FF, "cleanup", "pooled", "--force"], d)
    deleted_after_return()


def json_str(s):
    import json
    return json.dumps(s)


def install_round():
    toml('[hooks]\npost_create = [%s]\n' % json_str(INSTALL))
    res["ready: create + post_create install (no pool)"].append(
        timed(lambda: run([FF, "create", "installed"], d)))
    os.remove(os.path.join(d, "ff.toml"))
    run([FF, "cleanup", "installed", "--force"], d)
    deleted_after_return()


for r in range(R):
    rounds = [bare_round, ff_round, unforced_round, bare_sparse_round, sparse_round,
              lambda: pool_round(False), install_round, lambda: pool_round(True)]
    for f in (rounds if r % 2 == 0 else list(reversed(rounds))):
        f()

med = {k: statistics.median(v) for k, v in res.items()}
print(f"large repository: {FILES} files in {DIRS} directories, {COMMITS} commit(s), "
      f"{IGNORED} ignored files (generated in {made_in:.1f} s); {R} interleaved rounds, medians")
for k, v in med.items():
    print(f"  {k:36s} {v*1000:9.1f} ms")
print(f"  ff create / bare add                 {med['ff create'] / med['bare add']:6.2f}x")
print(f"  ff cleanup --force / bare remove     {med['ff cleanup --force'] / med['bare remove + branch -D']:6.2f}x")
print(f"  unforced cleanup / git status        {med['ff cleanup (unforced, untouched)'] / med['git status (in the worktree)']:6.2f}x")
print(f"  ff create --sparse / bare full add   {med['ff create --sparse (1 % of dirs)'] / med['bare add']:6.2f}x")
print(f"  ff create --sparse / bare sparse add {med['ff create --sparse (1 % of dirs)'] / med['bare sparse add (1 % of dirs)']:6.2f}x")
print(f"  ff create (warm pool) / bare add     {med['ff create (warm pool)'] / med['bare add']:6.3f}x")
print(f"  ready, pool / no pool ({PREPARE} files) {med['ready: create from a prepared pool'] / med['ready: create + post_create install (no pool)']:6.3f}x")
shutil.rmtree(d, ignore_errors=True)
shutil.rmtree(os.path.dirname(bare_path), ignore_errors=True)
