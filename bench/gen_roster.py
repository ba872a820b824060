#!/usr/bin/env python3
"""Writes a realistic roster CSV (UTF-8, CRLF, the import's columns) for bench/import.sh.

    bench/gen_roster.py ROWS [--promote N] [--seed S] > roster.csv
    bench/gen_roster.py 0 --hostile SHAPE > hostile.csv

Deterministic for a given seed: the same ROWS and seed give the same guardians, so a
second file with --promote 1 holds the same people (same external_id, names, addresses)
one school year later: every grade moved on by one (6 wraps to 1) and the class lists
with it, i.e. every row changed. Only characters that CP932 (Excel's Shift_JIS) can hold
are used, including the CP932-only 髙, 﨑 and ①, and half-width kana.

--hostile writes instead one of the files an attacker with `members:write` may post, each
just under the 10 MiB body limit (see HOSTILE).
"""

import argparse
import random
import sys

# (kanji, kana, romaji)
SURNAMES = [
    ("佐藤", "サトウ", "sato"), ("鈴木", "スズキ", "suzuki"), ("高橋", "タカハシ", "takahashi"),
    ("髙橋", "タカハシ", "takahashi"), ("田中", "タナカ", "tanaka"), ("伊藤", "イトウ", "ito"),
    ("渡辺", "ワタナベ", "watanabe"), ("渡邊", "ワタナベ", "watanabe"), ("山本", "ヤマモト", "yamamoto"),
    ("中村", "ナカムラ", "nakamura"), ("小林", "コバヤシ", "kobayashi"), ("加藤", "カトウ", "kato"),
    ("吉田", "ヨシダ", "yoshida"), ("山田", "ヤマダ", "yamada"), ("佐々木", "ササキ", "sasaki"),
    ("山口", "ヤマグチ", "yamaguchi"), ("松本", "マツモト", "matsumoto"), ("井上", "イノウエ", "inoue"),
    ("木村", "キムラ", "kimura"), ("林", "ハヤシ", "hayashi"), ("斎藤", "サイトウ", "saito"),
    ("齋藤", "サイトウ", "saito"), ("清水", "シミズ", "shimizu"), ("山崎", "ヤマザキ", "yamazaki"),
    ("山﨑", "ヤマザキ", "yamazaki"), ("森", "モリ", "mori"), ("池田", "イケダ", "ikeda"),
    ("橋本", "ハシモト", "hashimoto"), ("阿部", "アベ", "abe"), ("石川", "イシカワ", "ishikawa"),
    ("前田", "マエダ", "maeda"), ("藤田", "フジタ", "fujita"), ("小川", "オガワ", "ogawa"),
    ("後藤", "ゴトウ", "goto"), ("岡田", "オカダ", "okada"), ("長谷川", "ハセガワ", "hasegawa"),
    ("村上", "ムラカミ", "murakami"), ("近藤", "コンドウ", "kondo"), ("石井", "イシイ", "ishii"),
    ("坂本", "サカモト", "sakamoto"), ("遠藤", "エンドウ", "endo"), ("青木", "アオキ", "aoki"),
    ("藤井", "フジイ", "fujii"), ("西村", "ニシムラ", "nishimura"), ("福田", "フクダ", "fukuda"),
    ("太田", "オオタ", "ota"), ("三浦", "ミウラ", "miura"), ("藤原", "フジワラ", "fujiwara"),
    ("岡本", "オカモト", "okamoto"), ("松田", "マツダ", "matsuda"), ("中島", "ナカジマ", "nakajima"),
    ("原田", "ハラダ", "harada"), ("小野", "オノ", "ono"), ("竹内", "タケウチ", "takeuchi"),
]
MOTHERS = [
    ("花子", "ハナコ", "hanako"), ("由美", "ユミ", "yumi"), ("恵子", "ケイコ", "keiko"),
    ("裕子", "ユウコ", "yuko"), ("直美", "ナオミ", "naomi"), ("智子", "トモコ", "tomoko"),
    ("真由美", "マユミ", "mayumi"), ("美香", "ミカ", "mika"), ("愛", "アイ", "ai"),
    ("彩", "アヤ", "aya"), ("麻衣", "マイ", "mai"), ("さくら", "サクラ", "sakura"),
    ("①子", "イチコ", "ichiko"), ("ｱｹﾐ", "アケミ", "akemi"), ("千尋", "チヒロ", "chihiro"),
]
FATHERS = [
    ("太郎", "タロウ", "taro"), ("一郎", "イチロウ", "ichiro"), ("健太", "ケンタ", "kenta"),
    ("大輔", "ダイスケ", "daisuke"), ("剛", "ツヨシ", "tsuyoshi"), ("誠", "マコト", "makoto"),
    ("拓也", "タクヤ", "takuya"), ("翔", "ショウ", "sho"), ("浩二", "コウジ", "koji"),
    ("隆", "タカシ", "takashi"), ("ｹﾝｼﾞ", "ケンジ", "kenji"), ("直樹", "ナオキ", "naoki"),
]
GRANDPARENTS = [
    ("和子", "カズコ", "kazuko", "祖母"), ("節子", "セツコ", "setsuko", "祖母"),
    ("清", "キヨシ", "kiyoshi", "祖父"), ("茂", "シゲル", "shigeru", "祖父"),
]
CHILDREN = ["蓮", "陽翔", "湊", "大翔", "悠真", "翔太", "陽菜", "凛", "結衣", "葵", "美咲", "結菜",
            "芽依", "大輝", "颯太", "樹", "心春", "紬", "莉子", "蒼"]
