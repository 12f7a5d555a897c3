"""Tiki-Taka v2, chopped TTv2 and AGAD tiles: buffer arithmetic, choppers, schedules, state."""
import numpy as np
import pytest

from crossbar_sim.tiles.buffered import BufferedTransfer, BufferedTransferTile, ChoppedTransfer, DynamicTransfer
from crossbar_sim.tiles.tiki_taka import CompoundTileConfig, TikiTakaTile, TransferCompound
from crossbar_sim.device_models import ConstantStepDevice
from crossbar_sim.errors import ConfigError
from crossbar_sim.tiles.params import IOParameters, UpdateParameters

PERFECT = IOParameters(is_perfect=True)


def _dev():
    # no variation and no cycle-to-cycle noise: every pulse moves a device by exactly dw_min
    return ConstantStepDevice(dw_min=0.01, dw_min_dtod=0.0, dw_min_std=0.0, up_down_dtod=0.0, w_max_dtod=0.0,
                              w_min_dtod=0.0, w_max=1.0, w_min=-1.0)


def _tile(cls, out=3, inp=4, update=None, seed=0, **kw):
    kw.setdefault("transfer_forward", PERFECT)
    kw.setdefault("fast_lr", 1.0)
    comp = cls(device_a=_dev(), device_c=_dev(), **kw)
    cfg = CompoundTileConfig(device=comp, update=update or UpdateParameters(pulse_type="none"),
                             forward=PERFECT, backward=PERFECT)
    return BufferedTransferTile(out, inp, cfg, seed=seed)


def test_ttv2_buffer_threshold_and_whole_pulses():
    t = _tile(BufferedTransfer, transfer_every=0.0, momentum=0.1)  # transfers only by hand
    t.set_weights(np.zeros((3, 4)))
    A = np.array([[0.031, -0.05, 0, 0], [0.009, 0, 0, 0], [-0.25, 0, 0, 0]], np.float32)
    t.a.set_weights(A)
    t.transfer(lr=1.0)  # column 0: H = lr * A[:, 0]; threshold g_C = 0.01
    # n = trunc(H / 0.01) clipped to +-BL (1): [3 -> 1, 0.9 -> 0, -25 -> -1]; one pulse each onto C
    np.testing.assert_allclose(t.c.read_weights()[:, 0], [0.01, 0.0, -0.01], atol=1e-7)
    # forget_buffer: H *= momentum where a pulse was written, kept otherwise
    np.testing.assert_allclose(t.H[:, 0], [0.0031, 0.009, -0.025], rtol=1e-5)
    assert t.c.counters["n_pulses"] == 2  # the pulsed path ran: one pulse per non-zero n
    assert t.pointer == 1 and t.counters["n_transfers"] == 1


def test_ttv2_subtracting_buffer():
    t = _tile(BufferedTransfer, transfer_every=0.0, momentum=0.0, forget_buffer=False,
              transfer_update=UpdateParameters(desired_bl=5, update_bl_management=False, update_management=False))
    t.set_weights(np.zeros((3, 4)))
    t.a.set_weights(np.array([[0.034, 0, 0, 0], [-0.021, 0, 0, 0], [0.0, 0, 0, 0]], np.float32))
    t.transfer(lr=1.0)
    np.testing.assert_allclose(t.H[:, 0], [0.004, -0.001, 0.0], atol=1e-6)  # H -= n * threshold


def test_choppers_start_unset_as_aihwkit():
    # aihwkit 1.1.0 starts every in- and out-chopper unset (rpu_chopped_transfer_device.cpp populate; verified by
    # dump_extra: in_chopper = [0, 0, 0]); the first fast update writes -fast_lr d x^T un-negated
    t = _tile(ChoppedTransfer, transfer_every=0.0, in_chop_prob=0.0)
    assert not t.in_chop.any() and not t.out_chop.any()
    t.set_weights(np.zeros((3, 4)))
    x = np.array([[1.0, 0.5, -0.25, 0.0]], np.float32)
    d = np.array([[0.1, -0.2, 0.3]], np.float32)
    t.update(x, d, lr=0.5)
    np.testing.assert_allclose(t.a.read_weights(), -1.0 * np.outer(d[0], x[0]), rtol=1e-6)


