"""fit-device: recovery of known parameters from our own model's curves (with noise), real files, bad input."""
import os

import numpy as np
import pytest

from crossbar_sim import ConfigError, FormatError
from crossbar_sim.cli import main
from crossbar_sim.device_models import load_device_file
from crossbar_sim.device_models.fit import MAX_NFEV, Curve, fit_cost, fit_curve, read_curve, simulate

DATA = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "device_curves")


def _synthetic(model, p, noise, seed=0, n=150):
    sim = simulate(model, np.asarray(p, float), [-0.9, 0.9], [1, -1], [n, n])
    rng = np.random.default_rng(seed)
    segs = [sim[0] + noise * rng.standard_normal(n), sim[1] + noise * rng.standard_normal(n)]
    c = Curve(segs, [1, -1], "synthetic", (0.0, 1.0))
    return c


def test_recovers_softbounds_parameters_with_noise():
    # dw_up 0.02, dw_down 0.015, bounds +1.2 / -1.1; read noise 0.01 (half a step): the fitted steps must come
    # back within 5 % and the bounds within 0.1 (the stated uncertainties are smaller than that)
    true = [0.02, 0.015, 1.2, -1.1]
    c = _synthetic("softbounds", true, 0.01)
    res = fit_curve(c, "softbounds")
    np.testing.assert_allclose(res.params[:2], true[:2], rtol=0.05)
    np.testing.assert_allclose(res.params[2:], true[2:], atol=0.1)
    assert res.r2 > 0.99 and res.rmse == pytest.approx(0.01, rel=0.2)


def test_recovers_linear_step_parameters_with_noise():
    true = [0.02, 0.02, 0.6, 0.3]
    res = fit_curve(_synthetic("linear-step", true, 0.005, seed=1), "linear-step")
    np.testing.assert_allclose(res.params[:2], true[:2], rtol=0.05)
    np.testing.assert_allclose(res.params[2:], true[2:], atol=0.08)


def test_two_column_real_file_and_cli(tmp_path, capsys):
    out = tmp_path / "gong.json"
    rc = main(["fit-device", f"{DATA}/aihwkit_gong2018_reram/gong_et_al.csv", "--model", "softbounds", "-o",
               str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "R^2" in text and "+-" in text
    dev = load_device_file(str(out))
    assert type(dev).__name__ == "SoftBoundsDevice"
    assert (tmp_path / "gong.png").exists()


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return str(p)


def test_bad_inputs(tmp_path):
    few = _write(tmp_path, "few.csv", "\n".join(f"{i},{-i}" for i in range(5)))
    with pytest.raises(FormatError, match="too few points"):
        read_curve(few)
    nonmono = _write(tmp_path, "nm.csv", "pulse,G\n" + "\n".join(f"{i % 15},{i}" for i in range(40)))
    with pytest.raises(FormatError, match="pulse index must increase"):
        read_curve(nonmono)
    nans = _write(tmp_path, "nan.csv", "\n".join(f"{i},{'nan' if i == 7 else -i}" for i in range(30)))
    with pytest.raises(FormatError, match="NaN"):
        read_curve(nans)
    cols = _write(tmp_path, "cols.csv", "\n".join(f"{i},{-i},{i}" for i in range(30)))
    with pytest.raises(FormatError, match="exactly 2 columns"):
        read_curve(cols)
    nog = _write(tmp_path, "nog.csv", "pulse,current\n" + "\n".join(f"{i},{i}" for i in range(30)))
    with pytest.raises(FormatError, match="'G'"):
        read_curve(nog)
    with pytest.raises(ConfigError, match="Unknown model"):
        fit_curve(read_curve(f"{DATA}/aihwkit_gong2018_reram/gong_et_al.csv"), "nope")


def test_cli_bad_input_exit_code(tmp_path, capsys):
    few = _write(tmp_path, "few.csv", "1,2\n3,4\n")
    assert main(["fit-device", few]) == 2
    assert "too few points" in capsys.readouterr().err


# ---------------------------------------------------------------------- issue 20: hostile files, long fits, help
@pytest.mark.parametrize("content, match", [
    (bytes(range(256)) * 4, r"holds NUL bytes"),                    # binary with NUL bytes
    (b"\x89PNG\r\n\x1a\n" + b"\xff\xfe" * 100, r"is not UTF-8 text"),  # binary without NUL bytes
    (b"\x1f\x8b\x08" + b"\x80" * 50, r"is not UTF-8 text"),           # gzip-like
])
def test_binary_files_are_one_line(tmp_path, capsys, content, match):
    p = tmp_path / "data.bin"
    p.write_bytes(content)
    with pytest.raises(FormatError, match=rf"data.bin: not a CSV text file \(.*{match}"):
        read_curve(str(p))
    assert main(["fit-device", str(p)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("crossbar-sim fit-device: error: ")


def test_short_rows_and_binary_down_file(tmp_path):
    short = _write(tmp_path, "short.csv", "pulse,G\n1,0.1\n2\n")
    with pytest.raises(FormatError, match=r"data row 2 has 1 field\(s\); the header names 2 columns"):
        read_curve(short)
    up = _write(tmp_path, "up.csv", "r0\n" + "\n".join(str(i) for i in range(20)))
    down = tmp_path / "down.csv"
    down.write_bytes(b"\x00\x01\x02")
    with pytest.raises(FormatError, match="down.csv: not a CSV text file"):
        read_curve(up, str(down))


def test_fit_reports_progress_and_its_cost():
    c = _synthetic("softbounds", [0.02, 0.015, 1.2, -1.1], 0.01)
    per_eval, max_evals = fit_cost(c, "softbounds")
    assert per_eval > 0 and max_evals == MAX_NFEV * (1 + 4 + 2)  # 4 parameters + 2 segment starts per Jacobian
    lines = []
    res = fit_curve(c, "softbounds", progress=lines.append, progress_every=0.0)
    assert lines and all(m.startswith("fit: ") and "model evaluation(s) in" in m for m in lines)
    # progress_every=0: one line per evaluation, counted 1, 2, 3, ...; the smallest RMSE reported is the fit's
    assert [int(m.split()[1]) for m in lines] == list(range(1, len(lines) + 1))
    assert min(float(m.split("RMSE ")[1].split()[0]) for m in lines) == pytest.approx(res.rmse, rel=1e-3)


def test_cli_announces_a_long_fit(tmp_path, capsys, monkeypatch):
    from crossbar_sim.cli import fit_device

    monkeypatch.setattr(fit_device, "ANNOUNCE_S", 0.0)  # every fit counts as long
    rc = main(["fit-device", f"{DATA}/aihwkit_gong2018_reram/gong_et_al.csv", "-o", str(tmp_path / "g.json"),
               "--plot", "none"])
    assert rc == 0
    err = capsys.readouterr().err
    assert "fitting softbounds: one model evaluation takes about" in err and "a fit usually needs 40-130" in err
    assert "crossbar-sim fit-device: fit: " in err


def test_help_has_no_literal_percent_escapes(capsys):
    with pytest.raises(SystemExit):
        main(["fit-device", "--help"])
    out = capsys.readouterr().out
    assert "%%" not in out and "(0.5 % / 99.5 % quantiles)" in " ".join(out.split())
