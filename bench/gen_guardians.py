#!/usr/bin/env python3
"""Writes a roster CSV (UTF-8, CRLF) of guardians with exactly two e-mail addresses each,
for bench/delivery.sh.

    bench/gen_guardians.py ROWS [--seed S] > guardians.csv

Every address is unique. The domains mix PC/smartphone providers with the Japanese
carriers (about 45 % of first addresses, as in gen_roster.py), so the per-domain bounds of
the delivery engine see a realistic spread; every local part is a plain dot-atom.
Deterministic for a given seed.
"""

import argparse
import random
import sys

SURNAMES = ["佐藤", "鈴木", "高橋", "田中", "伊藤", "渡辺", "山本", "中村", "小林", "加藤", "吉田", "山田"]
GIVEN = ["花子", "由美", "恵子", "太郎", "一郎", "健太", "美香", "直樹", "さくら", "誠"]
CHILDREN = ["蓮", "陽翔", "湊", "陽菜", "凛", "結衣", "葵", "美咲", "大輝", "颯太"]
PERSONAL = ["gmail.com", "yahoo.co.jp", "icloud.com", "outlook.jp", "example.jp", "example.co.jp"]
CARRIERS = ["docomo.ne.jp", "ezweb.ne.jp", "au.com", "softbank.ne.jp", "i.softbank.jp", "ymobile.ne.jp"]
HEADER = "name,student_name,relation,email1,email2,grade,class,external_id"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=int)
    parser.add_argument("--seed", type=int, default=20261123)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    out = sys.stdout
    out.reconfigure(encoding="utf-8", newline="")
    out.write(HEADER + "\r\n")
    for n in range(1, args.rows + 1):
        surname = rng.choice(SURNAMES)
        first = rng.choice(CARRIERS if rng.random() < 0.45 else PERSONAL)
        second = rng.choice(PERSONAL)
        cells = [
            f"{surname} {rng.choice(GIVEN)}",
            f"{surname} {rng.choice(CHILDREN)}",
            rng.choice(["母", "父"]),
            f"g{n}.a@{first}",
            f"g{n}.b@{second}",
            str(rng.randint(1, 6)),
            rng.choice("ABCD"),
            f"B{n:06d}",
        ]
        out.write(",".join(cells) + "\r\n")


if __name__ == "__main__":
    main()
