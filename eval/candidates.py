#!/usr/bin/env python3
"""Candidate same-issue groups in a teddy message export, for labeling by hand.

Reads the CSV at run time (never copies it) and links two messages when they share a place
name (a run of 2-6 name characters before an estate/site suffix, compared without the
suffix) or their texts share many character 3-grams (Jaccard >= --jaccard). Prints the
connected components, largest (by distinct posters) first, with each message's id, poster,
time and title, so that a person can read them and decide which are one matter.

    python3 eval/candidates.py ../shared/data/teddy2020c/messages_hot.csv --top 40 > /tmp/cands.txt
"""
import argparse
import csv
import re
from collections import defaultdict

SUFFIX = "小区|花园|新城|家园|公寓|大厦|名都|华府|新村|社区|广场|苑|城|村|路|街|学校|中学|小学|幼儿园|医院|公司|市场|工地|厂|站"
STOP = set("的在是我们你他她它了和与及对向从到于有个这那该住家旁边里内外前后为把被让请求给离近往由将也都就还而但或又等一二三四五六七八九十几条座栋所区县市省镇乡")
PLACE = re.compile(r"([\u4e00-\u9fffA-Za-z0-9]{2,8}?)(" + SUFFIX + ")")


def places(text):
    out = set()
    for m in PLACE.finditer(text):
        name = m.group(1)
        # cut at the last stop character: what follows it is the name
        cut = max((i for i, c in enumerate(name) if c in STOP), default=-1)
        name = name[cut + 1:]
        if len(name) >= 2 and not re.fullmatch(r"[A-Z]\d*", name):
            out.add(name)
    return out


def grams(text, n=3):
    t = re.sub(r"\s", "", text)
    return {t[i:i + n] for i in range(len(t) - n + 1)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("csv")
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--jaccard", type=float, default=0.35)
    ap.add_argument("--min-df", type=int, default=2)
    ap.add_argument("--max-df", type=int, default=80, help="ignore place names shared by more")
    a = ap.parse_args()
    rows = list(csv.DictReader(open(a.csv, encoding="utf-8")))
    n = len(rows)
    parent = list(range(n))

    def find(x):
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(x, y):
        parent[find(x)] = find(y)

    by_place = defaultdict(list)
    for i, r in enumerate(rows):
        for p in places(r["留言主题"] + "。" + r["留言详情"]):
            by_place[p].append(i)
    for p, ids in by_place.items():
        if a.min_df <= len(ids) <= a.max_df:
            for j in ids[1:]:
                union(ids[0], j)
    g = [grams(r["留言主题"] + r["留言详情"]) for r in rows]
    index = defaultdict(list)
    for i, s in enumerate(g):
        for x in s:
            index[x].append(i)
    for i, s in enumerate(g):
        shared = defaultdict(int)
        for x in s:
            ids = index[x]
            if len(ids) > 200:
                continue
            for j in ids:
                if j > i:
                    shared[j] += 1
        for j, k in shared.items():
            if k / (len(s) + len(g[j]) - k) >= a.jaccard:
                union(i, j)
    comps = defaultdict(list)
    for i in range(n):
        comps[find(i)].append(i)
    big = sorted(comps.values(), key=lambda c: -len({rows[i]["留言用户"] for i in c}))
    for k, c in enumerate(big[: a.top]):
        users = {rows[i]["留言用户"] for i in c}
        print(f"## candidate {k + 1}: {len(c)} messages, {len(users)} posters")
        for i in sorted(c, key=lambda i: rows[i]["留言时间"]):
            r = rows[i]
            print(f"{r['留言编号']}\t{r['留言用户']}\t{r['留言时间']}\t{r['留言主题'][:60]}")


if __name__ == "__main__":
    main()
