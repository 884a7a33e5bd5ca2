"""specnet and PyTorch read each other's weights and compute the same numbers.

Run by tests/interop/test_torch.sh, which trains the seed model briefly with specnet
and runs `specnet predict` and `specnet eval`; this script is the PyTorch side:

  predict RUN_DIR PROBS_CSV IMAGES   specnet's model.safetensors, loaded into the
      matching torch.nn model, gives specnet's predictions on IMAGES (the test
      set): the same argmax for every sample, probabilities within 1e-5
  write RUN_DIR OUT IMAGES LABELS    perturbs the weights in PyTorch, writes them as
      safetensors (our own writer, numpy only) to OUT, and prints PyTorch's mean
      cross-entropy on IMAGES/LABELS, for `specnet eval --weights OUT` to match

  lm_data DIR                        tokens.npy and tokens.f32 (raw floats): 16
      windows of 64 random bytes,
      targets.npy (zeros) and torch.safetensors (a PyTorch char transformer's
      weights, made up, under specnet's names) for char_transformer.yaml
  mha_data DIR                       x.npy (4 samples [5, 8]), y.npy (zeros) and
      mha.safetensors (made-up weights) for attention_small.yaml
  mha_compare DIR OUT_CSV            torch.nn.MultiheadAttention(8, 2, bias=False)
      with those weights gives the outputs `specnet predict --probs` wrote
  lm_compare WEIGHTS TOKENS LOGITS_CSV  WEIGHTS loaded into the PyTorch char
      transformer gives the logits that `specnet predict --probs` wrote for
      TOKENS, within 1e-4 of the largest logit
  conv1d-data DIR                    random sequences (floats [n, 12, 3]) and padded
      ids ([n, 10], id 0 pads, some samples all padding) with labels, as NPY
  conv1d-check seq|text|rnn RUN_DIR PROBS_CSV X_NPY   specnet's weights of
      tests/interop/conv1d_SEQ|TEXT.yaml or recurrent_seq.yaml, loaded into the same
      model in torch.nn (Conv1d, LSTM, GRU; the pools masked by hand), give
      specnet's probabilities within 1e-5
  rnn-text-weights DIR               rnn0.safetensors: made-up weights for
      tests/interop/recurrent_text.yaml
  rnn-text-check DIR LOGITS_CSV RUN_DIR LR TOL   that model in torch.nn over
      pack_padded_sequence (f64), with DIR/rnn0.safetensors, on DIR/text_x.npy: the
      logits `specnet predict` wrote, and the gradients of one SGD step of
      learning rate LR from those weights over the whole batch ((w0 - w1) / LR,
      w1 in RUN_DIR/model.safetensors), within TOL of each tensor's largest (an
      f32 run's w1 holds its step to about 6e-8 |w|, which bounds what TOL can be)

Only numpy and torch: the safetensors package is not needed (nor installed on
Debian); reading and writing the format is a few lines (see read_safetensors).
"""
import gzip
import json
import struct
import sys

import numpy as np
import torch

SCALE = np.float32(0.00392156862745098)  # the spec's preprocess scale, as specnet applies it
NAMES = ["dense1", "dense2", "dense3"]   # default layer names (`specnet check`)


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, t in header.items():
        if name == "__metadata__":
            continue
        assert t["dtype"] in ("F32", "F64"), t["dtype"]
        begin, end = t["data_offsets"]
        out[name] = np.frombuffer(data[begin:end], dtype="<f4" if t["dtype"] == "F32" else "<f8").reshape(
            t["shape"]).copy()
    return out


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, a in tensors.items():
        b = np.ascontiguousarray(a, dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    header["__metadata__"] = {"format": "pt"}
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)


