#!/usr/bin/env python3
"""Writes events.ndjson: 30 minutes of realistic Linux/firewall/web traffic with planted
attacks, lightly out of order (up to 5 s of jitter), for the replay and golden tests.

Deterministic (fixed seed). Re-run after changing it: python3 make_mixed.py > events.ndjson
Planted, in event time from 2026-03-02T10:00:00Z:
  +02:00  SSH brute force: 203.0.113.7, 15 failures 4 s apart      -> ssh brute force (>=10 in 2m)
  +06:00  password spraying: 192.0.2.44, 12 users 20 s apart        -> spraying (>=10 users in 5m)
  +10:00  port scan: 198.51.100.23, 40 ports 1 s apart              -> port scan (>=25 ports in 1m)
  +14:00  sudo refusals: mallory, 6 refusals 60 s apart             -> 6 single alerts + sudo abuse (>=5 in 10m)
  +18:00  promiscuous mode on db1                                   -> promiscuous mode
  +20:00  web scanner: 203.0.113.50, 45 404s 1 s apart              -> web scanner (>=30 in 1m)
  +25:00  root SSH login from 10.0.1.5                              -> root login
  background: ~2,200 benign events (a few scattered ssh failures and 404s that stay under every threshold)
"""
import json, random

rnd = random.Random(20260302)
BASE = 1772445600  # 2026-03-02T10:00:00Z
events = []

def ts(sec):
    whole = int(sec)
    ms = int(round((sec - whole) * 1000))
    import datetime
    d = datetime.datetime.fromtimestamp(BASE + whole, datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S") + ".%03dZ" % ms

def add(sec, ev):
    ev = dict(ev)
    ev["utctimestamp"] = ts(sec)
    events.append((sec, ev))

users = ["alice", "bob", "carol", "dave", "erin", "frank"]
internal = ["10.0.1.%d" % i for i in range(2, 40)]

def ssh_ok(sec, ip, user, method="publickey"):
    add(sec, {"hostname": "bastion1", "processname": "sshd", "category": "authentication",
              "summary": f"Accepted {method} for {user} from {ip} port {rnd.randint(40000, 65000)} ssh2",
              "details": {"sourceipaddress": ip, "sourceport": rnd.randint(40000, 65000), "username": user, "success": True, "authmethod": method}})

def ssh_fail(sec, ip, user, host="bastion1"):
    invalid = "invalid user " if user not in users else ""
    add(sec, {"hostname": host, "processname": "sshd", "category": "authentication",
              "summary": f"Failed password for {invalid}{user} from {ip} port {rnd.randint(40000, 65000)} ssh2",
              "details": {"sourceipaddress": ip, "username": user, "success": False, "authmethod": "password"}})

def fw(sec, src, dst, port, action):
    add(sec, {"hostname": "fw1", "processname": "iptables", "category": "firewall",
              "summary": f"{action} IN=eth0 SRC={src} DST={dst} PROTO=TCP DPT={port}",
              "details": {"sourceipaddress": src, "destinationipaddress": dst, "destinationport": port, "protocol": "tcp", "action": action}})

def web(sec, src, uri, status):
    add(sec, {"hostname": "web1", "processname": "nginx", "category": "web", "summary": f"GET {uri} {status}",
              "details": {"sourceipaddress": src, "method": "GET", "uri": uri, "status": status,
                          "useragent": "Mozilla/5.0 (X11; Linux x86_64)", "bytes": rnd.randint(200, 40000)}})

def sudo(sec, user, ok, cmd):
    s = (f"{user} : TTY=pts/0 ; PWD=/home/{user} ; USER=root ; COMMAND={cmd}" if ok
         else f"{user} : user NOT in sudoers ; TTY=pts/1 ; PWD=/home/{user} ; USER=root ; COMMAND={cmd}")
    add(sec, {"hostname": "app2", "processname": "sudo", "category": "authorization", "summary": s,
              "details": {"username": user, "targetuser": "root", "command": cmd, "success": ok}})

def proc(sec, cmd, image, user):
    add(sec, {"hostname": "ws12", "processname": "auditd", "category": "process", "summary": f"execve {image}",
              "details": {"image": image, "commandline": cmd, "parentimage": "/bin/bash", "username": user, "processid": rnd.randint(1000, 60000)}})

# Background traffic, 30 minutes.
sec = 0.0
while sec < 1800:
    sec += rnd.expovariate(1.2)
    k = rnd.random()
    if k < 0.25:
        fw(sec, rnd.choice(internal), "198.51.100.%d" % rnd.randint(1, 200), rnd.choice([80, 443, 53, 123]), "ACCEPT")
    elif k < 0.45:
        web(sec, "198.51.100.%d" % rnd.randint(1, 250), rnd.choice(["/", "/index.html", "/api/items", "/login", "/static/app.js"]), rnd.choice([200, 200, 200, 304, 404]))
    elif k < 0.6:
        u = rnd.choice(users)
        ssh_ok(sec, "10.0.1.%d" % (10 + users.index(u)), u)  # each user from their workstation
    elif k < 0.63:
        ssh_fail(sec, rnd.choice(internal), rnd.choice(users))
    elif k < 0.75:
        sudo(sec, rnd.choice(users[:3]), True, rnd.choice(["/usr/bin/systemctl restart nginx", "/usr/bin/apt update", "/bin/journalctl -u sshd"]))
    elif k < 0.9:
        proc(sec, rnd.choice(["ls -la /var/log", "git pull", "python3 manage.py migrate", "curl -s https://example.org/health"]), "/usr/bin/env", rnd.choice(users))
    else:
        fw(sec, "198.51.100.%d" % rnd.randint(1, 250), "10.0.0.5", rnd.choice([22, 443]), "DROP")

for i in range(15):
    ssh_fail(120 + 4 * i, "203.0.113.7", "root")
for i, u in enumerate(["admin", "oracle", "test", "ubuntu", "pi", "postgres", "git", "deploy", "www", "user", "guest", "support"]):
    ssh_fail(360 + 20 * i, "192.0.2.44", u)
for i in range(40):
    fw(600 + i, "198.51.100.23", "10.0.0.5", 1000 + 37 * i, "DROP")
for i in range(6):
    sudo(840 + 60 * i, "mallory", False, "/bin/bash")
add(1080, {"hostname": "db1", "processname": "kernel", "category": "system", "summary": "device eth0 entered promiscuous mode", "details": {"interface": "eth0"}})
for i in range(45):
    web(1200 + i, "203.0.113.50", f"/backup-{i}.zip", 404)
ssh_ok(1500, "10.0.1.5", "root", "password")

# Deliver in received order: event time plus up to 5 s of jitter.
order = sorted(events, key=lambda e: e[0] + rnd.uniform(0, 5))
for _, ev in order:
    print(json.dumps(ev, separators=(",", ":")))
