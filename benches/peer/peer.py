#!/usr/bin/env python3
"""The Python peer of duban's backfill: the same job over the same message-board export, written
the way a Python team would (pandas + jieba + scikit-learn + datasketch), timed by
`cargo bench --bench peer` beside `duban backfill` in the same run.

    python benches/peer/peer.py EXPORT.csv [--taxonomy config/taxonomy.toml]

Stages, as duban's engine has them:
1. read + normalize: CSV via pandas, both time formats, full-width -> half-width, whitespace,
   phone numbers masked, complainant pseudonym (HMAC-SHA256 of the user id);
2. classify: jieba words scored against the taxonomy's vocabulary (duban's default classifier);
3. near duplicates: MinHash over character 3-grams (64 permutations) with LSH at Jaccard 0.7,
   within 30 days of the earlier text (datasketch);
4. same-issue clusters: district (from the text) x named place (a run before a place suffix);
   texts naming no place join their district's issue by TF-IDF cosine >= 0.45 over jieba words
   within 30 days (scikit-learn), connected components;
5. abnormal frequency: per pseudonym, most distinct complaints (duplicate groups collapsed) in
   any 30-day window; flagged when the zero-truncated Poisson tail x population < 0.01, the
   modified z-score >= 3.5 and the count >= 5; crowd alerts for issues of >= 5 complainants.
Prints one JSON object: counts and seconds per stage.
"""
import argparse
import hashlib
import hmac
import json
import os
import math
import re
import sys
import time
import tomllib

import jieba
import numpy as np
import pandas as pd
from datasketch import MinHash, MinHashLSH
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from scipy.stats import poisson
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

DISTRICTS = ["镜湖区", "弋江区", "鸠江区", "湾沚区", "繁昌区", "南陵县", "无为市"]
PLACE = re.compile(
    r"([\u4e00-\u9fffA-Za-z0-9]{2,10}?)(小区|花园|新城|家园|公寓|大厦|新村|社区|广场|苑|府|城|村|"
    r"大道|路|街|巷|市场|学校|中学|小学|幼儿园|医院|公司|工地|搅拌站|厂|店)"
)
NOT_NAME = set("的在是我们了和与及对向从到于有个这那该附近位住家门口旁边里内外前后去来为把被让请求区县市")
PHONE = re.compile(r"(1[3-9]\d)\d{4}(\d{4})")
FULL = {c: c - 0xFEE0 for c in range(0xFF01, 0xFF5F)}
FULL[0x3000] = 0x20
KEY = b"duban-peer-bench"
WINDOW = pd.Timedelta(days=30)


def log(*a):
    print(*a, file=sys.stderr)


def normalize(df):
    text = (df["留言主题"].fillna("") + "。" + df["留言详情"].fillna("")).str.translate(FULL)
    text = text.str.replace(r"\s+", " ", regex=True).str.strip()
    df["text"] = text.str.replace(PHONE, r"\1****\2", regex=True)
    df["at"] = pd.to_datetime(df["留言时间"].str.replace("/", "-"), format="mixed")
    df["who"] = [
        hmac.new(KEY, str(u).encode(), hashlib.sha256).hexdigest()[:12] for u in df["留言用户"]
    ]
    df["district"] = df["text"].map(
        lambda t: next((d for d in DISTRICTS if d[:2] in t), "")
    )
    df["place"] = df["text"].map(place_of)
    return df.sort_values("at", kind="stable").reset_index(drop=True)


def place_of(text):
    for m in PLACE.finditer(text):
        name = m.group(1)
        cut = max((i for i, c in enumerate(name) if c in NOT_NAME), default=-1)
        name = name[cut + 1:]
        if len(name) >= 2:
            return name + m.group(2)
    return ""


def segment(df):
    # One call over all texts (one per line), so jieba's parallel mode splits the lines across
    # the cores; the normalized texts hold no line breaks.
    words, line = [], []
    for w in jieba.cut("\n".join(df["text"])):
        if w == "\n":
            words.append(" ".join(line))
            line = []
        elif len(w) > 1:
            line.append(w)
    words.append(" ".join(line))
    df["words"] = words


def classify(df, taxonomy):
    with open(taxonomy, "rb") as f:
        domains = tomllib.load(f)["domain"]
    vocab = sorted({w for d in domains for w in d["vocabulary"]})
    index = {w: i for i, w in enumerate(vocab)}
    term_domain = np.zeros((len(vocab), len(domains)))
    for j, d in enumerate(domains):
        for w in d["vocabulary"]:
            term_domain[index[w], j] = 1.0
    counts = CountVectorizer(vocabulary=vocab, token_pattern=r"\S+").transform(df["words"])
    scores = np.asarray(counts @ term_domain)
    best = scores.argmax(axis=1)
    total = scores.sum(axis=1)
    top = scores.max(axis=1)
    conf = np.divide(top, total, out=np.zeros_like(top), where=total > 0)
    names = np.array([d["name"] for d in domains] + ["unclassified"])
    df["domain"] = np.where(conf >= 0.34, names[best], "unclassified")