def read_idx(path):
    with gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb") as f:
        raw = f.read()
    ndim = raw[3]
    dims = struct.unpack(">" + "I" * ndim, raw[4:4 + 4 * ndim])
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def seed_mlp(weights):
    """The seed spec's model as torch.nn: nn.Linear keeps weights (out, in), as specnet."""
    net = torch.nn.Sequential(
        torch.nn.Flatten(),
        torch.nn.Linear(784, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 128), torch.nn.ReLU(),
        torch.nn.Linear(128, 10))
    state = {}
    for i, name in zip((1, 3, 5), NAMES):
        state[f"{i}.weight"] = torch.from_numpy(weights[f"{name}.weight"])
        state[f"{i}.bias"] = torch.from_numpy(weights[f"{name}.bias"])
    net.load_state_dict(state, strict=True)
    return net.eval()


def inputs(images_path):
    x = read_idx(images_path).astype(np.float32) * SCALE  # (n, 28, 28), as specnet scales
    return torch.from_numpy(x)


def predict(run_dir, probs_csv, images_path):
    net = seed_mlp(read_safetensors(run_dir + "/model.safetensors"))
    with torch.no_grad():
        p_torch = torch.softmax(net(inputs(images_path)), dim=1).numpy().astype(np.float64)
    p_spec = np.loadtxt(probs_csv, delimiter=",", dtype=np.float64)
    assert p_spec.shape == p_torch.shape, (p_spec.shape, p_torch.shape)
    diff = np.abs(p_spec - p_torch).max()
    same = (p_spec.argmax(1) == p_torch.argmax(1))
    print(f"{len(same)} samples: argmax equal for {same.sum()}, max |p_specnet - p_torch| = {diff:.3g}")
    assert same.all(), np.nonzero(~same)[0][:10]
    assert diff <= 1e-5, diff


def write(run_dir, out, images, labels):
    w = read_safetensors(run_dir + "/model.safetensors")
    rng = np.random.default_rng(0)
    # weights PyTorch made: the trained ones, changed enough that a stale read would show
    w = {k: (v * 0.9 + rng.normal(0, 0.01, v.shape)).astype(np.float32) for k, v in w.items()}
    net = seed_mlp(w)
    state = {}
    for i, name in zip((1, 3, 5), NAMES):  # PyTorch's own tensors, under specnet's names
        state[f"{name}.weight"] = net.state_dict()[f"{i}.weight"].numpy()
        state[f"{name}.bias"] = net.state_dict()[f"{i}.bias"].numpy()
    write_safetensors(out, state)
    y = torch.from_numpy(read_idx(labels).astype(np.int64))
    with torch.no_grad():
        logits = net(inputs(images)).double()  # the mean in f64, as specnet sums
        loss = torch.nn.functional.cross_entropy(logits, y).item()
    print(f"{loss:.12g}")


# ---------------------------------------------------------------------------
# The char transformer of tests/interop/char_transformer.yaml

V, T, D, HEADS, BLOCKS = 256, 64, 128, 4, 4


class Block(torch.nn.Module):
    """pre-norm: x + attn(ln1(x)), then + down(gelu_tanh(up(ln2(x))))"""

    def __init__(self):
        super().__init__()
        self.ln1 = torch.nn.LayerNorm(D, eps=1e-5)
        self.att = torch.nn.MultiheadAttention(D, HEADS, batch_first=True)
        self.ln2 = torch.nn.LayerNorm(D, eps=1e-5)
        self.up = torch.nn.Linear(D, 4 * D)
        self.down = torch.nn.Linear(4 * D, D)
        self.gelu = torch.nn.GELU(approximate="tanh")

    def forward(self, x, mask):
        h = self.ln1(x)
        a, _ = self.att(h, h, h, attn_mask=mask, need_weights=False)
        x = x + a
        return x + self.down(self.gelu(self.up(self.ln2(x))))