def test_chopped_without_chopping_never_flips():
    # build_config('ttv2') is a ChoppedTransferCompound with in_chop_prob = 0: no sign flip ever, so after many
    # sweeps every update still adds -fast_lr d x^T to A
    t = _tile(ChoppedTransfer, inp=2, transfer_every=1.0, in_chop_prob=0.0, fast_lr=0.01)
    t.set_weights(np.zeros((3, 2)))
    for _ in range(20):
        t.update(np.ones((1, 2), np.float32), np.full((1, 3), 0.1, np.float32), lr=0.0001)
        assert not t.in_chop.any()
    assert t.transfer_counter == 10


def test_chopped_update_flips_sign_of_fast_array():
    # pulse_type none: A changes by exactly -fast_lr * (t d)(s x)^T with s, t = -1 where a chopper is set
    t = _tile(ChoppedTransfer, transfer_every=0.0, in_chop_prob=0.0)
    t.set_weights(np.zeros((3, 4)))
    x = np.array([[1.0, 0.5, -0.25, 0.0]], np.float32)
    d = np.array([[0.1, -0.2, 0.3]], np.float32)
    t.in_chop[:] = True
    t.update(x, d, lr=0.5)
    np.testing.assert_allclose(t.a.read_weights(), +1.0 * np.outer(d[0], x[0]), rtol=1e-6)
    t.in_chop[:] = False
    t.update(x, d, lr=0.5)
    np.testing.assert_allclose(t.a.read_weights(), 0.0, atol=1e-7)


def test_chopped_transfer_reads_back_with_chopper_sign():
    t = _tile(ChoppedTransfer, transfer_every=0.0, in_chop_prob=0.0, buffer_granularity=1.0)
    t.set_weights(np.zeros((3, 4)))
    t.a.set_weights(np.array([[-0.025, 0, 0, 0], [0.015, 0, 0, 0], [0.005, 0, 0, 0]], np.float32))
    t.in_chop[0] = True
    # in_chop[0] set, out choppers not: the read is sign-corrected; lr_scale = lr / (1 * g_A) = 100
    t.transfer(lr=1.0)
    np.testing.assert_allclose(t.c.read_weights()[:, 0], [0.01, -0.01, 0.0], atol=1e-7)
    np.testing.assert_allclose(t.H[:, 0], [0.0, 0.0, -0.5], atol=1e-5)


def test_chopper_switching_regular_and_random():
    reg = _tile(ChoppedTransfer, inp=2, transfer_every=0.0, in_chop_prob=0.5, in_chop_random=False)
    seen = []
    for _ in range(8):  # n_samples = 2: a column's chopper switches after its read in odd sweeps
        reg.transfer(lr=1.0)
        seen.append(reg.in_chop.copy())
    # column 0 is read in sweeps 0, 1, 2, 3: switched after sweeps 1 and 3 (each sign lasts two sweeps); unset first
    assert [bool(s[0]) for s in seen[1::2]] == [False, True, True, False]
    rnd = _tile(ChoppedTransfer, inp=1, transfer_every=0.0, in_chop_prob=0.3, seed=5)
    flips = 0
    prev = rnd.in_chop[0]
    for _ in range(500):
        rnd.transfer(lr=1.0)
        flips += rnd.in_chop[0] != prev
        prev = rnd.in_chop[0]
    # binomial(500, 0.3): mean 150, sd 10.2; 5 sd
    assert abs(flips - 150) < 52


def test_agad_writes_only_after_warmup_and_tracks_running_mean():
    t = _tile(DynamicTransfer, inp=1, transfer_every=0.0, in_chop_prob=0.5, tail_weightening=1.0)
    t.set_weights(np.zeros((3, 1)))
    t.a.set_weights(np.full((3, 1), 0.05, np.float32))
    n_samples = t.config.device.n_chop_samples()
    assert n_samples == 2
    for k in range(n_samples + 1):
        t.transfer(lr=1.0)
        assert t.c.counters["n_pulses"] == 0  # no write while transfer_counter <= n_samples
    # running mean with momentum min(tail_weightening / n_samples, 1) = 0.5 of constant reads 0.05
    np.testing.assert_allclose(t.running_mean[:, 0], 0.05 * (1 - 0.5 ** (n_samples + 1)), rtol=1e-5)
    for _ in range(6):
        t.transfer(lr=1.0)
    assert t.c.counters["n_pulses"] > 0


