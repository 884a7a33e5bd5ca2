#!/usr/bin/python3
"""Independent checks of the pages `specnet report` and `specnet compare` write
(tests/test_report.sh runs them). Every figure a page shows is recomputed here with
NumPy from the run folder's own files (predictions.csv, metrics.jsonl,
wrong_samples.npy, the IDX test images) and compared with the number the page
carries in its data- attributes (docs/outputs.md#reporthtml).

  report_check.py report RUN_DIR PAGE          numbers of a run's page
  report_check.py images RUN_DIR PAGE IDX_GZ N  the wrong-sample grid against the data
  report_check.py svg PAGE                     every inline <svg> is well-formed XML
  report_check.py shot PNG W H                 a screenshot: W x H pixels, not blank
  report_check.py compare PAGE RUN_DIR...      a comparison's final and best figures
"""
import base64
import csv
import gzip
import html.parser
import json
import math
import os
import re
import struct
import sys
import xml.etree.ElementTree as ET
import zlib

import numpy as np


class Page(html.parser.HTMLParser):
    """The page as a list of (tag, attrs, enclosing ids and classes) elements."""

    def __init__(self, text):
        super().__init__()
        self.stack, self.elems = [], []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        ctx = [x for x in self.stack]
        self.elems.append((tag, a, ctx))
        if tag not in ("img", "br", "meta", "line", "rect", "circle", "polyline"):
            self.stack.append((tag, a))

    def handle_startendtag(self, tag, attrs):
        self.elems.append((tag, dict(attrs), list(self.stack)))

    def handle_endtag(self, tag):
        for i in range(len(self.stack) - 1, -1, -1):
            if self.stack[i][0] == tag:
                del self.stack[i:]
                break

    def inside(self, ident):
        """Elements inside the element with id `ident`, with their <tr> data-class."""
        out = []
        for tag, a, ctx in self.elems:
            if any(c[1].get("id") == ident for c in ctx):
                row = [c[1] for c in ctx if c[0] == "tr"]
                out.append((tag, a, row[-1] if row else {}))
        return out


def close(a, b, tol=1e-12):
    if isinstance(a, float) and math.isnan(a):
        return isinstance(b, float) and math.isnan(b)
    return abs(a - b) <= tol * max(1.0, abs(a), abs(b))


def num(s):
    return float("nan") if s in ("nan", "-nan") else float(s)


def read_preds(run):
    rows = list(csv.reader(open(run + "/predictions.csv")))
    head, body = rows[0], np.array([[float(x) for x in r] for r in rows[1:]])
    return head, body


def check_classes(page, head, body):
    label, pred = body[:, 1].astype(int), body[:, 2].astype(int)
    probs = body[:, 4:]
    K = probs.shape[1]
    # the file agrees with itself: predicted is the argmax, confidence its probability
    assert (probs.argmax(axis=1) == pred).all(), "predicted is not the argmax of p*"
    assert np.allclose(probs[np.arange(len(pred)), pred], body[:, 3]), "confidence"
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-5), "probabilities do not sum to 1"
    cm = np.zeros((K, K), dtype=np.int64)
    np.add.at(cm, (label, pred), 1)
    counts = {}
    for tag, a, tr in page.inside("confusion-counts"):
        if "data-count" in a:
            counts.setdefault(int(tr["data-class"]), []).append(int(a["data-count"]))
    assert sorted(counts) == list(range(K)), counts.keys()
    for t in range(K):
        assert counts[t] == list(cm[t]), (t, counts[t], cm[t])
    normed = {}
    for tag, a, tr in page.inside("confusion-normalized"):
        if "data-value" in a:
            normed.setdefault(int(tr["data-class"]), []).append(num(a["data-value"]))
    for t in range(K):
        row = cm[t].sum()
        for c in range(K):
            want = cm[t, c] / row if row else float("nan")
            assert close(normed[t][c], want), ("normalized", t, c, normed[t][c], want)
    got = {}
    for tag, a, tr in page.inside("per-class"):
        for key in ("precision", "recall", "f1", "support"):
            if "data-" + key in a:
                got.setdefault(int(tr["data-class"]), {})[key] = num(a["data-" + key])
    for k in range(K):
        tp, npred, sup = cm[k, k], cm[:, k].sum(), cm[k, :].sum()
        p = tp / npred if npred else float("nan")
        r = tp / sup if sup else float("nan")
        f1 = 2 * p * r / (p + r) if npred and sup and p + r > 0 else (0.0 if npred and sup else float("nan"))
        want = {"precision": p, "recall": r, "f1": f1, "support": float(sup)}
        for key, v in want.items():
            assert close(got[k][key], v), ("per class", k, key, got[k][key], v)
    acc = [a for t, a, _ in page.elems if a.get("id") == "accuracy"][0]
    assert close(num(acc["data-value"]), (label == pred).mean()), "accuracy"
    print(f"ok: {len(label)} predictions, {K} classes: confusion matrix, row-normalized, "
          f"precision/recall/F1/support and accuracy {(label == pred).mean():.4f} match")
    return (label == pred).mean()