class CharTransformer(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.tok = torch.nn.Embedding(V, D)
        self.pos = torch.nn.Parameter(torch.zeros(T, D))
        self.blocks = torch.nn.ModuleList(Block() for _ in range(BLOCKS))
        self.ln_f = torch.nn.LayerNorm(D, eps=1e-5)
        self.head = torch.nn.Linear(D, V)

    def forward(self, ids):
        mask = torch.triu(torch.ones(T, T, dtype=torch.bool), diagonal=1)  # True: masked (a later key)
        x = self.tok(ids) + self.pos
        for b in self.blocks:
            x = b(x, mask)
        return self.head(self.ln_f(x))


def specnet_names():
    """torch state_dict key -> specnet tensor name (the spec's layer names)"""
    names = {"tok.weight": "tok.weight", "pos": "x0.weight", "ln_f.weight": "ln_f.weight",
             "ln_f.bias": "ln_f.bias", "head.weight": "head.weight", "head.bias": "head.bias"}
    for i in range(BLOCKS):
        for part, layer in (("ln1", "ln1"), ("ln2", "ln2"), ("up", "up"), ("down", "down")):
            for w in ("weight", "bias"):
                names[f"blocks.{i}.{part}.{w}"] = f"b{i + 1}_{layer}.{w}"
        for w in ("in_proj_weight", "in_proj_bias", "out_proj.weight", "out_proj.bias"):
            names[f"blocks.{i}.att.{w}"] = f"b{i + 1}_att.{w}"
    return names


def lm_data(out_dir):
    rng = np.random.default_rng(1)
    tokens = rng.integers(0, V, size=(16, T)).astype(np.float32)
    np.save(out_dir + "/tokens.npy", tokens)
    tokens.tofile(out_dir + "/tokens.f32")  # raw, for the C program of the --lib check
    np.save(out_dir + "/targets.npy", np.zeros((16, T * V), dtype=np.float32))
    torch.manual_seed(1)
    net = CharTransformer()
    state = net.state_dict()
    # made-up weights, so that every tensor matters: layer norms off 1 and 0,
    # biases non-zero, positions and tokens of a transformer's scale
    w = {}
    for key, name in specnet_names().items():
        t = state[key].numpy()
        w[name] = (t + rng.normal(0, 0.05 if t.ndim == 1 else 0.02, t.shape)).astype(np.float32)
    write_safetensors(out_dir + "/torch.safetensors", w)


def lm_compare(weights, tokens_path, logits_csv):
    w = read_safetensors(weights)
    net = CharTransformer()
    net.load_state_dict({k: torch.from_numpy(w[n]) for k, n in specnet_names().items()}, strict=True)
    ids = torch.from_numpy(np.load(tokens_path).astype(np.int64))
    with torch.no_grad():
        want = net.eval()(ids).numpy().astype(np.float64).reshape(len(ids), -1)
    got = np.loadtxt(logits_csv, delimiter=",", dtype=np.float64).reshape(want.shape)
    scale = np.abs(want).max()
    diff = np.abs(got - want).max()
    print(f"{want.shape[0]} windows x {T} positions x {V} logits: max |specnet - torch| = {diff:.3g}, "
          f"relative to the largest logit {diff / scale:.3g}")
    # a later token changes no earlier logit in both: the causal mask is tested
    assert diff <= 1e-4 * scale, diff / scale


def mha_data(out_dir):
    rng = np.random.default_rng(2)
    np.save(out_dir + "/x.npy", rng.normal(0, 1, (4, 5, 8)).astype(np.float32))
    np.save(out_dir + "/y.npy", np.zeros((4, 40), dtype=np.float32))
    write_safetensors(out_dir + "/mha.safetensors", {
        "att.in_proj_weight": rng.normal(0, 0.4, (24, 8)).astype(np.float32),
        "att.out_proj.weight": rng.normal(0, 0.4, (8, 8)).astype(np.float32)})


def mha_compare(out_dir, out_csv):
    w = read_safetensors(out_dir + "/mha.safetensors")
    mha = torch.nn.MultiheadAttention(8, 2, bias=False, batch_first=True)
    mha.load_state_dict({"in_proj_weight": torch.from_numpy(w["att.in_proj_weight"]),
                         "out_proj.weight": torch.from_numpy(w["att.out_proj.weight"])}, strict=True)
    x = torch.from_numpy(np.load(out_dir + "/x.npy"))
    with torch.no_grad():
        want = mha(x, x, x, need_weights=False)[0].numpy().astype(np.float64).reshape(len(x), -1)
    got = np.loadtxt(out_csv, delimiter=",", dtype=np.float64).reshape(want.shape)
    diff = np.abs(got - want).max()
    print(f"attention (not causal, no bias): max |specnet - torch| = {diff:.3g}")
    assert diff <= 1e-5 * max(1.0, np.abs(want).max()), diff
def mha_pad_data(out_dir):
    """ids [n, 6] padded with 0 (lengths 0, 1, 6 and random ones) and the weights
    of tests/interop/attention_padded.yaml"""
    rng = np.random.default_rng(4)
    ids = rng.integers(1, 7, (9, 6))
    lengths = rng.integers(0, 7, 9)
    lengths[:3] = [0, 1, 6]  # all padding, one position, no padding
    ids[np.arange(6)[None, :] >= lengths[:, None]] = 0
    np.save(out_dir + "/pad_x.npy", ids.astype(np.int32))
    np.save(out_dir + "/pad_y.npy", rng.normal(0, 1, (9, 48)).astype(np.float32))
    write_safetensors(out_dir + "/pad.safetensors", {
        "emb.weight": rng.normal(0, 1, (7, 8)).astype(np.float32),
        "att.in_proj_weight": rng.normal(0, 0.4, (24, 8)).astype(np.float32),
        "att.in_proj_bias": rng.normal(0, 0.2, 24).astype(np.float32),
        "att.out_proj.weight": rng.normal(0, 0.4, (8, 8)).astype(np.float32),
        "att.out_proj.bias": rng.normal(0, 0.2, 8).astype(np.float32)})
    w = read_safetensors(out_dir + "/pad.safetensors")
    w["out.weight"] = rng.normal(0, 0.5, (3, 8)).astype(np.float32)
    w["out.bias"] = rng.normal(0, 0.2, 3).astype(np.float32)
    write_safetensors(out_dir + "/pad_pool.safetensors", w)
    np.save(out_dir + "/pool_y.npy", np.zeros((9, 3), dtype=np.float32))


def mha_pad_compare(out_dir, out_csv):
    """specnet's outputs against MultiheadAttention with key_padding_mask; where
    every key is padding torch gives NaN and specnet weights 0: out_proj.bias"""
    w = read_safetensors(out_dir + "/pad.safetensors")
    mha = torch.nn.MultiheadAttention(8, 2, batch_first=True)
    mha.load_state_dict({k[4:]: torch.from_numpy(v) for k, v in w.items() if k.startswith("att.")}, strict=True)
    ids = torch.from_numpy(np.load(out_dir + "/pad_x.npy").astype(np.int64))
    x = torch.from_numpy(w["emb.weight"])[ids]
    with torch.no_grad():
        want = mha(x, x, x, key_padding_mask=ids == 0, need_weights=False)[0].numpy().astype(np.float64)
    empty = (ids == 0).all(1).numpy()
    assert np.isnan(want[empty]).all() and not np.isnan(want[~empty]).any()
    want[empty] = w["att.out_proj.bias"]
    want = want.reshape(len(ids), -1)
    got = np.loadtxt(out_csv, delimiter=",", dtype=np.float64).reshape(want.shape)
    diff = np.abs(got - want).max()
    print(f"attention over padded ids: max |specnet - torch key_padding_mask| = {diff:.3g}")
    assert diff <= 1e-5 * max(1.0, np.abs(want).max()), diff


def mha_pad_pool_compare(out_dir, out_csv):
    """attention_padded_pool.yaml's logits: key_padding_mask, the mean over the
    positions that hold data (0 for none), a Linear"""
    w = read_safetensors(out_dir + "/pad_pool.safetensors")
    mha = torch.nn.MultiheadAttention(8, 2, batch_first=True)
    mha.load_state_dict({k[4:]: torch.from_numpy(v) for k, v in w.items() if k.startswith("att.")}, strict=True)
    ids = torch.from_numpy(np.load(out_dir + "/pad_x.npy").astype(np.int64))
    x = torch.from_numpy(w["emb.weight"])[ids]
    with torch.no_grad():
        h = mha(x, x, x, key_padding_mask=ids == 0, need_weights=False)[0].nan_to_num()  # NaN: no token
        pooled = masked_avg(h.transpose(1, 2), (ids != 0).float())
        want = (pooled @ torch.from_numpy(w["out.weight"]).T + torch.from_numpy(w["out.bias"])).numpy()
    got = np.loadtxt(out_csv, delimiter=",", dtype=np.float64).reshape(want.shape)
    diff = np.abs(got - want).max()
    print(f"attention over padded ids, pooled: logits, max |specnet - torch| = {diff:.3g}")
    assert diff <= 1e-5 * max(1.0, np.abs(want).max()), diff


def mha_pad_grad_check(out_dir, run_dir, lr, tol):
    """the gradients of one SGD step of specnet (mse on every output, one batch) against
    torch's in f64: MultiheadAttention with key_padding_mask on the samples that hold a
    token, out_proj.bias on the one that holds none"""
    w0 = read_safetensors(out_dir + "/pad.safetensors")
    w = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in w0.items()}
    ids = torch.from_numpy(np.load(out_dir + "/pad_x.npy").astype(np.int64))
    y = torch.from_numpy(np.load(out_dir + "/pad_y.npy").astype(np.float64)).reshape(len(ids), 6, 8)
    x = w["emb.weight"][ids]
    empty = (ids == 0).all(1)
    out = torch.nn.functional.multi_head_attention_forward(
        x[~empty].transpose(0, 1), x[~empty].transpose(0, 1), x[~empty].transpose(0, 1), 8, 2,
        w["att.in_proj_weight"], w["att.in_proj_bias"], None, None, False, 0.0, w["att.out_proj.weight"],
        w["att.out_proj.bias"], key_padding_mask=ids[~empty] == 0, need_weights=False)[0].transpose(0, 1)
    loss = ((out - y[~empty]) ** 2).sum() + ((w["att.out_proj.bias"] - y[empty]) ** 2).sum()
    (loss / y.numel()).backward()
    w1 = read_safetensors(run_dir + "/model.safetensors")
    ok = True
    for k in w0:
        g_spec = (w0[k].astype(np.float64) - w1[k].astype(np.float64)) / float(lr)
        g_torch = w[k].grad.numpy()
        d = np.abs(g_spec - g_torch).max() / max(np.abs(g_torch).max(), 1e-30)
        print(f"  gradient of {k}: max |specnet - torch| / max |torch| = {d:.3g}")
        ok = ok and d <= float(tol)
    assert ok


