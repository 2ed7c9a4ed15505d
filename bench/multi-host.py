#!/usr/bin/env python3
"""The multi-host scale bench (issue 17): a `vpc lab up -f` of HOSTS hosts with PER ENIs each
(guests included), then
  1. ENI create -> first packet on a remote host: an ENI made through h01's API for a guest on
     another host (its veth made first, as a hypervisor would), timed from the call until a
     guest on h01 gets its first echo reply (ICMP every 2 ms from a raw socket);
  2. TCP goodput of one stream on one host, across hosts on one link, and across hosts through
     the fabric's router, alternated, medians.
Writes bench/multi-host.md. Run as root with a release build (a debug build's agents spend
several times the CPU, and ten of them share this machine's CPUs):
  cargo build --release -p vpc-user --bin vpc && python3 bench/multi-host.py target/release/vpc [HOSTS PER CREATES]
Numbers are of this machine and this run: only the ratios measured side by side mean anything."""
import json, os, socket, statistics, struct, subprocess, sys, time

VPC = sys.argv[1] if len(sys.argv) > 1 else "target/release/vpc"
HOSTS = int(sys.argv[2]) if len(sys.argv) > 2 else 10
PER = int(sys.argv[3]) if len(sys.argv) > 3 else 20
CREATES = int(sys.argv[4]) if len(sys.argv) > 4 else 30
PREFIX, STATE, BPFFS = "sc", "/tmp/vpc-scale", "/sys/fs/bpf/vpc-scale"
G = ["--bpffs", BPFFS, "--state-dir", STATE, "--prefix", PREFIX]
host = lambda i: f"h{i:02d}"

def topology():
    out = ["vpcs:", "  - name: big", "    cidr: 10.0.0.0/8", "    vswitches:"]
    out += [f"      - {{name: s{h}, cidr: 10.{h}.0.0/16, zone: a}}" for h in range(1, HOSTS + 1)]
    out += ["    security_groups:", "      - name: all", "        rules: [{direction: ingress, protocol: all, peer: 10.0.0.0/8}]", "    enis:"]
    for h in range(1, HOSTS + 1):
        out += [f"      - {{name: e{h}x{i}, vswitch: s{h}, ip: 10.{h}.0.{i + 10}, security_groups: [all], host: {host(h)}}}" for i in range(PER)]
    return "\n".join(out) + "\n"

def call(h, action, body):
    """POST /api/ACTION on host h's agent socket."""
    s = socket.socket(socket.AF_UNIX)
    s.connect(f"{STATE}/{host(h)}/vpc.sock")
    data = json.dumps(body)
    s.sendall(f"POST /api/{action} HTTP/1.1\r\nHost: vpc\r\nContent-Type: application/json\r\nContent-Length: {len(data)}\r\nConnection: close\r\n\r\n{data}".encode())
    raw = b""
    while chunk := s.recv(65536):
        raw += chunk
    head, _, text = raw.partition(b"\r\n\r\n")
    if b" 200 " not in head.split(b"\r\n")[0]:
        raise RuntimeError(f"{action}: {text[:300]}")
    return json.loads(text)

def ip(*args):
    subprocess.run(["ip", *args], check=True)

PROBE = r'''
import socket, struct, sys, time
to = sys.argv[1]
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.settimeout(0.002)
def checksum(b):
    t = sum(struct.unpack("!%dH" % (len(b) // 2), b)); t = (t >> 16) + (t & 0xffff); return ~(t + (t >> 16)) & 0xffff
seq = 0
print("ready", flush=True)
while True:
    seq += 1
    h = struct.pack("!BBHHH", 8, 0, 0, 4242, seq & 0xffff)
    s.sendto(struct.pack("!BBHHH", 8, 0, checksum(h + b"vpcscale"), 4242, seq & 0xffff) + b"vpcscale", (to, 0))
    try:
        while True:
            data, addr = s.recvfrom(256)
            if addr[0] == to and data[20] == 0:
                print(time.time(), flush=True); sys.exit(0)
    except socket.timeout:
        pass
'''

def first_packet(k):
    """Create ENI n{k} on a host other than h01 through h01's API; seconds until it answers."""
    h = 2 + k % (HOSTS - 1)
    name, guest, ifname = f"n{k}", f"{PREFIX}n{k}", f"{PREFIX}n{k}h"
    addr, mac = f"10.{h}.1.{10 + k}", f"02:00:00:0e:{k // 256:02x}:{k % 256:02x}"
    ip("netns", "add", guest)
    ip("-n", f"{PREFIX}{host(h)}", "link", "add", ifname, "type", "veth", "peer", "name", "eth0", "netns", guest)
    ip("-n", f"{PREFIX}{host(h)}", "link", "set", ifname, "up")
    for line in ["link set lo up", f"link set eth0 address {mac}", f"addr add {addr}/16 dev eth0", "link set eth0 up", f"route add default via 10.{h}.255.253"]:
        ip("-n", guest, *line.split())
    probe = subprocess.Popen(["ip", "netns", "exec", f"{PREFIX}e1x0", "python3", "-c", PROBE, addr], stdout=subprocess.PIPE, text=True)
    assert probe.stdout.readline().strip() == "ready"
    vswitch = next(v["VSwitchId"] for v in call(1, "DescribeVSwitches", {})["VSwitches"] if v["VSwitchName"] == f"s{h}")
    group = call(1, "DescribeSecurityGroups", {"SecurityGroupName": "all"})["SecurityGroups"][0]["SecurityGroupId"]
    asked = time.time()
    call(1, "CreateNetworkInterface", {"VSwitchId": vswitch, "NetworkInterfaceName": name, "PrimaryIpAddress": addr, "MacAddress": mac,
                                       "Interface": ifname, "Host": host(h), "SecurityGroupIds": group})
    try:
        answered = float(probe.communicate(timeout=20)[0].strip())
    finally:
        probe.kill()
    return answered - asked

