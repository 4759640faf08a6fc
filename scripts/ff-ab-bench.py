#!/usr/bin/env python3
"""Two builds of `ff` against each other, interleaved round by round with
alternating order, in twin repositories (200 files, and 20 files a
`.worktreeinclude` names): lock, list, create, cleanup, once (a new key
each round) and once of a completed key (a replay); medians and new/old.

    python3 scripts/ff-ab-bench.py OLD_FF NEW_FF [ROUNDS] [--redis]

For a change whose whole-process cost must be compared with the release
before it, when separate runs of cli-bench.py meet different disk states.

With --redis, both run on Redis locks and records (`--lock URL --store
URL`, a redis-server started here on a free port), and the commands Redis
served per operation (its `total_commands_processed`) are counted too.
"""
import os, subprocess, statistics, tempfile, time, sys
OLD, NEW = sys.argv[1], sys.argv[2]
env={k:v for k,v in os.environ.items() if not k.startswith("FF_")}
env["FF_CONFIG_DIR"]=tempfile.mkdtemp()
def repo():
    d=tempfile.mkdtemp(prefix="ab-")
    g=lambda *a: subprocess.run(["git",*a],cwd=d,check=True,stdout=subprocess.DEVNULL)
    g("init","-q","-b","main"); g("config","user.name","b"); g("config","user.email","b@x")
    for i in range(200):
        open(os.path.join(d,f"f{i}.txt"),"w").write("x"*100+"\n")
    g("add","."); g("commit","-q","-m","init")
    # a .worktreeinclude with 20 ignored files, so the copy path runs
    open(os.path.join(d,".gitignore"),"w").write("*.env\n"); open(os.path.join(d,".worktreeinclude"),"w").write("*.env\n")
    g("add",".gitignore",".worktreeinclude"); g("commit","-q","-m","include")
    for i in range(20): open(os.path.join(d,f"s{i}.env"),"w").write("k=v\n"*100)
    return d
def t(args,cwd):
    s=time.perf_counter(); subprocess.run(args,cwd=cwd,check=True,stdout=subprocess.DEVNULL,env=env); return time.perf_counter()-s
args=[a for a in sys.argv[3:] if a!="--redis"]
R=int(args[0]) if args else 20
backend=[]
served=lambda: 0
if "--redis" in sys.argv:
    import socket, shutil
    with socket.socket() as so:
        so.bind(("127.0.0.1",0)); port=so.getsockname()[1]
    rdir=tempfile.mkdtemp(prefix="ab-redis-")
    server=subprocess.Popen(["redis-server","--port",str(port),"--bind","127.0.0.1","--save","","--appendonly","no","--dir",rdir],stdout=subprocess.DEVNULL)
    for _ in range(100):
        if subprocess.run(["redis-cli","-p",str(port),"ping"],capture_output=True).stdout.strip()==b"PONG": break
        time.sleep(0.05)
    url=f"redis://127.0.0.1:{port}"
    backend=["--lock",url,"--store",url]
    def served():
        out=subprocess.run(["redis-cli","-p",str(port),"info","stats"],capture_output=True,text=True).stdout
        # the INFO call itself counts one
        return int(next(l.split(":")[1] for l in out.splitlines() if l.startswith("total_commands_processed:")))
    import atexit; atexit.register(lambda: (server.terminate(), shutil.rmtree(rdir, ignore_errors=True)))
calls={}
def timed(name,op,b,a,d):
    before=served()
    took=t([b,*backend,*a],d)
    calls.setdefault(f"{name} {op}",[]).append(served()-before-1 if backend else 0)
    return took
OPS=("lock","list","create","cleanup","once","replay")
ro,rn=repo(),repo()
res={f"{w} {op}":[] for w in ("old","new") for op in OPS}
for i in range(R):
    order=[("old",OLD,ro),("new",NEW,rn)] if i%2==0 else [("new",NEW,rn),("old",OLD,ro)]
    for name,b,d in order: res[f"{name} lock"].append(timed(name,"lock",b,["lock","ab","--","true"],d))
    for name,b,d in order: res[f"{name} list"].append(timed(name,"list",b,["list"],d))
    for name,b,d in order: res[f"{name} create"].append(timed(name,"create",b,["create",f"i{i}"],d))
    for name,b,d in order: res[f"{name} cleanup"].append(timed(name,"cleanup",b,["cleanup",f"i{i}"],d))
    for name,b,d in order: res[f"{name} once"].append(timed(name,"once",b,["once","--key",f"{name}-k{i}","--","true"],d))
    for name,b,d in order: res[f"{name} replay"].append(timed(name,"replay",b,["once","--key",f"{name}-k0","--","true"],d))
where="on Redis locks and records" if backend else "on the default backends"
print(f"old vs new ff {where}, {R} interleaved rounds (order alternating), medians; repository of 200 files + 20 included files")
for op in OPS:
    o=statistics.median(res[f"old {op}"])*1000; n=statistics.median(res[f"new {op}"])*1000
    extra=""
    if backend:
        extra=f"   Redis commands old {statistics.median(calls[f'old {op}']):.0f} new {statistics.median(calls[f'new {op}']):.0f}"
    print(f"  ff {op:8s} old {o:7.2f} ms   new {n:7.2f} ms   new/old {n/o:.2f}x{extra}")