@pytest.mark.parametrize("cls", [TikiTakaTile, BufferedTransferTile])
@pytest.mark.parametrize("every,units,batches,expected", [
    (0.5, True, [10, 10], 4),      # sub-batch: every ceil(0.5 * 10) = 5 samples
    (0.01, True, [10], 10),        # fractional period rounding below one sample: after every sample
    (3.0, False, [10, 10], 6),     # in samples, across batch boundaries: after samples 3, 6, ..., 18
    (2.0, True, [4, 4, 4, 4], 2),  # every second mini-batch
])
def test_fractional_and_sub_batch_transfer_periods(cls, every, units, batches, expected):
    comp_cls = TransferCompound if cls is TikiTakaTile else BufferedTransfer
    comp = comp_cls(device_a=_dev(), device_c=_dev(), transfer_every=every, units_in_mbatch=units, fast_lr=0.1)
    tile = cls(3, 4, CompoundTileConfig(device=comp), seed=1)
    rng = np.random.default_rng(0)
    for b in batches:
        tile.update(rng.normal(size=(b, 4)).astype(np.float32), rng.normal(size=(b, 3)).astype(np.float32), lr=0.1)
    assert tile.counters["n_transfers"] == expected
    assert tile.a.counters["n_pulses"] > 0  # pulses, not a floating-point shortcut


@pytest.mark.parametrize("cls", [BufferedTransfer, ChoppedTransfer, DynamicTransfer])
def test_state_round_trip_continues_bit_identically(cls):
    comp = cls(device_a=_dev(), device_c=_dev(), transfer_every=1.0, fast_lr=0.5,
               **({} if cls is BufferedTransfer else {"in_chop_prob": 0.3}))
    cfg = CompoundTileConfig(device=comp)
    rng = np.random.default_rng(0)
    data = [(rng.normal(size=(5, 6)).astype(np.float32), rng.normal(scale=0.3, size=(5, 4)).astype(np.float32))
            for _ in range(12)]
    t1 = BufferedTransferTile(4, 6, cfg, seed=3)
    for x, d in data[:6]:
        t1.update(x, d, lr=0.2)
    st = t1.get_state()
    t2 = BufferedTransferTile(4, 6, cfg, seed=99)
    t2.set_state(st)
    for x, d in data[6:]:
        t1.update(x, d, lr=0.2)
        t2.update(x, d, lr=0.2)
    for k, v in t1.arrays().items():
        np.testing.assert_array_equal(v, t2.arrays()[k], err_msg=k)
    assert t1.c.counters["n_pulses"] == t2.c.counters["n_pulses"] > 0


def test_config_errors():
    with pytest.raises(ConfigError, match="'n_reads_per_transfer' parameter of ChoppedTransfer must be 1"):
        ChoppedTransfer(n_reads_per_transfer=2)
    with pytest.raises(ConfigError, match="'in_chop_prob' parameter of DynamicTransfer must be a float in \\(0, 1\\]"):
        DynamicTransfer(in_chop_prob=0.0)
    with pytest.raises(ConfigError, match="'momentum' parameter of BufferedTransfer must be a float in"):
        BufferedTransfer(momentum=1.5)
    with pytest.raises(ConfigError, match="must be a CompoundTileConfig whose device is a BufferedTransfer"):
        BufferedTransferTile(2, 2, CompoundTileConfig(device=TransferCompound()))


# ------------------------------------------------------------------------------------------ issue 19
def test_agad_switches_regularly_and_at_random():
    # aihwkit 1.1.0 (rpu_dynamic_transfer_device.cpp): with in_chop_random the chopper still switches at the end of
    # every period, and also with probability p per read (verified there: 22 switches in 1000 sweeps at p = 0.01,
    # 10 regular ones without randomness)
    def flips(random, seed):
        t = _tile(DynamicTransfer, inp=1, transfer_every=0.0, in_chop_prob=0.05, in_chop_random=random, seed=seed)
        n, prev = 0, t.in_chop[0]
        for _ in range(2000):
            t.transfer(lr=1.0)
            n += t.in_chop[0] != prev
            prev = t.in_chop[0]
        return n

    assert flips(False, 0) == 100  # period 20 sweeps: exactly 2000 / 20
    # regular 100 plus Binomial(2000, 0.05) random ones (mean 100, sd 9.7) minus the coincidences: 5 sd
    assert abs(flips(True, 1) - 195) < 50