CLUBS = ["サッカー部", "野球部", "吹奏楽部", "合唱部", "バスケットボール部", "陸上部", "科学クラブ", "茶道クラブ"]
ROUTES = ["北ルート", "南ルート", "東ルート", "西ルート", "駅前ルート"]
PERSONAL = ["gmail.com", "yahoo.co.jp", "icloud.com", "outlook.jp", "example.jp", "example.co.jp"]
CARRIERS = ["docomo.ne.jp", "ezweb.ne.jp", "au.com", "softbank.ne.jp", "i.softbank.jp", "ymobile.ne.jp"]

HEADER = "name,name_kana,student_name,relation,email1,email2,email3,email4,grade,class,club,route,external_id,lists"


def csv_cell(value):
    if any(c in value for c in ',"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def guardian(rng, n):
    surname, surname_kana, surname_romaji = rng.choice(SURNAMES)
    pick = rng.random()
    if pick < 0.62:
        given, given_kana, given_romaji = rng.choice(MOTHERS)
        relation = "母"
    elif pick < 0.92:
        given, given_kana, given_romaji = rng.choice(FATHERS)
        relation = "父"
    elif pick < 0.97:
        given, given_kana, given_romaji, relation = rng.choice(GRANDPARENTS)
    else:
        given, given_kana, given_romaji = rng.choice(MOTHERS)
        relation = "その他"
    child = rng.choice(CHILDREN)

    # 1 to 3 addresses, all different; `n` keeps them unique across the file.
    count = rng.choices([1, 2, 3], weights=[50, 35, 15])[0]
    emails = []
    for k in range(count):
        if k == 0 or rng.random() < 0.5:
            domain = rng.choice(CARRIERS if rng.random() < 0.45 else PERSONAL)
        else:
            domain = rng.choice(PERSONAL)
        if domain in CARRIERS and rng.random() < 0.2:
            # Pre-2009 carrier addresses that RFC 5322 refuses but that receive mail.
            local = rng.choice([f"{given_romaji}..{surname_romaji}{n}", f"{given_romaji}{n}.", f"{surname_romaji}.{n}..papa"])
        else:
            local = rng.choice([f"{given_romaji}.{surname_romaji}{n}", f"{surname_romaji}{n}{k}", f"{given_romaji}_{n}-{k}"])
        address = f"{local}@{domain}"
        if address.lower() not in (e.lower() for e in emails):
            emails.append(address)
    return {
        "name": f"{surname} {given}",
        "name_kana": f"{surname_kana} {given_kana}",
        "student_name": f"{surname} {child}",
        "relation": relation,
        "emails": emails,
        "grade": rng.randint(1, 6),
        "class": rng.choice("ABCD"),
        "club": rng.choice(CLUBS) if rng.random() < 0.55 else "",
        "route": rng.choice(ROUTES) if rng.random() < 0.7 else "",
        "external_id": f"S{n:06d}",
    }


LIMIT = 10 * 1024 * 1024 - 64


def hostile(shape):
    """The file of that shape, as bytes."""
    if shape == "wide":
        # The finding of #14: a 20,000-column header and 50,000 one-cell rows.
        return ("name," + ",".join(f"c{i}" for i in range(20_000)) + "\n" + "x\n" * 50_000).encode()
    if shape == "cell":
        # One cell of almost 10 MiB.
        return ('name,grade\n山田,"' + "9" * (LIMIT - 40) + '"\n').encode()
    if shape == "rows":
        # The most rows 10 MiB holds: 5 million of one character.
        return ("name\n" + "a\n" * (LIMIT // 2 - 8)).encode()
    if shape == "quotes":
        # Every cell quoted, made of escaped quotes and separators, the widest header taken.
        header = "name," + ",".join(f"c{i}" for i in range(43))
        cell = '"' + '"",' * 300 + '"'
        row = ",".join([cell] * 44) + "\n"
        return (header + "\n" + row * ((LIMIT - len(header)) // len(row))).encode()
    if shape == "errors":
        # 50,000 rows, every cell of them an error: the widest header, bad names and addresses.
        header = "name,email1,email2,email3,email4," + ",".join(f"c{i}" for i in range(39))
        row = "\t" + ",bad" * 4 + ",\t" * 39 + "\n"
        return (header + "\n" + row * 50_000).encode()
    raise SystemExit(f"unknown shape {shape}; one of {', '.join(HOSTILE)}")


HOSTILE = ["wide", "cell", "rows", "quotes", "errors"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("rows", type=int)
    parser.add_argument("--promote", type=int, default=0, help="years to move every grade on (6 wraps to 1)")
    parser.add_argument("--seed", type=int, default=20261123)
    parser.add_argument("--hostile", choices=HOSTILE, help="write this hostile file instead of a roster")
    args = parser.parse_args()
    if args.hostile:
        sys.stdout.buffer.write(hostile(args.hostile))
        return
    rng = random.Random(args.seed)
    out = sys.stdout
    out.reconfigure(encoding="utf-8", newline="")
    out.write(HEADER + "\r\n")
    for n in range(1, args.rows + 1):
        g = guardian(rng, n)
        grade = (g["grade"] - 1 + args.promote) % 6 + 1
        lists = [f"{grade}年{g['class']}組"] + ([g["club"]] if g["club"] else [])
        emails = g["emails"] + [""] * (4 - len(g["emails"]))
        cells = [g["name"], g["name_kana"], g["student_name"], g["relation"], *emails, str(grade), g["class"],
                 g["club"], g["route"], g["external_id"], ";".join(lists)]
        out.write(",".join(csv_cell(c) for c in cells) + "\r\n")


if __name__ == "__main__":
    main()
