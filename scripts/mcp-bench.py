#!/usr/bin/env python3
"""What an agent pays per call through `ff mcp` against the `ff` process it
replaces, interleaved round by round in one repository, medians:

- worktree_get (one MCP call in a running session) vs `ff get ISSUE --json`;
- lock_acquire + lock_release (two calls) vs `ff lock NAME -- true`;
- a session's start (spawn `ff mcp`, initialize, tools/list) vs `ff --version`.

    python3 scripts/mcp-bench.py FF_BINARY [ROUNDS]
"""
import json, os, statistics, subprocess, sys, tempfile, time

FF = sys.argv[1]
ROUNDS = int(sys.argv[2]) if len(sys.argv) > 2 else 30
env = {k: v for k, v in os.environ.items() if not k.startswith("FF_")}
env["FF_CONFIG_DIR"] = tempfile.mkdtemp()
repo = tempfile.mkdtemp(prefix="mcp-bench-")
g = lambda *a: subprocess.run(["git", *a], cwd=repo, check=True, stdout=subprocess.DEVNULL)
g("init", "-q", "-b", "main"); g("config", "user.name", "b"); g("config", "user.email", "b@x")
for i in range(200):
    open(os.path.join(repo, f"f{i}.txt"), "w").write("x" * 100 + "\n")
g("add", "."); g("commit", "-q", "-m", "init")
subprocess.run([FF, "create", "1"], cwd=repo, check=True, stdout=subprocess.DEVNULL, env=env)


class Session:
    def __init__(self):
        self.p = subprocess.Popen([FF, "mcp"], cwd=repo, env=env, stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.id = 0
        self.request("initialize", {"protocolVersion": "2025-06-18", "capabilities": {},
                                    "clientInfo": {"name": "bench", "version": "1"}})
        self.p.stdin.write(json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}) + "\n")
        self.request("tools/list", {})

    def request(self, method, params):
        self.id += 1
        self.p.stdin.write(json.dumps({"jsonrpc": "2.0", "id": self.id, "method": method, "params": params}) + "\n")
        self.p.stdin.flush()
        while True:
            m = json.loads(self.p.stdout.readline())
            if m.get("id") == self.id:
                return m

    def call(self, name, args):
        r = self.request("tools/call", {"name": name, "arguments": args})["result"]
        assert not r.get("isError"), r
        return r["structuredContent"]

    def close(self):
        self.p.stdin.close()
        self.p.wait()


def timed(f):
    s = time.perf_counter(); f(); return time.perf_counter() - s


def run(args):
    subprocess.run([FF, *args], cwd=repo, check=True, stdout=subprocess.DEVNULL, env=env)


res = {k: [] for k in ["mcp get", "ff get", "mcp lock", "ff lock", "mcp start", "ff --version"]}
session = Session()


def lock_cycle():
    lease = session.call("lock_acquire", {"name": "bench"})["lease"]
    session.call("lock_release", {"lease": lease})


for i in range(ROUNDS):
    pairs = [("mcp get", lambda: session.call("worktree_get", {"target": "1"})),
             ("ff get", lambda: run(["get", "1", "--json"])),
             ("mcp lock", lock_cycle),
             ("ff lock", lambda: run(["lock", "bench", "--", "true"])),
             ("mcp start", lambda: Session().close()),
             ("ff --version", lambda: run(["--version"]))]
    for j in range(0, len(pairs), 2):
        a, b = pairs[j], pairs[j + 1]
        for name, f in ([a, b] if i % 2 == 0 else [b, a]):
            res[name].append(timed(f))
session.close()

print(f"ff mcp against the ff process it replaces, {ROUNDS} interleaved rounds, medians")
for mcp, proc in [("mcp get", "ff get"), ("mcp lock", "ff lock"), ("mcp start", "ff --version")]:
    m, p = statistics.median(res[mcp]) * 1000, statistics.median(res[proc]) * 1000
    print(f"  {mcp:10} {m:8.2f} ms   {proc:13} {p:8.2f} ms   mcp/process {m / p:.2f}x")