def conv1d_data(out):
    rng = np.random.default_rng(1)
    np.save(out + "/seq_x.npy", rng.normal(0, 1, (64, 12, 3)).astype(np.float32))
    np.save(out + "/seq_y.npy", rng.integers(0, 3, 64).astype(np.int64))
    ids = rng.integers(1, 7, (64, 10))
    lengths = rng.integers(0, 11, 64)
    lengths[:3] = [0, 1, 10]  # all padding, one step, no padding
    ids[np.arange(10)[None, :] >= lengths[:, None]] = 0
    np.save(out + "/text_x.npy", ids.astype(np.int32))
    np.save(out + "/text_y.npy", rng.integers(0, 3, 64).astype(np.int64))


def conv1d(w, name, x, stride=1, dilation=1, pad=(0, 0)):
    """torch.nn.Conv1d with specnet's weights (out, in, k) under their own names;
    x is [n, C, T]; pad: steps added (left, right), as Keras's same puts them."""
    out, cin, k = w[name + ".weight"].shape
    conv = torch.nn.Conv1d(cin, out, k, stride=stride, dilation=dilation)
    conv.load_state_dict({"weight": torch.from_numpy(w[name + ".weight"]),
                          "bias": torch.from_numpy(w[name + ".bias"])}, strict=True)
    return conv(torch.nn.functional.pad(x, pad))


