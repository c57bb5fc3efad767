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

    def row(target, measure):
        """measure() -> (text, met); a timing it needs that the run lacks
        makes the row say so (a run of part of the suite, e.g. with -k)."""
        try:
            text, met = measure()
            verdict = "yes" if met else "no"
        except KeyError as missing:
            text, verdict = f"not in this run: {' '.join(str(k) for k in missing.args[0] if k)}", "-"
        noisy = [f"{k[3]} {k[1] or k[0]} {k[2]} {spread[k]:.0%}" for k in used if spread.get(k, 0) > SPREAD_LIMIT]
        if noisy and verdict != "-":
            verdict += " (unreliable: spread " + ", ".join(noisy) + ")"
        print(f"| {target} | {text} | {verdict} |")
        used.clear()

    def get(key):
        used.append(key)
        return m[key]

    def against_copy(case, limit):
        ours, copy = get(("relu_lrn", case, "forward", "cpu")), get(("copy", case, "forward", "copy"))
        return f"{ours * 1e3:.2f} ms / {copy * 1e3:.2f} ms = {ours / copy:.2f}x", ours / copy <= limit

    def against_parts(fused, lrn, pool, mode):
        f_ = get(("relu_lrn_max_pool2d", fused, mode, "cpu"))
        parts = get(("relu_lrn", lrn, mode, "cpu")) + get(("max_pool2d", pool, mode, "cpu"))
        return f"{f_ * 1e3:.2f} ms / {parts * 1e3:.2f} ms = {f_ / parts:.2f}x", f_ / parts <= 0.8

    def against_eager(key):
        ours, eager = get((*key, "cpu")), get((*key, "eager"))
        return f"{eager * 1e3:.2f} ms / {ours * 1e3:.2f} ms = {eager / ours:.2f}x", eager / ours >= 1.5

    def against_peer(peer):
        losses = [f"{k[1]} {k[2]} ({get(k) * 1e3:.3g} ms vs ours {get((*k[:3], 'cpu')) * 1e3:.3g} ms)"
                  for k in sorted(m, key=str) if k[3] == peer and m[k] < m.get((*k[:3], "cpu"), float("inf"))]
        return "; ".join(losses) or "faster everywhere", not losses

    def against_reference(model):
        fast, ref = get((*model, "fast")), get((*model, "reference"))
        return f"{ref * 1e3:.0f} ms / {fast * 1e3:.0f} ms = {ref / fast:.2f}x", ref / fast >= 1.45

    for case, limit in (("norm1", 1.5), ("norm2", 1.7)):
        row(f"relu_lrn forward <= {limit}x copy ({case})", lambda: against_copy(case, limit))
    for fused, lrn, pool in (("norm1+pool1", "norm1", "pool1"), ("norm2+pool2", "norm2", "pool2")):
        for mode in ("forward", "forward_backward"):
            row(f"fused <= 0.8x relu_lrn + max_pool2d ({fused}, {mode})",
                lambda: against_parts(fused, lrn, pool, mode))
    for case in ("pool1-nhwc", "pool2-nhwc"):
        key = ("max_pool2d", case, "forward_backward")
        if (*key, "cpu") in m:
            row(f"channels_last max_pool2d fwd+bwd >= 1.5x PyTorch ({case})", lambda: against_eager(key))
    for peer in [p for p in peer_frameworks.PEERS if any(k[3] == p for k in m)]:
        row(f"faster than {peer} on every op and mode", lambda: against_peer(peer))
    model = ("alexnet-paper", None, "forward_backward")
    if any(k[:3] == model for k in m):
        row("paper AlexNet training step >= 1.45x reference eager", lambda: against_reference(model))

if __name__ == "__main__":
    main(sys.argv[1])
