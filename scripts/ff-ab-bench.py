#!/usr/bin/env python3
"""Two builds of `ff` against each other, interleaved round by round with
alternating order, in twin repositories (200 files, and 20 files a
`.worktreeinclude` names): lock, list, create, cleanup; medians and
new/old.

    python3 scripts/ff-ab-bench.py OLD_FF NEW_FF [ROUNDS]

For a change whose whole-process cost must be compared with the release
before it, when separate runs of cli-bench.py meet different disk states.
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
R=int(sys.argv[3]) if len(sys.argv)>3 else 20
ro,rn=repo(),repo()
res={f"{w} {op}":[] for w in ("old","new") for op in ("lock","list","create","cleanup")}
for i in range(R):
    order=[("old",OLD,ro),("new",NEW,rn)] if i%2==0 else [("new",NEW,rn),("old",OLD,ro)]
    for name,b,d in order: res[f"{name} lock"].append(t([b,"lock","ab","--","true"],d))
    for name,b,d in order: res[f"{name} list"].append(t([b,"list"],d))
    for name,b,d in order: res[f"{name} create"].append(t([b,"create",f"i{i}"],d))
    for name,b,d in order: res[f"{name} cleanup"].append(t([b,"cleanup",f"i{i}"],d))
print(f"old vs new ff, {R} interleaved rounds (order alternating), medians; repository of 200 files + 20 included files")
for op in ["lock","list","create","cleanup"]:
    o=statistics.median(res[f"old {op}"])*1000; n=statistics.median(res[f"new {op}"])*1000
    print(f"  ff {op:8s} old {o:7.2f} ms   new {n:7.2f} ms   new/old {n/o:.2f}x")