SINK = r'''
import socket, sys
l = socket.socket(); l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); l.bind(("0.0.0.0", 5999)); l.listen(1)
print("ready", flush=True)
c, _ = l.accept(); n = 0
while d := c.recv(1 << 20): n += len(d)
print(n, flush=True)
'''
SOURCE = r'''
import socket, sys, time
c = socket.create_connection((sys.argv[1], 5999)); buf = b"x" * (1 << 20); t = time.time()
for _ in range(int(sys.argv[2])): c.sendall(buf)
c.shutdown(socket.SHUT_WR); c.recv(1); print(time.time() - t)
'''

def goodput(src, dst, dst_ip, mb=200):
    sink = subprocess.Popen(["ip", "netns", "exec", f"{PREFIX}{dst}", "python3", "-c", SINK], stdout=subprocess.PIPE, text=True)
    assert sink.stdout.readline().strip() == "ready"
    took = float(subprocess.run(["ip", "netns", "exec", f"{PREFIX}{src}", "python3", "-c", SOURCE, dst_ip, str(mb)], capture_output=True, text=True, check=True).stdout)
    assert int(sink.communicate(timeout=60)[0].strip()) == mb << 20
    return mb / took

def main():
    os.makedirs(STATE, exist_ok=True)
    path = f"{STATE}/scale.yaml"
    open(path, "w").write(topology())
    subprocess.run([VPC, *G, "lab", "down", "-f", path], capture_output=True)
    start = time.time()
    subprocess.run([VPC, *G, "lab", "up", "-f", path], check=True, capture_output=True)
    up = time.time() - start
    print(f"lab up {up:.0f} s", file=sys.stderr, flush=True)
    while any(h["Status"] == "Down" for h in call(1, "DescribeHosts", {})["Hosts"]):
        time.sleep(0.2)
    try:
        firsts = sorted(first_packet(k) for k in range(CREATES))
        rates = {"one host (e1x0 -> e1x1)": [], "across hosts, one link (h01 -> h03)": [], "across hosts, routed (h01 -> h02)": []}
        for _ in range(3):
            rates["one host (e1x0 -> e1x1)"].append(goodput("e1x0", "e1x1", "10.1.0.11"))
            rates["across hosts, one link (h01 -> h03)"].append(goodput("e1x0", "e3x0", "10.3.0.10"))
            rates["across hosts, routed (h01 -> h02)"].append(goodput("e1x0", "e2x0", "10.2.0.10"))
    finally:
        subprocess.run([VPC, *G, "lab", "down", "-f", path], capture_output=True)
        for k in range(CREATES):
            subprocess.run(["ip", "netns", "del", f"{PREFIX}n{k}"], capture_output=True)
    p = lambda q: firsts[min(len(firsts) - 1, int(q * len(firsts)))]
    local = statistics.median(rates["one host (e1x0 -> e1x1)"])
    out = [f"# Multi-host scale bench ({time.strftime('%Y-%m-%d')})", "",
           f"`python3 bench/multi-host.py target/release/vpc {HOSTS} {PER} {CREATES}` (a release build): {HOSTS} hosts, {HOSTS * PER} ENIs with guests, on this machine "
           f"(2 CPUs, every host a network namespace, the fabric two bridges routed by a third). `vpc lab up` took {up:.0f} s.", "",
           f"## ENI create -> first packet on a remote host ({CREATES} creates)", "",
           f"Through h01's API, for guests on h02-h{HOSTS:02d}; until a guest on h01 gets an echo reply (probe every 2 ms).", "",
           f"| p50 | p90 | p99 | max |", "|---:|---:|---:|---:|",
           f"| {p(0.5) * 1000:.0f} ms | {p(0.9) * 1000:.0f} ms | {p(0.99) * 1000:.0f} ms | {firsts[-1] * 1000:.0f} ms |", "",
           "## One TCP stream, 200 MB, three alternations (medians)", "", "| path | MB/s | share of one host |", "|---|---:|---:|"]
    for name, values in rates.items():
        m = statistics.median(values)
        out.append(f"| {name} | {m:.0f} | {100 * m / local:.0f} % |")
    open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "multi-host.md"), "w").write("\n".join(out) + "\n")
    print("\n".join(out))

main()
