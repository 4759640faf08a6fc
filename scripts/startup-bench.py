#!/usr/bin/env python3
"""Start-up of `ff` builds beside the floor of a Rust process: `BIN
--version` for each build and a hello-world built here with `rustc -O`,
interleaved round by round (order alternating), medians and ratios to the
hello-world; then, for each, the instructions one run executes
(callgrind, when valgrind is installed: repeatable whatever the machine is
doing), its minor page faults and the dynamic relocations the loader
applies at start.

    python3 scripts/startup-bench.py [ROUNDS] BIN [BIN…]

To see what one change did, build before and after it and pass both.
"""
import os, re, shutil, statistics, subprocess, sys, tempfile, time

args = sys.argv[1:]
ROUNDS = int(args.pop(0)) if args and args[0].isdigit() else 300
if not args:
    sys.exit(__doc__)
with tempfile.TemporaryDirectory() as tmp:
    hello = os.path.join(tmp, "hello")
    with open(hello + ".rs", "w") as f:
        f.write('fn main() { println!("hello"); }\n')
    subprocess.run(["rustc", "-O", "-o", hello, hello + ".rs"], check=True)
    runs = [("hello-world (rustc -O)", [hello])] + [(f"{b} --version", [b, "--version"]) for b in args]
    times = [[] for _ in runs]
    for r in range(ROUNDS):
        order = range(len(runs)) if r % 2 == 0 else reversed(range(len(runs)))
        for i in order:
            t = time.perf_counter()
            subprocess.run(runs[i][1], stdout=subprocess.DEVNULL, check=True)
            times[i].append(time.perf_counter() - t)
    floor = statistics.median(times[0])
    print(f"{ROUNDS} interleaved rounds, medians")
    for (name, argv), t in zip(runs, times):
        m = statistics.median(t)
        p = subprocess.Popen(argv, stdout=subprocess.DEVNULL)
        faults = os.wait4(p.pid, 0)[2].ru_minflt
        relocs = subprocess.run(["readelf", "-r", "-W", argv[0]], capture_output=True, text=True).stdout.count("R_X86_64")
        instructions = "-"
        if shutil.which("valgrind"):
            out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *argv],
                                 capture_output=True, text=True).stderr
            found = re.search(r"refs:\s+([\d,]+)", out)
            instructions = found.group(1) if found else "?"
        print(f"  {name:60} {m * 1e3:6.2f} ms {m / floor:5.2f}x  instructions {instructions:>10}  "
              f"minor faults {faults:4}  relocations {relocs}")
