"""The PyTorch block of docs/outputs.md for specs/fashion_cnn.yaml, run as written.

  torch_cnn.py DOC RUN_DIR PROBS_CSV IMAGES

Takes the python block between the `fashion_cnn in PyTorch` markers of DOC, points
its load_file at RUN_DIR/model.safetensors, runs it, and checks that the resulting
`net` gives specnet's probabilities (`specnet predict --probs`, PROBS_CSV) on IMAGES:
the same argmax for every sample, probabilities within 1e-5. Debian has no
safetensors package: when it is missing, a stand-in module provides load_file
(torch_interop.read_safetensors), so the block runs unchanged.
"""
import os
import re
import sys
import types

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_interop  # noqa: E402  (read_safetensors, read_idx)

doc, run, probs_csv, images = sys.argv[1:5]
text = open(doc).read()
m = re.search(r"<!-- fashion_cnn in PyTorch: begin -->\s*```python\n(.*?)```", text, re.S)
assert m, "no fashion_cnn block in " + doc
block = m.group(1).replace('"runs/fashion_cnn/model.safetensors"', repr(run + "/model.safetensors"))
assert run in block, "the block does not load runs/fashion_cnn/model.safetensors"

try:
    import safetensors.torch  # noqa: F401
except ImportError:
    st = types.ModuleType("safetensors")
    st.torch = types.ModuleType("safetensors.torch")
    st.torch.load_file = lambda p: {k: torch.from_numpy(v) for k, v in torch_interop.read_safetensors(p).items()}
    sys.modules["safetensors"], sys.modules["safetensors.torch"] = st, st.torch

scope = {}
exec(compile(block, doc + ":fashion_cnn", "exec"), scope)
net = scope["net"]

x = torch_interop.read_idx(images).astype(np.float32) * torch_interop.SCALE  # the spec's scale
with torch.no_grad():
    p = net(torch.from_numpy(x.reshape(-1, 1, 28, 28))).numpy()
ours = np.loadtxt(probs_csv, delimiter=",", dtype=np.float64)
assert ours.shape == p.shape, (ours.shape, p.shape)
diff = np.abs(ours - p).max()
same = (ours.argmax(1) == p.argmax(1)).mean()
print(f"fashion_cnn: max |p - p_torch| {diff:.2e}, same class for {same:.4f} of {len(p)} samples")
assert diff <= 1e-5 and same == 1.0
