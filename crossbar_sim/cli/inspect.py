"""``crossbar-sim inspect``: the tree of a result file, run configs and metrics, tile statistics."""
from __future__ import annotations

import argparse
import json

import numpy as np

EPILOG = """\
examples:
  crossbar-sim inspect results.h5                          # header, sweep, one line per run
  crossbar-sim inspect results.h5 --full                   # the whole tree with attributes and shapes
  crossbar-sim inspect results.h5 /runs/0003               # config, final metrics, tile statistics of a run
  crossbar-sim inspect results.h5 0003                     # the same (a bare run id)
  crossbar-sim inspect results.h5 /runs/0003/tiles/linear/A/snapshots/500   # one weight snapshot
"""


def add_parser(sub):
    p = sub.add_parser(
        "inspect",
        help="show the tree, run configs, metrics and tile statistics of a result file",
        description=(
            "Print a crossbar-sim HDF5 result file: the tree with attributes and dataset shapes; for a run its "
            "config and final metrics; for a tile array or weight snapshot the weight statistics (min, max, "
            "mean, std, fraction of devices near a bound, distance to the symmetric point) and pulse-count "
            "statistics. A file that is not a readable crossbar-sim file gives one line and exit code 2."),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("file", metavar="FILE", help="result file (.h5)")
    p.add_argument("path", nargs="?", default=None, metavar="PATH",
                   help="object inside the file (group or dataset), or a bare run id")
    p.add_argument("--full", action="store_true", help="print the whole tree below PATH (default: runs collapsed)")
    p.add_argument("--near", type=float, default=0.05, metavar="FRACTION",
                   help="'near a bound' = within this fraction of the device's weight range (default 0.05)")
    return p


# ------------------------------------------------------------------------------------------ formatting
def _fmt_attr(v) -> str:
    if isinstance(v, bytes):
        v = v.decode(errors="replace")
    if isinstance(v, np.ndarray):
        return np.array2string(v, threshold=8, precision=4)
    if isinstance(v, (float, np.floating)):
        return f"{float(v):.6g}"
    s = str(v)
    return s if len(s) <= 110 else s[:107] + "..."


def _print_attrs(obj, indent: str) -> None:
    for k, v in obj.attrs.items():
        print(f"{indent}  @{k} = {_fmt_attr(v)}")


def print_tree(obj, indent: str = "", full: bool = True, collapse_runs: bool = False) -> None:
    import h5py

    name = obj.name.split("/")[-1]
    if isinstance(obj, h5py.Dataset):
        print(f"{indent}{name}  dataset {obj.shape} {obj.dtype}")
        _print_attrs(obj, indent)
        return
    print(f"{indent}{name}/")
    _print_attrs(obj, indent)
    for key, child in obj.items():
        if collapse_runs and obj.name == "/runs":
            print(f"{indent}  {_run_line(child)}")
            continue
        if collapse_runs and child.name == "/_staging":
            print(f"{indent}  _staging/  (an interrupted write; ignored, removed by --resume)")
            continue
        if not full and isinstance(child, h5py.Group) and child.name.count("/") > 3:
            print(f"{indent}  {key}/  ({len(child)} members)")
            continue
        print_tree(child, indent + "  ", full=full, collapse_runs=collapse_runs)


def _summary(a) -> str:
    """The headline numbers of a run, whatever its kind."""
    if a.get("error_floor") is not None:
        return f"floor {float(a['error_floor']):.4g}  final {float(a.get('final_loss', np.nan)):.4g}"
    if a.get("final_test_acc") is not None:
        return (f"test acc {100 * float(a['final_test_acc']):.2f} % (best {100 * float(a.get('best_test_acc', np.nan)):.2f}"
                f" %)")
    if a.get("final_val_ppl") is not None:
        return f"val ppl {float(a['final_val_ppl']):.4g}"
    return ""


def _json_attr(g, name: str, default):
    try:
        return json.loads(g.attrs.get(name, json.dumps(default)))
    except (TypeError, ValueError):
        return default


def _run_line(g) -> str:
    a = g.attrs
    point = _json_attr(g, "point", {})
    pt = " ".join(f"{k}={v}" for k, v in point.items())
    return (f"{g.name.split('/')[-1]}/  {a.get('status', '?')}  {pt}  {_summary(a)}  "
            f"{float(a.get('wall_time_s', np.nan)):.1f} s")


def _checkpoint_lines(path: str) -> list[str]:
    """Runs in progress: their checkpoints in the sweep's journal."""
    import glob
    import os

    from crossbar_sim.engine.kinds import read_checkpoint_header
    from crossbar_sim.errors import FormatError

    out = []
    for ck in sorted(glob.glob(os.path.join(path + ".journal", "checkpoints", "*.h5"))):
        rid = os.path.basename(ck)[:-3]
        try:
            pos = read_checkpoint_header(ck)["position"]
            where = ", ".join(f"{k} {v}" for k, v in pos.items() if k != "n_batches")
            out.append(f"  {rid}/  in progress (last checkpoint: {where})")
        except FormatError as exc:
            out.append(f"  {rid}/  in progress ({exc})")
    return out


# ------------------------------------------------------------------------------------------ statistics
def symmetric_points(dev) -> np.ndarray | None:
    """Per-device symmetric point of the hidden weight (linear family), else the mean device's, or None."""
    from crossbar_sim.config import Config
    from crossbar_sim.kernels import update as K

    try:
        cfg = Config.from_json(dev.attrs["config"])
    except Exception:  # noqa: BLE001 - a foreign or older device config: no symmetric point
        return None
    if "scale_up" not in dev:  # a one-sided pair (its devices are below it): no symmetric point of w
        return None
    shape = dev["scale_up"].shape
    if getattr(cfg, "model_code", None) == K.MODEL_LINEAR:
        su, sd = dev["scale_up"][()].astype(np.float64), dev["scale_down"][()].astype(np.float64)
        lu, ld = dev["shape_up"][()].astype(np.float64), dev["shape_down"][()].astype(np.float64)
        ref = dev["reference"][()].astype(np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            e = np.where(lu != ld, (sd - su) / (lu - ld), np.where(su == sd, 0.0, np.nan))
        return e - ref
    sp = float(cfg.symmetric_point())
    return np.full(shape, sp)


def weight_statistics(w, w_lo, w_hi, w_sym=None, near: float = 0.05) -> dict:
    """Statistics of a weight array against its per-device bounds (and symmetric points)."""
    w = np.asarray(w, np.float64)
    lo, hi = np.asarray(w_lo, np.float64), np.asarray(w_hi, np.float64)
    tol = near * (hi - lo)
    out = {
        "devices": int(w.size),
        "min": float(w.min()), "max": float(w.max()), "mean": float(w.mean()), "std": float(w.std()),
        "frac_near_lower": float(np.mean(w <= lo + tol)),
        "frac_near_upper": float(np.mean(w >= hi - tol)),
        "bounds_mean": (float(lo.mean()), float(hi.mean())),
    }
    if w_sym is not None:
        d = np.abs(w - np.asarray(w_sym, np.float64))
        ok = np.isfinite(d)
        out["sym_point_mean"] = float(np.nanmean(w_sym)) if np.any(np.isfinite(w_sym)) else float("nan")
        out["sym_dist_mean"] = float(d[ok].mean()) if ok.any() else float("nan")
        out["sym_dist_max"] = float(d[ok].max()) if ok.any() else float("nan")
    return out


def pulse_statistics(pc) -> dict:
    pc = np.asarray(pc, np.int64)
    tot = pc.sum(axis=-1)
    return {
        "total": int(tot.sum()), "up": int(pc[..., 0].sum()), "down": int(pc[..., 1].sum()),
        "per_device_mean": float(tot.mean()), "per_device_max": int(tot.max()),
        "per_device_min": int(tot.min()), "frac_never_pulsed": float(np.mean(tot == 0)),
    }


def _print_array_stats(g, near: float, step: str | None = None) -> None:
    """Statistics of one tile array group (``.../tiles/<layer>/<array>``); a block of a layer mapped onto several
    tiles (``tile0_1``) shows each of its arrays."""
    if g.attrs.get("kind") is not None and "snapshots" not in g:  # a block of a TileArray layer
        print(f"  block {g.name.split('/')[-1]}  kind {g.attrs.get('kind')}")
        for aname, arr in g.items():
            if aname not in ("state", "counters"):
                _print_array_stats(arr, near, step)
        return
    if "snapshots" not in g:
        return
    steps = sorted(g["snapshots"], key=int)
    if not steps:
        return
    st = step if step is not None else steps[-1]
    if st not in g["snapshots"]:
        from crossbar_sim.errors import FormatError

        raise FormatError(f"{g.name} has no snapshot {st}; its snapshots: {', '.join(steps)}.")
    w = g["snapshots"][st]["weights"][()]
    print(f"  array {g.name.split('/')[-1]}  {w.shape[0]} x {w.shape[1]}  (snapshot at step {st}; "
          f"snapshots: {', '.join(steps)})")
    if "device" not in g:  # digital weights
        print(f"    weights  min {w.min():.4g}  max {w.max():.4g}  mean {w.mean():.4g}  std {w.std():.4g}  "
              f"(floating point, no device)")
        return
    dev = g["device"]
    s = weight_statistics(w, dev["weight_min"][()], dev["weight_max"][()], symmetric_points(dev), near)
    print(f"    device   {dev.attrs.get('model', '?')}  bounds (mean) [{s['bounds_mean'][0]:.4g}, "
          f"{s['bounds_mean'][1]:.4g}]  granularity {float(dev.attrs.get('granularity', np.nan)):.4g}")
    print(f"    weights  min {s['min']:.4g}  max {s['max']:.4g}  mean {s['mean']:.4g}  std {s['std']:.4g}")
    print(f"    near a bound (within {near:g} of the range): lower {s['frac_near_lower']:.1%}  "
          f"upper {s['frac_near_upper']:.1%}")
    if "sym_dist_mean" in s:
        print(f"    symmetric point (mean {s['sym_point_mean']:.4g}): |w - w_sym| mean {s['sym_dist_mean']:.4g}  "
              f"max {s['sym_dist_max']:.4g}")
    if "pulse_counts" in g:
        p = pulse_statistics(g["pulse_counts"][()])
        print(f"    pulses (final) total {p['total']:,} (up {p['up']:,}, down {p['down']:,})  per device mean "
              f"{p['per_device_mean']:.4g}  min {p['per_device_min']:,}  max {p['per_device_max']:,}  never pulsed "
              f"{p['frac_never_pulsed']:.1%}")
    if "counters" in g:
        c = {k: int(v[()]) for k, v in g["counters"].items()}
        print("    counters (final) " + "  ".join(f"{k} {v:,}" for k, v in c.items()))


def _config_repr(d) -> str:
    from crossbar_sim.config import Config
    from crossbar_sim.engine.kinds import KINDS

    for kind in KINDS.values():  # register every kind's config classes
        kind.import_configs()

    try:
        return repr(Config.from_dict(d))
    except Exception:  # noqa: BLE001 - written by another version: show the raw JSON
        return json.dumps(d, sort_keys=True)


def _print_run(g, near: float) -> None:
    a = g.attrs
    print(f"run {g.name.split('/')[-1]}  {a.get('kind', 'least_squares')}  status {a.get('status')}  seed "
          f"{int(a.get('seed', 0))}  wall time {float(a.get('wall_time_s', np.nan)):.2f} s  {_summary(a)}")
    point = _json_attr(g, "point", {})
    if point:
        print("point    " + "  ".join(f"{k}={v}" for k, v in point.items()))
    if a.get("error"):
        print(f"error    {a['error']}")
    cfg = _json_attr(g, "config", {})
    print("config (fields that differ from the defaults; the full JSON is the @config attribute)")
    if "type" in cfg:
        print(f"  {_config_repr(cfg)}")
    else:
        for section, d in cfg.items():
            print(f"  {section}: {_config_repr(d)}")
    if "metrics" in g and "steps" in g["metrics"]:
        m = g["metrics"]
        steps = m["steps"][()]
        axis = m["steps"].attrs.get("axis", "step")
        print(f"final metrics ({axis} {int(steps[-1]) if steps.size else '?'}, {steps.size} recorded {axis}s)")
        for k, ds in list(m.items()) + list((g["timing"].items() if "timing" in g else [])):
            if k == "steps" or ds.shape[0] == 0:
                continue
            unit = ds.attrs.get("units", "")
            desc = ds.attrs.get("description", "")
            print(f"  {k:<14} {float(ds[-1]):.6g}   [{unit}{'; ' + desc if desc else ''}]")
        if "error_floor" in a:
            print(f"  {'error_floor':<14} {float(a['error_floor']):.6g}   [{a.get('error_floor_definition', '')}]")
    if "budget" in g:
        b = g["budget"].attrs
        if "energy_total_J" in b:
            print(f"budget   energy {float(b['energy_total_J']):.4g} J, optimiser state "
                  f"{int(b.get('memory_optimizer_state_total_bytes', 0)):,} B (crossbar-sim lowrank --report for "
                  f"the table)")
    if "tiles" in g:
        for lname, layer in g["tiles"].items():
            print(f"tile layer {lname}  kind {layer.attrs.get('kind')}")
            for aname, arr in layer.items():
                if aname not in ("state", "counters"):
                    _print_array_stats(arr, near)
            if "counters" in layer:
                c = {k: int(v[()]) for k, v in layer["counters"].items()}
                print("  compound counters " + "  ".join(f"{k} {v:,}" for k, v in c.items()))
    print("tree")
    print_tree(g, "  ", full=False)


def run(args) -> int:
    from crossbar_sim.errors import FormatError

    try:
        return _run(args)
    except BrokenPipeError:  # `crossbar-sim inspect ... | head`
        import os
        import sys

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (OSError, KeyError, ValueError, TypeError, IndexError) as exc:  # a damaged object in a readable file
        if isinstance(exc, FormatError):
            raise
        raise FormatError(f"{args.file} is damaged: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def _run(args) -> int:
    import math

    import h5py

    from crossbar_sim.errors import ConfigError, FormatError
    from crossbar_sim.engine.store import open_results

    if not (math.isfinite(args.near) and 0 <= args.near <= 0.5):
        raise ConfigError(f"--near must be a fraction in [0, 0.5] of the device's weight range. Got {args.near}.")
    with open_results(args.file) as f:
        if args.path is None:
            a = f.attrs
            print(f"{args.file}: {a.get('format')} format_version {a.get('format_version')}, written by "
                  f"crossbar-sim {a.get('package_version')} on {a.get('created')}")
            print(f"argv: {' '.join(json.loads(a.get('argv', '[]')))}")
            if "sweep" in f:
                s = f["sweep"]
                runs = f["runs"] if "runs" in f else {}
                ok = sum(1 for g in runs.values() if g.attrs.get("status") in ("complete", "diverged"))
                print(f"sweep {s.attrs.get('name', '')}: {ok} of {int(s.attrs.get('n_points', 0))} runs finished; "
                      f"axes {s.attrs.get('axes')}")
            if args.full:
                print_tree(f, "", full=True)
            else:
                print_tree(f, "", full=False, collapse_runs=True)
                for line in _checkpoint_lines(args.file):
                    print(line)
                print(f"(inspect {args.file} /runs/<id> for a run; --full for every dataset)")
            return 0
        path = args.path
        if path not in f and f"/runs/{path}" in f:
            path = f"/runs/{path}"
        if path not in f:
            from crossbar_sim.engine.store import what_exists

            raise FormatError(f"{args.file}: no object {args.path!r} in the file; {what_exists(f, path)}")
        obj = f[path]
        parts = obj.name.strip("/").split("/")
        if isinstance(obj, h5py.Group) and len(parts) == 2 and parts[0] == "runs":
            _print_run(obj, args.near)
            return 0
        # a weight snapshot (group or its dataset), an array group, or a layer
        if "snapshots" in parts:
            k = parts.index("snapshots")
            arr = f["/" + "/".join(parts[:k])]
            step = parts[k + 1] if len(parts) > k + 1 else None
            _print_array_stats(arr, args.near, step)
        elif isinstance(obj, h5py.Group) and "snapshots" in obj:
            _print_array_stats(obj, args.near)
        elif isinstance(obj, h5py.Group) and len(parts) >= 4 and parts[2] == "tiles":
            print(f"tile layer {'/'.join(parts[3:])}  kind {obj.attrs.get('kind')}")
            for aname, arr in obj.items():
                if isinstance(arr, h5py.Group) and ("snapshots" in arr or arr.attrs.get("kind") is not None):
                    _print_array_stats(arr, args.near)
        if isinstance(obj, h5py.Dataset):
            print_tree(obj, "")
            if obj.size <= 64:
                print(np.array2string(obj[()], precision=6, threshold=64))
        else:
            print_tree(obj, "", full=args.full or len(parts) >= 4)
    return 0
