"""scripts/bench.py and its PyTorch twin of the GPT (scripts/torch_gpt.py).

The benchmark is only fair if both sides compute the same thing: the twin, loaded with tinytransformer's
weights, must give the same loss and gradients (float64, to 1e-10). The figures themselves are not
tested here (a timed test would be flaky); the script must run and report what the README quotes.
"""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tinytransformer import backend
from tinytransformer.models.gpt import GPT, GPTConfig

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"


@pytest.mark.parametrize("fused", [True, False], ids=["fused_sdpa", "unfused"])
@pytest.mark.parametrize("bias", [True, False])
def test_torch_twin_computes_the_same_loss_and_gradients(torch, fused, bias):
    sys.path.insert(0, str(SCRIPTS))
    from torch_gpt import TorchGPT
    with backend.using("float64"):
        config = GPTConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_embd=16, bias=bias)
        ours = GPT(config)
        twin = TorchGPT(config, fused_attention=fused).double()
        twin.load_from(ours)
        rng = np.random.default_rng(0)
        idx, targets = rng.integers(0, 11, (3, 8)), rng.integers(0, 11, (3, 8))
        ours.zero_grad()
        logits, loss = ours(idx, targets)
        ours.backward()
        twin_logits, twin_loss = twin(torch.from_numpy(idx), torch.from_numpy(targets))
        twin_loss.backward()
    np.testing.assert_allclose(logits, twin_logits.detach().numpy(), rtol=1e-10, atol=1e-10)
    assert float(loss) == pytest.approx(twin_loss.item(), rel=1e-12)
    np.testing.assert_allclose(ours.wte.weight.grad, twin.wte.weight.grad.numpy(), rtol=1e-10, atol=1e-10)
    for i, block in enumerate(twin.blocks):
        ffn = ours.blocks[i].ffn.sublayer
        np.testing.assert_allclose(ffn.fc1.weight.grad, block.fc1.weight.grad.numpy().T, rtol=1e-10, atol=1e-10)
        attn = ours.blocks[i].self_attn.sublayer
        d = config.n_embd
        for j, projection in enumerate((attn.q_proj, attn.k_proj, attn.v_proj)):  # c_attn stacks Q, K, V
            twin_grad = block.attn.c_attn.weight.grad[j * d:(j + 1) * d].numpy().T
            np.testing.assert_allclose(projection.weight.grad, twin_grad, rtol=1e-10, atol=1e-10)


def test_bench_runs_and_reports(torch):
    result = subprocess.run([sys.executable, str(SCRIPTS / "bench.py"), "--n-layer", "1", "--n-embd", "32",
                             "--n-head", "2", "--block-size", "16", "--batch-size", "2", "--repeats", "1",
                             "--steps", "1", "--profile"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("preset", "device", "tt_ms", "torch_ms", "ratio", "gflops", "peak_fraction"):
        assert key in summary
    assert summary["tt_ms"] > 0 and summary["torch_ms"] > 0 and 0 < summary["peak_fraction"] < 1.5
    # one round: its ratio is the ratio of the two medians, each that round's time
    assert summary["ratio_of_medians"] == pytest.approx(summary["tt_ms"] / summary["torch_ms"]) == summary["ratio"]
    assert "Linear.backward" in result.stdout  # the --profile table, and PyTorch's beside it
    assert "PyTorch's profile of one training step" in result.stdout and "aten::mm " in result.stdout
    assert "NumPy's BLAS: " in result.stdout and "\nCPU: " in result.stdout  # what the figures ran on
    assert set(summary["machine"]) >= {"cpu", "blas", "blas_kernel", "blas_kernel_forced"}
    assert summary["machine"]["cpu"]["cores"] >= 1


def test_help_shows_what_each_preset_sets():
    result = subprocess.run([sys.executable, str(SCRIPTS / "bench.py"), "--help"], capture_output=True,
                            text=True, timeout=60)
    text = " ".join(result.stdout.split())                               # argparse wraps the lines
    assert result.returncode == 0
    assert "override the preset's n_layer (default: the preset's, cpu: 4, gpu: 6)" in text
    assert "override the preset's dropout (default: the preset's, cpu: 0.0, gpu: 0.2)" in text
