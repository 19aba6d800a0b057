"""The benchmark's targets measured in pairs with the ceiling (bench.run.Paired)."""

from bench.client import Result, Sample
from bench.run import (
    EXACT_THROUGHPUT,
    PAIRED_MIN_SAMPLES,
    PREVIEW_MEDIAN,
    Paired,
    Row,
    ratio_targets,
)


def result(requests: int, seconds: float = 1.0, latency_ms: float = 10.0) -> Result:
    return Result("page", 1, seconds, [Sample(latency_ms, 200, 2, 100)] * requests)


def test_a_throughput_target_is_read_from_the_median_of_its_rounds():
    pair = Paired(EXACT_THROUGHPUT, "exact order id search", "throughput", 0.5)
    # Page over ceiling: 40 %, 60 %, 55 %, 70 %, 45 %: one bad round each way.
    for page, ceiling in [(100, 250), (150, 250), (110, 200), (140, 200), (90, 200)]:
        pair.rounds.append((result(page), result(ceiling)))
    assert [round(r, 2) for r in pair.ratios] == [0.4, 0.6, 0.55, 0.7, 0.45]
    assert pair.ratio == 0.55
    assert pair.met
    pair.rounds[1] = (result(100), result(250))  # 40 % instead of 60 %
    assert pair.ratio == 0.45
    assert not pair.met


def test_a_median_time_target_is_met_at_or_below_its_bound():
    pair = Paired(PREVIEW_MEDIAN, "refund preview", "median", 3)
    for page_ms in (15.0, 14.0, 16.0):
        pair.rounds.append((result(30, latency_ms=page_ms), result(30, latency_ms=5.0)))
    assert pair.ratios == [3.0, 2.8, 3.2]
    assert pair.ratio == 3.0
    assert pair.met
    pair.rounds.append((result(30, latency_ms=17.0), result(30, latency_ms=5.0)))
    assert pair.ratio == 3.1
    assert not pair.met


def test_a_window_with_too_few_requests_counts_no_round_and_says_so():
    pair = Paired(EXACT_THROUGHPUT, "exact order id search", "throughput", 0.5)
    pair.rounds.append((result(100), result(0)))
    pair.rounds.append((result(120), result(200)))
    pair.rounds.append((result(PAIRED_MIN_SAMPLES - 1), result(200)))
    assert pair.ratio == 0.6
    exact = Row("Order list", "exact order id search", result(30), result(120))
    ceiling = Row("Ceiling", "bare Django view", result(30), result(300))
    ((_target, measured, met),) = [
        t for t in ratio_targets([exact], ceiling, [pair]) if t[0] == EXACT_THROUGHPUT
    ]
    assert measured.startswith(
        "median of 1 round paired with the ceiling (2 of 3 too short to count): "
        "60.0% (rounds: –, 60.0%, –)"
    )
    assert met


def test_a_ratio_just_past_its_bound_does_not_read_as_the_bound():
    pair = Paired(PREVIEW_MEDIAN, "refund preview", "median", 3)
    pair.rounds.append((result(30, latency_ms=15.2), result(30, latency_ms=5.0)))
    assert pair.describe(pair.ratio) == "3.04×"
    assert not pair.met
    slow = Paired(EXACT_THROUGHPUT, "exact order id search", "throughput", 0.5)
    slow.rounds.append((result(497, seconds=1.0), result(1000, seconds=1.0)))
    assert slow.describe(slow.ratio) == "49.7%"
    assert not slow.met


def test_a_paired_target_replaces_its_single_window_reading_and_shows_it():
    ceiling = Row("Ceiling", "bare Django view", result(30), result(300))
    exact = Row("Order list", "exact order id search", result(30), result(120))
    single = ratio_targets([exact], ceiling)
    assert (EXACT_THROUGHPUT, "120 of 300 req/s (40.0%)", False) in single

    pair = Paired(EXACT_THROUGHPUT, "exact order id search", "throughput", 0.5)
    for page, ceiling_rps in [(150, 250), (140, 250), (160, 250)]:
        pair.rounds.append((result(page), result(ceiling_rps)))
    paired = ratio_targets([exact], ceiling, [pair])
    found = [t for t in paired if t[0] == EXACT_THROUGHPUT]
    assert found == [
        (
            EXACT_THROUGHPUT,
            "median of 3 rounds paired with the ceiling: 60.0% "
            "(rounds: 60.0%, 56.0%, 64.0%); single window: 120 of 300 req/s (40.0%)",
            True,
        )
    ]
