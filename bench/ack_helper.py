#!/usr/bin/env python3
"""Helpers for bench/ack.sh.

    ack_helper.py tokens  < pairs.tsv > tokens.txt   (ACK_SECRET in the environment)
    ack_helper.py roster ROWS FIRST                  CSV of guardians bench-gFIRST… (no addresses)
    ack_helper.py cpu SERVER_PID                     CPU ticks: server, postgres, machine busy, machine total

`tokens` computes the personal-link token of each (message id, member id) line exactly as
`JwtKeys::receipt_token` does (src/auth/tokens.rs):
    link_key = HMAC-SHA256(secret, "renrakumo personal links v1")
    token    = base64url-no-pad(message uuid ‖ member uuid ‖ HMAC-SHA256(link_key, message ‖ member)[:16])
and writes them shuffled (fixed seed), so the benchmark touches recipients in no
particular order, as guardians do.
"""

import base64
import hashlib
import hmac
import os
import random
import sys
import uuid


def receipt_token(link_key: bytes, message_id: str, member_id: str) -> str:
    message = uuid.UUID(message_id).bytes
    member = uuid.UUID(member_id).bytes
    tag = hmac.new(link_key, message + member, hashlib.sha256).digest()[:16]
    return base64.urlsafe_b64encode(message + member + tag).rstrip(b"=").decode("ascii")


def tokens() -> None:
    secret = os.environ["ACK_SECRET"].encode()
    link_key = hmac.new(secret, b"renrakumo personal links v1", hashlib.sha256).digest()
    out = []
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        message_id, member_id = line.split("|" if "|" in line else "\t")[:2]
        out.append(receipt_token(link_key, message_id.strip(), member_id.strip()))
    random.Random(20261123).shuffle(out)
    sys.stdout.write("\n".join(out) + "\n")


def roster(rows: int, first: int) -> None:
    out = sys.stdout
    out.reconfigure(newline="")
    out.write("name,external_id\r\n")
    for n in range(first, first + rows):
        out.write(f"bench-g{n:06d},ACK{n:06d}\r\n")


def ticks_of(pid: str) -> int:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime (fields 14 and 15)
    except (OSError, IndexError, ValueError):
        return 0


def cpu(server_pid: str) -> None:
    postgres = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                comm = f.read().strip()
        except OSError:
            continue
        if comm == "postgres":
            postgres += ticks_of(pid)
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    total = sum(values[:8])  # user nice system idle iowait irq softirq steal
    idle = values[3] + values[4]
    print(ticks_of(server_pid), postgres, total - idle, total, os.sysconf("SC_CLK_TCK"))


def main() -> None:
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "tokens":
        tokens()
    elif command == "roster":
        roster(int(sys.argv[2]), int(sys.argv[3]))
    elif command == "check":
        check(sys.argv[2], sys.argv[3])
    elif command == "cpu":
        cpu(sys.argv[2])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
