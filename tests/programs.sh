#!/usr/bin/env bash
# programs.sh LIB — real programs under LD_PRELOAD=LIB, each checked against
# the same program's output under the system malloc: python3 allocating
# heavily, sort on a large file, a C compile with gcc (and running the result),
# a multi-threaded HTTP server, python3 starting subprocesses from worker
# threads while others allocate, a bash pipeline, git, and sqlite3 when
# installed. Prints PASS/FAIL/SKIP lines and a count (tests/lib.sh).
set -u
. "$(dirname "$0")/lib.sh"
lib=$(realpath "$1")
name=${2:-programs}
TEST_PREFIX="$name: "
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# same_output <what> <command...>: run with and without the preload, compare stdout and status
same_output() {
  local what=$1; shift
  "$@" >"$tmp/ref.out" 2>"$tmp/ref.err"; local rs=$?
  LD_PRELOAD=$lib "$@" >"$tmp/hak.out" 2>"$tmp/hak.err"; local hs=$?
  if [ $rs = $hs ] && cmp -s "$tmp/ref.out" "$tmp/hak.out" && [ -s "$tmp/hak.out" ]; then result 0 "$what"
  else result 1 "$what (status $hs vs $rs; stderr: $(head -c 300 "$tmp/hak.err"))"; fi
}

# The preload must really take: hakmem's hak_variant is visible to the program.
LD_PRELOAD=$lib python3 -c 'import ctypes; print(ctypes.CDLL(None).hak_variant)' >/dev/null 2>&1
result $? "python3 sees hakmem's symbols under LD_PRELOAD"

cat >"$tmp/heavy.py" <<'PY'
import json, random
random.seed(7)
d = {}
for i in range(200000):
    d["k%d" % i] = [random.random(), str(i) * (i % 13), {"x": i}]
for i in range(0, 200000, 2):
    del d["k%d" % i]
s = json.dumps(d, sort_keys=True)
t = json.loads(s)
l = sorted((len(v[1]), k) for k, v in t.items())
print(len(s), len(t), l[:3], l[-3:], sum(len(x) for x in s.split(",")))
PY
same_output "python3 heavy dict/json/sort script" python3 "$tmp/heavy.py"

seq 1 400000 | awk '{ srand($1); printf "%d %s line-%x\n", int(rand() * 1e9), substr("abcdefghijklmnopqrstuvwxyz", 1 + $1 % 26), $1 * 7919 }' >"$tmp/big.txt"
same_output "sort on a $(du -h "$tmp/big.txt" | cut -f1) file" sort -S 64M "$tmp/big.txt"
same_output "sort -n -r -k1 (numeric keys)" sort -n -r -k1,1 "$tmp/big.txt"

cat >"$tmp/prog.c" <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
struct node { struct node *next; char name[40]; };
int main(void) {
  struct node *head = NULL;
  for (int i = 0; i < 100000; i++) {
    struct node *n = malloc(sizeof *n);
    snprintf(n->name, sizeof n->name, "node-%d", i);
    n->next = head;
    head = n;
  }
  unsigned long sum = 0;
  while (head) { struct node *n = head; sum += strlen(n->name); head = n->next; free(n); }
  printf("%lu\n", sum);
  return 0;
}
C
if LD_PRELOAD=$lib gcc -O2 -Wall -o "$tmp/prog" "$tmp/prog.c" 2>"$tmp/gcc.err"; then
  result 0 "gcc compiles a C program"
  same_output "the compiled program runs" "$tmp/prog"
else
  result 1 "gcc compiles a C program ($(head -c 300 "$tmp/gcc.err"))"
fi

# A multi-threaded server: python3's ThreadingHTTPServer answering 16 client
# threads at once (each request allocates on a server thread that then exits).
cat >"$tmp/server.py" <<'PY'
import hashlib, http.server, threading, urllib.request
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        n = int(self.path.strip("/"))
        body = ("".join(str(i * n) for i in range(2000)) * 8).encode()
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *a): pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
threading.Thread(target=srv.serve_forever, daemon=True).start()
out = [None] * 64
def client(k):
    for j in range(4):
        i = k * 4 + j
        with urllib.request.urlopen("http://127.0.0.1:%d/%d" % (srv.server_address[1], i + 1)) as r:
            out[i] = hashlib.sha256(r.read()).hexdigest()
ts = [threading.Thread(target=client, args=(k,)) for k in range(16)]
[t.start() for t in ts]; [t.join() for t in ts]
srv.shutdown()
print(hashlib.sha256("".join(out).encode()).hexdigest())
PY
same_output "multi-threaded HTTP server (python3, 16 clients, 64 requests)" python3 "$tmp/server.py"
# Subprocesses started from worker threads while other threads allocate: the
# children of a threaded program must find the allocator consistent.
cat >"$tmp/subproc.py" <<'PY'
import subprocess, sys, threading
stop = False
def churn(k):
    while not stop:
        l = [bytes(48) * (i % 7 + 1) for i in range(600)]
        d = {i: str(i) * (i % 5) for i in range(300)}
        del l, d
out = []
def spawner(k):
    for i in range(25):
        r = subprocess.run([sys.executable, "-c", "import json; print(sum(len(json.dumps(list(range(n)))) for n in range(%d)))" % (200 + i)],
                           capture_output=True, text=True, check=True)
        out.append((k, i, r.stdout.strip()))
cs = [threading.Thread(target=churn, args=(k,)) for k in range(2)]
[t.start() for t in cs]
ss = [threading.Thread(target=spawner, args=(k,)) for k in range(2)]
[t.start() for t in ss]; [t.join() for t in ss]
stop = True; [t.join() for t in cs]
print(len(out), sorted(out)[:2], sorted(out)[-1])
PY
same_output "python3 subprocess from 2 worker threads while 2 threads allocate (50 children)" python3 "$tmp/subproc.py"
same_output "bash pipeline with fork and exec" bash -c 'for i in $(seq 300); do echo "$i $((i * 7919 % 1000))"; done | sort -k2,2n -k1,1n | awk "{s += \$1 * NR} END {print s}"'

if command -v git >/dev/null; then
  (
    cd "$tmp" && mkdir repo && cd repo && git init -q . && git config user.email t@t && git config user.name t &&
      cp "$tmp/prog.c" . && cp "$tmp/heavy.py" . && git add . && git commit -qm one &&
      seq 1 1000 >>prog.c && git commit -qam two
  ) >/dev/null 2>&1
  same_output "git log --stat and git diff" git -C "$tmp/repo" log --stat -p
else
  skip "git log --stat and git diff" "git is not installed"
fi

if command -v sqlite3 >/dev/null; then
  same_output "sqlite3 builds and queries a table" sqlite3 :memory: \
    "create table t(a,b); with recursive c(x) as (select 1 union all select x+1 from c where x<200000) insert into t select x, hex(randomblob(16)) from c; select count(*), sum(a), count(distinct b) > 199990 from t;"
else
  skip "sqlite3 builds and queries a table" "sqlite3 is not installed"
fi

finish "$name"
