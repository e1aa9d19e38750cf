#!/usr/bin/env python3
"""Writes session.ld: the functions an agent session runs, gathered at the start of the code.

    crates/switchboard/link/order.py target/release/switchboard

Runs the given release binary (built with this repository's .cargo/config.toml, so its symbols
are v0 names) under valgrind's callgrind as three `switchboard mcp` sessions: on the local
store with `initialize` and channel push, calling every tool, resource and prompt and taking
pushed mail; on the local store as a 2026-07-28 client (`server/discover`, no `initialize`);
and the first again through a `switchboard serve` on 127.0.0.1. It lists every function of the
binary that ran and writes them, the local sessions' first, as a linker script (build.rs links
the release binary with it).

Why, and the figures: docs/benchmarks.md, "Peak RSS of a session". Run it again when a session
runs code it did not run before (a new tool, a new dependency): a function missing from the
list still works, it only sits among the rest of the code, where touching it maps 64 KB.
Needs python3 and valgrind.
"""

import bisect
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "session.ld")
HEADER = """\
/* Written by order.py (see there); build.rs links the release binary with it.
   The functions a `switchboard mcp` session ran: the local sessions', those only a session
   through a relay ran, then the same names with any instantiating crate. The output section
   is `.text` itself, inserted where lld puts `.text`: lld adds the rest of the code to it, so
   the binary has one `.text` as before (valgrind names only what is in `.text`). GNU ld makes
   a second `.text` of the rest. */
"""
CALLGRIND = ["valgrind", "--tool=callgrind", "--dump-instr=yes", "--compress-pos=no",
             "--compress-strings=no"]


