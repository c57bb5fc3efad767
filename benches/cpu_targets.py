"""The CPU targets of the performance work, from one pytest-benchmark JSON of
this suite (every ratio from medians measured in that same run):

    python benches/cpu_targets.py benches/results/<file>.json

- relu_lrn forward against a copy of the same tensor (`copy`, out.copy_(x));
- relu_lrn_max_pool2d against relu_lrn + max_pool2d run separately,
  forward and forward+backward;
- max_pool2d on channels_last input, forward+backward, against PyTorch's
  channels-last eager path;
- each op and mode against every installed peer;
- the paper AlexNet training step against the reference eager model.
"""
import json
import sys

from alexnet_fast import peers as peer_frameworks


SPREAD_LIMIT = 0.10  # IQR / median above which a timing is not trusted (as `alexnet-fast bench`)


def medians(data):
    """{(op, case, mode, provider): median seconds} and {same key: IQR / median}."""
    out, spread = {}, {}
    for bench in data["benchmarks"]:
        info = bench["extra_info"]
        key = (info.get("op"), info.get("case"), info.get("mode"), info.get("provider"))
        out[key] = bench["stats"]["median"]
        spread[key] = bench["stats"]["iqr"] / bench["stats"]["median"]
    return out, spread


def main(path: str) -> None:
    with open(path) as f:
        data = json.load(f)
    m, spread = medians(data)
    used = []  # the timings behind the current row
    cpu = data["machine_info"].get("cpu", {})
    print(f"{path}: {cpu.get('name')} (family {cpu.get('family')}, model {cpu.get('model')}), "
          f"{cpu.get('isa')} kernels, {data['machine_info'].get('threads')} threads, "
          f"torch {data['machine_info'].get('torch')}, {data.get('datetime')}\n")
    print("| target | measured | met |\n|---|---|---|")

    def row(target, text, met):
        noisy = [f"{k[3]} {k[1] or k[0]} {k[2]} {spread[k]:.0%}" for k in used if spread.get(k, 0) > SPREAD_LIMIT]
        verdict = "yes" if met else "no"
        if noisy:
            verdict += " (unreliable: spread " + ", ".join(noisy) + ")"
        print(f"| {target} | {text} | {verdict} |")
        used.clear()

    def get(key):
        used.append(key)
        return m[key]

    for case, limit in (("norm1", 1.5), ("norm2", 1.7)):
        ours, copy = get(("relu_lrn", case, "forward", "cpu")), get(("copy", case, "forward", "copy"))
        row(f"relu_lrn forward <= {limit}x copy ({case})",
            f"{ours * 1e3:.2f} ms / {copy * 1e3:.2f} ms = {ours / copy:.2f}x", ours / copy <= limit)
    for fused, lrn, pool in (("norm1+pool1", "norm1", "pool1"), ("norm2+pool2", "norm2", "pool2")):
        for mode in ("forward", "forward_backward"):
            f_ = get(("relu_lrn_max_pool2d", fused, mode, "cpu"))
            parts = get(("relu_lrn", lrn, mode, "cpu")) + get(("max_pool2d", pool, mode, "cpu"))
            row(f"fused <= 0.8x relu_lrn + max_pool2d ({fused}, {mode})",
                f"{f_ * 1e3:.2f} ms / {parts * 1e3:.2f} ms = {f_ / parts:.2f}x", f_ / parts <= 0.8)
    for case in ("pool1-nhwc", "pool2-nhwc"):
        key = ("max_pool2d", case, "forward_backward")
        if (*key, "cpu") in m:
            ours, eager = get((*key, "cpu")), get((*key, "eager"))
            row(f"channels_last max_pool2d fwd+bwd >= 1.5x PyTorch ({case})",
                f"{eager * 1e3:.2f} ms / {ours * 1e3:.2f} ms = {eager / ours:.2f}x", eager / ours >= 1.5)
    for peer in [p for p in peer_frameworks.PEERS if any(k[3] == p for k in m)]:
        losses = [f"{k[1]} {k[2]} ({get(k) * 1e3:.3g} ms vs ours {get((*k[:3], 'cpu')) * 1e3:.3g} ms)"
                  for k in sorted(m, key=str) if k[3] == peer and m[k] < m[(*k[:3], "cpu")]]
        row(f"faster than {peer} on every op and mode", "; ".join(losses) or "faster everywhere", not losses)
    model = ("alexnet-paper", None, "forward_backward")
    if (*model, "fast") in m and (*model, "reference") in m:
        fast, ref = get((*model, "fast")), get((*model, "reference"))
        row("paper AlexNet training step >= 1.45x reference eager",
            f"{ref * 1e3:.0f} ms / {fast * 1e3:.0f} ms = {ref / fast:.2f}x", ref / fast >= 1.45)


if __name__ == "__main__":
    main(sys.argv[1])