def masked_avg(h, m):  # h [n, C, T], m [n, T]: mean over the kept steps, 0 for none
    return (h * m[:, None, :]).sum(2) / m.sum(1, keepdim=True).clamp(min=1)


def masked_max(h, m):
    y = h.masked_fill(m[:, None, :] == 0, float("-inf")).max(2).values
    return torch.where(m.sum(1, keepdim=True) > 0, y, torch.zeros_like(y))


def recurrent(w, name, cls, x):
    """torch.nn.LSTM / GRU (batch_first) with specnet's weights under torch's names"""
    hidden = w[name + ".weight_hh_l0"].shape[1]
    net = cls(x.shape[2], hidden, batch_first=True)
    net.load_state_dict({k: torch.from_numpy(w[f"{name}.{k}"]) for k in
                         ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")}, strict=True)
    return net(x)[0]


def conv1d_model(kind, w, x):
    if kind == "rnn":
        h = recurrent(w, "l1", torch.nn.LSTM, torch.from_numpy(x))
        z = recurrent(w, "g1", torch.nn.GRU, h)[:, -1, :]
    elif kind == "seq":
        h = torch.from_numpy(x).permute(0, 2, 1)  # [n, T, C] -> torch's [n, C, T]
        h = torch.relu(conv1d(w, "c1", h, pad=(1, 1)))
        h = torch.tanh(conv1d(w, "c2", h, stride=2, dilation=2))
        h = conv1d(w, "c3", h, pad=(1, 2))  # an even kernel: the extra step on the right
        z = h.mean(2)
    else:
        ids = torch.from_numpy(x.astype(np.int64))
        m = (ids != 0).double()
        emb = torch.nn.Embedding(7, 4)
        emb.load_state_dict({"weight": torch.from_numpy(w["emb.weight"])}, strict=True)
        e = emb(ids).permute(0, 2, 1)
        h = torch.relu(conv1d(w, "conv", e, pad=(1, 1)))
        h2 = conv1d(w, "conv2", e, stride=2)  # valid: output step o's centre is input 2 o + 1
        m2 = m[:, 1::2][:, :h2.shape[2]]
        z = torch.cat([masked_avg(h, m), masked_max(h, m), masked_avg(h2, m2)], 1)
    dense = torch.nn.Linear(z.shape[1], 3)
    dense.load_state_dict({"weight": torch.from_numpy(w["out.weight"]), "bias": torch.from_numpy(w["out.bias"])},
                          strict=True)
    return torch.softmax(dense(z.float()), 1)


RNN_TEXT = {"emb.weight": (7, 4), "l1.weight_ih_l0": (20, 4), "l1.weight_hh_l0": (20, 5), "l1.bias_ih_l0": (20,),
            "l1.bias_hh_l0": (20,), "g1.weight_ih_l0": (12, 5), "g1.weight_hh_l0": (12, 4), "g1.bias_ih_l0": (12,),
            "g1.bias_hh_l0": (12,), "out.weight": (3, 4), "out.bias": (3,)}


def rnn_text_weights(out):
    rng = np.random.default_rng(3)
    write_safetensors(out + "/rnn0.safetensors",
                      {k: rng.uniform(-0.8, 0.8, shape).astype(np.float32) for k, shape in RNN_TEXT.items()})


def packed(w, name, cls, x, lengths):
    """torch.nn.LSTM / GRU over the first lengths[i] steps of each sample
    (pack_padded_sequence): every step's h, zeros at the padded ones, and the state
    at the last real step; a sample of length 0 (all padding) keeps the zero state."""
    keep = lengths > 0
    net = cls(x.shape[2], w[name + ".weight_hh_l0"].shape[1], batch_first=True).double()
    with torch.no_grad():
        for k, p in net.named_parameters():
            p.copy_(w[f"{name}.{k}"])
    for k, p in net.named_parameters():  # the gradients land in the module's own tensors
        w[f"{name}.{k}"] = p
    seq = torch.nn.utils.rnn.pack_padded_sequence(x[keep], lengths[keep], batch_first=True, enforce_sorted=False)
    out, state = net(seq)
    out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
    h = state[0] if isinstance(state, tuple) else state
    full = torch.zeros(x.shape[0], x.shape[1], out.shape[2], dtype=out.dtype)
    last = torch.zeros(x.shape[0], out.shape[2], dtype=out.dtype)
    rows = torch.nonzero(keep).flatten()
    return full.index_put((rows,), out), last.index_put((rows,), h[0])


def rnn_text_check(out_dir, logits_csv, run_dir, lr, tol):
    w0 = read_safetensors(out_dir + "/rnn0.safetensors")
    w = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in w0.items()}
    ids = torch.from_numpy(np.load(out_dir + "/text_x.npy").astype(np.int64))
    y = torch.from_numpy(np.load(out_dir + "/text_y.npy"))
    lengths = (ids != 0).sum(1)
    assert ((ids != 0) == (torch.arange(ids.shape[1])[None, :] < lengths[:, None])).all()  # padded at the end
    e = w["emb.weight"][ids]
    h, _ = packed(w, "l1", torch.nn.LSTM, e, lengths)
    _, z = packed(w, "g1", torch.nn.GRU, h, lengths)
    logits = z @ w["out.weight"].T + w["out.bias"]
    torch.nn.functional.cross_entropy(logits, y).backward()
    got = np.loadtxt(logits_csv, delimiter=",", dtype=np.float64)
    want = logits.detach().numpy()
    diff = np.abs(got - want).max() / np.abs(want).max()
    print(f"recurrent over padding: logits, max |specnet - torch| / max |torch| = {diff:.3g}")
    ok = diff <= float(tol)
    w1 = read_safetensors(run_dir + "/model.safetensors")
    for k in RNN_TEXT:
        g_spec = (w0[k].astype(np.float64) - w1[k].astype(np.float64)) / float(lr)
        g_torch = w[k].grad.numpy()
        d = np.abs(g_spec - g_torch).max() / max(np.abs(g_torch).max(), 1e-30)
        print(f"  gradient of {k}: max |specnet - torch| / max |torch| = {d:.3g}")
        ok = ok and d <= float(tol)
    pad_row = (w0["emb.weight"][0] - w1["emb.weight"][0]) / float(lr)
    print(f"  gradient of the padding id's embedding row: max |specnet| = {np.abs(pad_row).max():.3g}")
    assert ok and not pad_row.any()


def conv1d_check(kind, run_dir, probs_csv, x_npy):
    w = read_safetensors(run_dir + "/model.safetensors")
    with torch.no_grad():
        p_torch = conv1d_model(kind, w, np.load(x_npy)).numpy().astype(np.float64)
    p_spec = np.loadtxt(probs_csv, delimiter=",", dtype=np.float64)
    assert p_spec.shape == p_torch.shape, (p_spec.shape, p_torch.shape)
    diff = np.abs(p_spec - p_torch).max()
    print(f"conv1d {kind}: {len(p_spec)} samples, max |p_specnet - p_torch| = {diff:.3g}")
    assert diff <= 1e-5, diff


if __name__ == "__main__":
    if sys.argv[1] == "conv1d-data":
        conv1d_data(sys.argv[2])
    elif sys.argv[1] == "conv1d-check":
        conv1d_check(*sys.argv[2:6])
    elif sys.argv[1] == "rnn-text-weights":
        rnn_text_weights(sys.argv[2])
    elif sys.argv[1] == "rnn-text-check":
        rnn_text_check(*sys.argv[2:7])
    elif sys.argv[1] == "predict":
        predict(sys.argv[2], sys.argv[3], sys.argv[4])
    elif sys.argv[1] == "mha_data":
        mha_data(sys.argv[2])
    elif sys.argv[1] == "mha_compare":
        mha_compare(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "mha_pad_data":
        mha_pad_data(sys.argv[2])
    elif sys.argv[1] == "mha_pad_compare":
        mha_pad_compare(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "mha_pad_pool_compare":
        mha_pad_pool_compare(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "mha_pad_grad_check":
        mha_pad_grad_check(*sys.argv[2:6])
    elif sys.argv[1] == "lm_data":
        lm_data(sys.argv[2])
    elif sys.argv[1] == "lm_compare":
        lm_compare(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        write(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5])