class Session:
    """One `switchboard mcp` under callgrind, spoken to over its pipes as an agent client does."""

    def __init__(self, binary, env, relay_args, profile):
        self.proc = subprocess.Popen(
            CALLGRIND + [f"--callgrind-out-file={profile}", "--", binary] + relay_args + ["mcp"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
            env=dict(env, SWITCHBOARD_NAME="order"))
        self.lines = []
        self.cv = threading.Condition()
        self.next_id = 0
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            with self.cv:
                self.lines.append(json.loads(line))
                self.cv.notify_all()

    def _wait(self, pred, timeout=120):
        end = time.time() + timeout
        with self.cv:
            while True:
                for i, v in enumerate(self.lines):
                    if pred(v):
                        return self.lines.pop(i)
                if time.time() > end:
                    raise TimeoutError("no answer from the session")
                self.cv.wait(1)

    def notify(self, method):
        self._write({"jsonrpc": "2.0", "method": method})

    def request(self, method, params):
        self.next_id += 1
        rid = self.next_id
        self._write({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})
        return self._wait(lambda v: v.get("id") == rid)

    def call(self, tool, args):
        return self.request("tools/call", {"name": tool, "arguments": args})

    def pushed(self):
        return self._wait(lambda v: v.get("method") == "notifications/claude/channel")

    def _write(self, msg):
        self.proc.stdin.write((json.dumps(msg) + "\n").encode())
        self.proc.stdin.flush()

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(120)


def session(binary, env, relay_args, profile):
    """What an agent does in a session: every tool, resource and prompt, and pushed mail."""
    cli = [binary] + relay_args + ["--as", "x"]
    quiet = {"env": env, "check": True, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    s = Session(binary, env, relay_args, profile)
    s.request("initialize", {
        "protocolVersion": "2025-06-18",
        "capabilities": {"experimental": {"claude/channel": {}}},
        "clientInfo": {"name": "claude-code", "version": "order"}})
    s.notify("notifications/initialized")
    s.request("tools/list", {})
    s.call("peers", {})
    subprocess.run(cli + ["send", "order", "hello"], **quiet)
    subprocess.run(cli + ["ask", "order", "where is the schema?"], **quiet)
    s.call("profile", {"summary": "ordering the binary"})
    s.call("peers", {"scope": "room"})
    s.call("send", {"to": "order", "text": "to myself"})
    s.call("send", {"to": "x", "text": "hello x"})
    s.call("send", {"broadcast": "room", "text": "hello room"})
    s.call("inbox", {"limit": 10})
    s.call("sent", {})
    s.call("sent", {"id": 3})
    s.call("ask", {"to": "x", "question": "and yours?"})
    s.call("questions", {"open": True})
    # Questions are numbered with the messages: one of these is x's, one its own, one none.
    for qid in (1, 2, 3):
        s.call("answer", {"id": qid, "text": "migrations/001.sql", "basis": "verified",
                          "sources": ["migrations/001.sql:1"]})
    s.call("answer", {"id": 2, "decline": "answered already"})
    s.call("questions", {})
    s.call("questions", {"id": 1})
    s.call("dispatch", {"agent": "worker", "prompt": "nothing", "ttl": 60})
    s.call("job", {})
    s.call("job", {"id": 1})
    s.call("job", {"id": 1, "cancel": True})
    s.call("inbox", {"ack": [1, 2, 3]})
    s.call("inbox", {"wait": 1})
    s.request("resources/list", {})
    s.request("resources/read", {"uri": "switchboard://inbox"})
    s.request("resources/read", {"uri": "switchboard://peers"})
    s.request("resources/subscribe", {"uri": "switchboard://inbox"})
    s.request("prompts/list", {})
    s.request("prompts/get", {"name": "inbox", "arguments": {}})
    s.request("ping", {})
    for i in range(20):
        subprocess.run(cli + ["send", "order", f"push {i}"], **quiet)
        s.pushed()
    s.call("inbox", {})
    s.close()


def modern_session(binary, env, profile):
    """A 2026-07-28 client, as Claude Code is when it does not ask for channels: no
    `initialize`, the revision and the client named in every request's `_meta`."""
    meta = {"io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "claude-code", "version": "order"},
            "io.modelcontextprotocol/clientCapabilities": {}}
    quiet = {"env": env, "check": True, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    s = Session(binary, env, [], profile)
    s.request("server/discover", {"_meta": meta})
    s.request("tools/list", {"_meta": meta})
    # A tool call answers once the session is registered, so that mail can reach it.
    s.request("tools/call", {"_meta": meta, "name": "peers", "arguments": {}})
    subprocess.run([binary, "--as", "x", "send", "order", "hello"], **quiet)
    for tool, args in [("peers", {}), ("send", {"to": "x", "text": "hello x"}),
                       ("inbox", {}), ("sent", {}), ("questions", {}), ("job", {})]:
        s.request("tools/call", {"_meta": meta, "name": tool, "arguments": args})
    s.request("resources/list", {"_meta": meta})
    s.request("resources/read", {"_meta": meta, "uri": "switchboard://inbox"})
    s.request("prompts/get", {"_meta": meta, "name": "inbox", "arguments": {}})
    s.close()


def executed(profile, binary):
    """The names of the binary's functions that ran, in the order of their addresses."""
    real = os.path.realpath(binary)
    addrs, ob = set(), None
    with open(profile, errors="replace") as f:
        for line in f:
            if line.startswith("ob="):
                ob = os.path.realpath(line[3:].strip())
            elif line.startswith("0x") and ob == real:
                addrs.add(int(line.split()[0], 16))
    nm = subprocess.run(["nm", "--defined-only", "-S", binary], capture_output=True, text=True,
                        check=True).stdout
    syms = sorted((int(a, 16), int(s, 16), n) for a, s, t, n in
                  (line.split(" ", 3) for line in nm.splitlines() if line.count(" ") >= 3)
                  if t in "tTwW" and int(s, 16) > 0)
    starts = [a for a, _, _ in syms]
    ran = set()
    for a in addrs:
        i = bisect.bisect_right(starts, a) - 1
        if i >= 0 and a < syms[i][0] + syms[i][1]:
            ran.add(i)
    ran = [syms[i][2] for i in sorted(ran)]
    return ran


def pattern(name, any_instance):
    """The section name pattern of a function that ran, or None.

    A C function's name is kept whole: GCC names its copies (`.part.0`, `.constprop.0`) the
    same way in every build. A Rust (v0) name loses what changes with the toolchain, the
    dependencies and the features: its crate disambiguators (`Cs…_`) and back-references
    (`B…_`), and the `.N` LLVM gives a copy. With `any_instance`, a generic function's name
    also loses the crate it was instantiated in, since another build may call another crate's
    copy (which one follows the crates' hashes); None for any other function."""
    if not name.startswith("_R"):
        return None if any_instance else name
    copy = "." in name
    name = re.sub(r"\..*$", "", name)
    name = re.sub(r"Cs[0-9A-Za-z]+_", "Cs*_", name)
    name = re.sub(r"B[0-9A-Za-z]*_", "B*_", name)
    if not any_instance:
        return name + ".*" if copy else name
    # The instantiating crate ends the name: a back-reference, or a crate root whose name is
    # exactly as long as its length says.
    if name.endswith("B*_"):
        return name[:-3] + "*"
    m = re.search(r"Cs\*_(\d+)([0-9A-Za-z_]+)$", name)
    if m and len(m.group(2)) == int(m.group(1)) and m.start() > 4:
        return name[: m.start()] + "*"
    return None


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    binary = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory() as tmp:
        local_home, relay_home = os.path.join(tmp, "local"), os.path.join(tmp, "relay")
        os.makedirs(local_home), os.makedirs(relay_home)
        env = dict(os.environ, SWITCHBOARD_HOME=local_home)
        session(binary, env, [], os.path.join(tmp, "local.cg"))
        renv = dict(os.environ, SWITCHBOARD_HOME=relay_home)
        serve = subprocess.Popen([binary, "serve", "--listen", "127.0.0.1:0"], env=renv,
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            url = serve.stdout.readline().decode().strip().removeprefix("listening on ")
            token = subprocess.run([binary, "tokens", "create", "--room", "order"], env=renv,
                                   capture_output=True, text=True, check=True).stdout.strip()
            session(binary, renv, ["--relay", url, "--token", token], os.path.join(tmp, "relay.cg"))
        finally:
            serve.terminate()
            serve.wait(30)
        modern_home = os.path.join(tmp, "modern")
        os.makedirs(modern_home)
        menv = dict(os.environ, SWITCHBOARD_HOME=modern_home)
        menv.pop("SWITCHBOARD_CHANNELS", None)
        modern_session(binary, menv, os.path.join(tmp, "modern.cg"))
        local = executed(os.path.join(tmp, "local.cg"), binary)
        local += executed(os.path.join(tmp, "modern.cg"), binary)
        relay = executed(os.path.join(tmp, "relay.cg"), binary)
    if not any(n.startswith("_R") for n in local):
        sys.exit("no v0 symbol names in the binary: build it with .cargo/config.toml's rustflags")
    # The copies that ran first, so that a copy that did not run stays out of their way; then
    # any copy of those functions, for a build that calls another crate's.
    patterns, seen = [], {None}
    for any_instance in (False, True):
        for name in local + relay:
            p = pattern(name, any_instance)
            if p not in seen:
                seen.add(p)
                patterns.append(p)
    with open(OUT, "w") as f:
        f.write(HEADER)
        f.write("SECTIONS {\n  .text : {\n")
        for p in patterns:
            # `.text.unlikely.<name>`: what LLVM and GCC think cold; `<name>.<n>`: their copies.
            f.write(f"    *(.text.{p} .text.unlikely.{p})\n")
        f.write("  }\n}\nINSERT BEFORE .init;\n")
    print(f"{OUT}: {len(patterns)} patterns for {len(set(local + relay))} functions "
          f"({len(set(local))} in a local session)")


if __name__ == "__main__":
    main()
