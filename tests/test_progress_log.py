"""Progress lines in the run log: step of total, the loop's numbers, elapsed and ETA."""

from assets.progress import format_seconds, progress_line


def test_format_seconds() -> None:
    assert [format_seconds(s) for s in (0.4, 42, 187, 3725)] == ["0s", "42s", "3m07s", "1h02m"]


def test_eta_from_the_pace_so_far() -> None:
    # 2 of 8 iterations in 30 s: 15 s each, 6 to go, ETA 90 s
    line = progress_line("zsl_te iteration", 2, 8, {"loss": 0.51234, "cg": 3}, elapsed_s=30.0)
    assert line == "zsl_te iteration 2/8 (25%) loss=0.5123 cg=3 elapsed 30s, ETA 1m30s"


def test_the_loop_s_own_clock_wins() -> None:
    # a resumed loop reports its own elapsed/ETA (it knows which epochs it skipped)
    values = {"epoch": 3, "loss": 0.25, "elapsed_s": 20.0, "eta_s": 10.0}
    line = progress_line("pretrain epoch", 3, 4, values, elapsed_s=999.0)
    assert line == "pretrain epoch 3/4 (75%) epoch=3 loss=0.25 elapsed 20s, ETA 10s"