def check_values(page, head, body):
    K = (len(head) - 1) // 2
    t, o = body[:, 1:1 + K], body[:, 1 + K:]
    shown = {int(a["data-output"]): num(a["data-mse"]) for tag, a, _ in page.elems if "data-mse" in a}
    assert sorted(shown) == list(range(min(K, 4))), shown
    for k, v in shown.items():
        want = float(np.mean((o[:, k] - t[:, k]) ** 2))
        assert close(v, want, 1e-9), ("mse", k, v, want)
    # the residual histogram holds every sample once
    bins = [int(a["data-count"]) for tag, a, ctx in page.elems
            if "data-count" in a and any(c[1].get("data-series") == "bins" for c in ctx)]
    assert sum(bins) == len(t) * min(K, 4), (sum(bins), len(t))
    print(f"ok: {len(t)} regression predictions: mean squared error {shown[0]:.6g} and the "
          f"residual histogram ({len(bins)} bins) match")
    return shown[0]


def cmd_report(run, page_path):
    page = Page(open(page_path, encoding="utf-8").read())
    rows = [json.loads(l) for l in open(run + "/metrics.jsonl")]
    last = rows[-1]
    summary = {a["data-key"]: num(a["data-value"]) for t, a, _ in page.elems if "data-key" in a}
    for k, v in summary.items():
        want = float("nan") if last[k] is None else float(last[k])
        assert close(v, want), ("summary", k, v, want)
    assert "loss" in summary and "lr" in summary, summary.keys()
    # one chart per figure, each series with one point per epoch
    charts = [a.get("data-name") for t, a, _ in page.elems if t == "svg"]
    figures = [k for k in last if k not in ("epoch", "lr", "seconds", "eval_seconds",
                                            "samples_per_second", "data_wait_seconds")
               and not k.startswith(("val_", "test_"))]
    assert all(f in charts for f in figures + ["learning rate"]), (charts, figures)
    head, body = read_preds(run)
    if head[1] == "label":
        acc = check_classes(page, head, body)
        info = json.load(open(run + "/run.json"))
        key = ("test_" if info["predictions"] == "test" else "val_") + "accuracy"
        if key in last:  # the run's own evaluation of the same weights
            assert abs(last[key] - acc) < 1e-6, (key, last[key], acc)
            print(f"ok: the accuracy from predictions.csv equals metrics.jsonl's {key}")
    else:
        mse = check_values(page, head, body)
        info = json.load(open(run + "/run.json"))
        key = ("test_" if info["predictions"] == "test" else "val_") + "loss"
        assert abs(last[key] - mse) <= 1e-5 * max(1, mse), (key, last[key], mse)
        print(f"ok: the mse from predictions.csv equals metrics.jsonl's {key} (loss: mse)")