def dedup(df):
    lsh = MinHashLSH(threshold=0.7, num_perm=64)
    seen = {}
    group = []
    shingles = ([t[k:k + 3].encode() for k in range(max(len(t) - 2, 1))] for t in df["text"])
    hashes = MinHash.bulk(shingles, num_perm=64)
    for i, (m, at) in enumerate(zip(hashes, df["at"])):
        original = None
        for key in lsh.query(m):
            j, jat = seen[key]
            if at - jat <= WINDOW and (original is None or j < original):
                original = j
        group.append(group[original] if original is not None else i)
        lsh.insert(str(i), m)
        seen[str(i)] = (i, at)
    df["dup_group"] = group


def cluster(df):
    tfidf = TfidfVectorizer(token_pattern=r"\S+", min_df=1).fit_transform(df["words"])
    issue = np.empty(len(df), dtype=object)
    placed = df["place"] != ""
    issue[placed.values] = (df.loc[placed, "district"] + "|" + df.loc[placed, "place"]).values
    for district, rows in df[~placed].groupby("district").groups.items():
        rows = np.asarray(rows)
        m = tfidf[rows]
        sims = (m @ m.T).tocoo()
        days = df["at"].values[rows]
        keep = (sims.data >= 0.45) & (sims.row < sims.col)
        keep &= np.abs(days[sims.row] - days[sims.col]) <= np.timedelta64(30, "D")
        graph = csr_matrix(
            (np.ones(keep.sum()), (sims.row[keep], sims.col[keep])), shape=(len(rows), len(rows))
        )
        _, comp = connected_components(graph, directed=False)
        issue[rows] = [f"{district}|~{c}" for c in comp]
    df["issue"] = issue
    # duplicates join their original's issue
    df["issue"] = df["issue"].values[df["dup_group"].values]


def frequency(df):
    distinct = df.drop_duplicates(["who", "dup_group"])
    best = {}
    for who, times in distinct.groupby("who")["at"]:
        t = times.sort_values().values
        j, most = 0, 0
        for i in range(len(t)):
            while t[i] - t[j] > np.timedelta64(30, "D"):
                j += 1
            most = max(most, i - j + 1)
        best[who] = most
    counts = np.array(list(best.values()), dtype=float)
    med = np.median(counts)
    mad = np.median(np.abs(counts - med)) or np.mean(np.abs(counts - med)) or 1.0
    lam = max(counts.mean() - 1.0, 1e-9)  # zero-truncated Poisson, mean of the count minus one
    n = len(counts)
    flagged = 0
    for c in counts:
        z = 0.6745 * (c - med) / mad
        tail = poisson.sf(c - 2, lam)  # P(X >= c - 1) for the count above the first filing
        if c >= 5 and z >= 3.5 and tail * n < 0.01:
            flagged += 1
    return flagged


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("export")
    ap.add_argument("--taxonomy", default="config/taxonomy.toml")
    a = ap.parse_args()
    jieba.setLogLevel(60)
    jieba.initialize()
    cores = os.cpu_count() or 1
    if cores > 1:
        jieba.enable_parallel(cores)
    secs = {}
    t0 = t = time.perf_counter()
    df = pd.read_csv(a.export, dtype=str, keep_default_na=False)
    df = normalize(df)
    secs["read_normalize"] = time.perf_counter() - t
    t = time.perf_counter()
    segment(df)
    classify(df, a.taxonomy)
    secs["segment_classify"] = time.perf_counter() - t
    t = time.perf_counter()
    dedup(df)
    secs["minhash_dedup"] = time.perf_counter() - t
    t = time.perf_counter()
    cluster(df)
    secs["cluster"] = time.perf_counter() - t
    t = time.perf_counter()
    flagged = frequency(df)
    crowd = int((df.groupby("issue")["who"].nunique() >= 5).sum())
    secs["frequency_alerts"] = time.perf_counter() - t
    secs["total"] = time.perf_counter() - t0
    print(json.dumps({
        "complaints": len(df),
        "duplicates": int((df["dup_group"] != np.arange(len(df))).sum()),
        "issues": int(df["issue"].nunique()),
        "crowd_issues": crowd,
        "flagged": flagged,
        "unclassified": int((df["domain"] == "unclassified").sum()),
        "seconds": {k: round(v, 3) for k, v in secs.items()},
    }))


if __name__ == "__main__":
    main()