def test_agad_never_switches_out_choppers():
    with pytest.raises(ConfigError, match="'out_chop_prob' parameter of DynamicTransfer must be 0"):
        DynamicTransfer(out_chop_prob=0.5)
    t = _tile(DynamicTransfer, inp=2, transfer_every=0.0, in_chop_prob=0.5)
    for _ in range(20):
        t.transfer(lr=1.0)
    assert not t.out_chop.any()


def test_set_weights_keeps_buffer_and_choppers_as_aihwkit():
    # aihwkit onSetWeights resets only the transfer pointer and the update counter (verified: H survives)
    t = _tile(ChoppedTransfer, transfer_every=1.0, in_chop_prob=0.5, in_chop_random=False, fast_lr=0.01)
    t.set_weights(np.zeros((3, 4)))
    rng = np.random.default_rng(0)
    for _ in range(9):
        t.update(rng.normal(size=(1, 4)).astype(np.float32), rng.normal(size=(1, 3)).astype(np.float32), lr=0.5)
    H, chop, counter = t.H.copy(), t.in_chop.copy(), t.transfer_counter
    assert np.any(H != 0) and t.pointer == 1
    t.set_weights(np.full((3, 4), 0.1))
    np.testing.assert_array_equal(t.H, H)
    np.testing.assert_array_equal(t.in_chop, chop)
    assert t.transfer_counter == counter and t.pointer == 0 and t.samples_seen == 0
    np.testing.assert_allclose(t.a.read_weights(), 0.0)


def test_automatic_transfer_period():
    # transfer_every < 0: every max(1, round(n_states_A / n_vectors * |te|)) samples; n_states = 2 / 0.01 = 200,
    # 4 columns, |te| = 0.5 -> every 25 samples, whatever the batch size and units_in_mbatch
    t = _tile(ChoppedTransfer, transfer_every=-0.5, in_chop_prob=0.0, units_in_mbatch=True)
    assert t.transfer_every_samples(7) == 25
    rng = np.random.default_rng(0)
    for b in (7, 7, 7, 7, 7, 15):
        t.update(rng.normal(size=(b, 4)).astype(np.float32), rng.normal(size=(b, 3)).astype(np.float32), lr=0.1)
    assert t.counters["n_transfers"] == 2  # after samples 25 and 50
    with pytest.raises(ConfigError, match="'transfer_every' parameter of TransferCompound must be a float in "
                                          r"\[0, inf\) \(a negative, automatic period exists for ChoppedTransfer"):
        TransferCompound(transfer_every=-1.0)
    with pytest.raises(ConfigError, match="'transfer_every' parameter of BufferedTransfer must be a float in"):
        BufferedTransfer(transfer_every=-1.0)


def test_row_transfer_of_tiki_taka_v1_is_the_column_transfer_of_the_transpose():
    # transfer_columns=False reads rows of A (backward read) and writes them onto C's rows; with exact reads and
    # exact writes (pulse_type none) it equals the column transfer of the transposed tile, step by step
    upd = UpdateParameters(pulse_type="none")

    def tile(out, inp, cols):
        comp = TransferCompound(device_a=_dev(), device_c=_dev(), transfer_every=1.0, fast_lr=0.3, units_in_mbatch=False,
                                transfer_forward=PERFECT, transfer_update=upd, transfer_columns=cols,
                                n_reads_per_transfer=2)
        return TikiTakaTile(out, inp, CompoundTileConfig(device=comp, update=upd, forward=PERFECT, backward=PERFECT),
                            seed=0)

    rows, cols_t = tile(3, 5, False), tile(5, 3, True)
    rng = np.random.default_rng(1)
    for _ in range(7):
        x = rng.normal(size=(1, 5)).astype(np.float32)
        d = rng.normal(size=(1, 3)).astype(np.float32)
        rows.update(x, d, lr=0.1)
        cols_t.update(d, x, lr=0.1)  # the transposed problem
        np.testing.assert_allclose(rows.c.read_weights(), cols_t.c.read_weights().T, atol=1e-6)
    assert rows.pointer == cols_t.pointer == (7 * 2) % 3
    assert np.any(rows.c.read_weights() != 0)