def png_pixels(data):
    """Decodes an 8-bit grey or RGB(A) PNG without PIL: (h, w, c) uint8."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, w = 8, b"", None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + n]
        assert zlib.crc32(data[pos + 4:pos + 8 + n]) == struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0]
        if kind == b"IHDR":
            w, h, depth, ctype = struct.unpack(">IIBB", chunk[:10])
            assert depth == 8, depth
            c = {0: 1, 2: 3, 6: 4}[ctype]
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * c
    out, prev = bytearray(h * stride), bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)]
        cur = bytearray(line)
        if f == 2:
            cur = bytearray((x + b) & 255 for x, b in zip(line, prev))
        elif f in (1, 3, 4):
            for i in range(stride):
                a = cur[i - c] if i >= c else 0
                b = prev[i]
                if f == 1:
                    p = a
                elif f == 3:
                    p = (a + b) >> 1
                else:
                    d = prev[i - c] if i >= c else 0
                    pa, pb, pc = abs(b - d), abs(a - d), abs(a + b - 2 * d)
                    p = a if pa <= pb and pa <= pc else (b if pb <= pc else d)
                cur[i] = (line[i] + p) & 255
        else:
            assert f == 0, f"filter {f}"
        out[y * stride:(y + 1) * stride], prev = cur, cur
    return np.frombuffer(bytes(out), np.uint8).reshape(h, w, c)


def cmd_images(run, page_path, idx_gz, limit):
    page = Page(open(page_path, encoding="utf-8").read())
    head, body = read_preds(run)
    wrong = body[body[:, 1] != body[:, 2]]
    order = sorted(range(len(wrong)), key=lambda j: (-wrong[j, 3], wrong[j, 0]))
    want = [int(wrong[j, 0]) for j in order[:25]]
    figs = [a for t, a, _ in page.elems if t == "figure"]
    got = [int(a["data-index"]) for a in figs]
    assert got == want, ("wrong-sample order", got, want)
    for a in figs:
        i = int(a["data-index"])
        assert int(a["data-label"]) == body[i, 1] and int(a["data-predicted"]) == body[i, 2]
    # the images: wrong_samples.npy holds those samples' inputs, and the page draws them
    raw = gzip.open(idx_gz).read()
    n, h, w = struct.unpack(">III", raw[4:16])
    images = np.frombuffer(raw[16:], np.uint8).reshape(n, h, w)[:limit]
    x = np.load(run + "/wrong_samples.npy")
    assert x.shape == (len(want), h, w), x.shape
    for j, i in enumerate(want):
        assert np.allclose(x[j], images[i] / 255.0, atol=1e-6), ("wrong_samples.npy row", j, i)
    srcs = [a["src"] for t, a, _ in page.elems if t == "img"]
    assert len(srcs) == len(want)
    lo, hi = x.min(), x.max()
    for j, s in enumerate(srcs):
        assert s.startswith("data:image/png;base64,"), s[:40]
        px = png_pixels(base64.b64decode(s.split(",", 1)[1]))
        expect = np.clip(np.floor((x[j] - lo) / (hi - lo) * 255 + 0.5), 0, 255)
        assert px.shape == (h, w, 1) and np.abs(px[:, :, 0] - expect).max() <= 1, ("image", j)
    print(f"ok: the {len(want)} most confidently wrong samples, in order, with their labels; "
          f"wrong_samples.npy equals the IDX images; each PNG shows its sample")


def cmd_svg(page_path):
    text = open(page_path, encoding="utf-8").read()
    svgs = re.findall(r"<svg\b.*?</svg>", text, re.S)
    assert svgs, "no inline SVG"
    for s in svgs:
        root = ET.fromstring(s)
        assert root.tag == "{http://www.w3.org/2000/svg}svg", root.tag
        assert root.get("width") and root.get("height")
    # self-contained: nothing fetched, no script
    assert not re.search(r"<script|<link|<iframe|\b(src|href)=\"(?!data:|#)", text), "external reference"
    print(f"ok: {len(svgs)} inline SVGs are well-formed XML; the page references nothing outside")


def cmd_shot(png, w, h):
    px = png_pixels(open(png, "rb").read())
    assert px.shape[:2] == (h, w), ("screenshot size", px.shape, (w, h))
    colors = len(np.unique(px.reshape(-1, px.shape[2])[::7], axis=0))
    assert colors > 20, f"the screenshot looks blank ({colors} colours)"
    print(f"ok: screenshot {w}x{h}, {colors} colours")


def cmd_compare(page_path, runs):
    page = Page(open(page_path, encoding="utf-8").read())
    rows = {}
    for tag, a, tr in page.inside("runs"):
        for key in ("final", "best"):
            if "data-" + key in a:
                rows.setdefault(tr["data-run"], {}).setdefault(key, []).append(num(a["data-" + key]))
    names = [os.path.basename(r.rstrip("/")) for r in runs]  # the page's run names
    if len(set(names)) < len(names):
        names = runs
    assert sorted(rows) == sorted(names), (rows.keys(), names)
    text = open(page_path, encoding="utf-8").read()
    figures = re.findall(r"<th>final ([^<]+)</th>", text)
    for run, name in zip(runs, names):
        recs = [json.loads(l) for l in open(run + "/metrics.jsonl")]
        for j, fig in enumerate(figures):
            vals = [r[fig] for r in recs if r.get(fig) is not None]
            best = max(vals) if "accuracy" in fig else min(vals)
            assert close(rows[name]["final"][j], recs[-1][fig]), (run, fig)
            assert close(rows[name]["best"][j], best), (run, fig, rows[name]["best"][j], best)
    charts = [a.get("data-name") for t, a, _ in page.elems if t == "svg"]
    assert charts == figures, (charts, figures)
    print(f"ok: {len(runs)} runs x {len(figures)} figures: final and best equal metrics.jsonl; "
          f"one overlaid chart per figure")


if __name__ == "__main__":
    cmd, args = sys.argv[1], sys.argv[2:]
    if cmd == "report":
        cmd_report(*args)
    elif cmd == "images":
        cmd_images(args[0], args[1], args[2], int(args[3]))
    elif cmd == "svg":
        cmd_svg(*args)
    elif cmd == "shot":
        cmd_shot(args[0], int(args[1]), int(args[2]))
    elif cmd == "compare":
        cmd_compare(args[0], args[1:])
    else:
        sys.exit("unknown check " + cmd)
