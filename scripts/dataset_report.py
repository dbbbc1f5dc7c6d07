#!/usr/bin/env python
"""Summarise the embedded recording's carbon intensity beside the real GR 2022 series.

    .venv/bin/python scripts/dataset_report.py [--recording DIR] [--shared-data DIR]

Prints, for the recording (final revisions, life-cycle intensity): yearly and monthly means for
2024 and 2025, the mean daily profile by UTC hour, and the hourly correlation of intensity with
solar and with wind production. Beside it, the same figures for the real Electricity Maps GR
2022 series (shared/data/electricitymaps/GR_2022_hourly_lca_only.csv), where computable: that
file has intensity only, so it gets means and the profile but no correlations. The 2022 column
is left out when the reference data is absent.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parent.parent
DEFAULT_RECORDING = REPO / "data" / "recordings" / "gr-2024-2025"
DEFAULT_SHARED = REPO.parent / "shared" / "data"
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def load_recording(recording: Path) -> pd.DataFrame:
    e = pd.read_csv(recording / "energy" / "GR.csv.gz",
                    usecols=["datetime", "is_estimated", "carbon_intensity",
                             "production_solar", "production_wind"])
    e = e[~e.is_estimated]
    e.index = pd.to_datetime(e.pop("datetime"), format="%Y-%m-%dT%H:%M:%SZ", utc=True)
    return e.sort_index()


def load_gr_2022(shared: Path) -> pd.Series | None:
    path = shared / "electricitymaps" / "GR_2022_hourly_lca_only.csv"
    if not path.is_file():
        return None
    df = pd.read_csv(path)
    lower = {c: c.lower() for c in df.columns}
    time_col = next(c for c, n in lower.items() if n.startswith("datetime"))
    ci_col = next(c for c, n in lower.items()
                  if ("lca" in n or "life cycle" in n) and "carbon intensity" in n)
    s = pd.Series(df[ci_col].to_numpy(dtype=float),
                  index=pd.to_datetime(df[time_col], utc=True), name="ci")
    return s


def _fmt(x: float | None, width: int = 7, digits: int = 1) -> str:
    return f"{'n/a':>{width}}" if x is None or np.isnan(x) else f"{x:{width}.{digits}f}"


def report(rec: pd.DataFrame, gr2022: pd.Series | None) -> str:
    ci = rec.carbon_intensity.astype(float)
    lines = []
    cols = ["2024", "2025"] + (["GR 2022 real"] if gr2022 is not None else [])
    header = f"{'':14}" + "".join(f"{c:>14}" for c in cols)

    def row(label: str, values: list[float | None], digits: int = 1) -> str:
        return f"{label:14}" + "".join(_fmt(v, 14, digits) for v in values)

    def for_year(y: int) -> pd.Series:
        return ci[ci.index.year == y]

    lines.append("Life-cycle carbon intensity, gCO2eq/kWh (recording: final revisions; "
                 "2022: Electricity Maps data portal)")
    lines.append(header)
    yearly = [for_year(2024).mean(), for_year(2025).mean()]
    if gr2022 is not None:
        yearly.append(gr2022.mean())
    lines.append(row("yearly mean", yearly))
    lines.append("")
    lines.append("Monthly mean")
    lines.append(header)
    for m in range(1, 13):
        vals = [for_year(y)[for_year(y).index.month == m].mean() for y in (2024, 2025)]
        if gr2022 is not None:
            vals.append(gr2022[gr2022.index.month == m].mean())
        lines.append(row(MONTHS[m - 1], vals))
    lines.append("")
    lines.append("Mean daily profile by UTC hour (hour start; local time = UTC+2, UTC+3 in summer)")
    both = f"{'':14}{'2024-2025':>14}" + (f"{'GR 2022 real':>14}" if gr2022 is not None else "")
    lines.append(both)
    prof = ci.groupby(ci.index.hour).mean()
    prof22 = gr2022.groupby(gr2022.index.hour).mean() if gr2022 is not None else None
    for h in range(24):
        vals = [prof[h]] + ([prof22[h]] if prof22 is not None else [])
        lines.append(row(f"{h:02d}:00", vals))
    if prof22 is not None:
        lines.append(row("peak/trough", [prof.max() / prof.min(), prof22.max() / prof22.min()],
                         digits=2))
        lines.append(f"{'shape corr':14}{np.corrcoef(prof, prof22)[0, 1]:14.3f}"
                     "   (Pearson, the two 24-hour profiles)")
    lines.append("")
    lines.append("Hourly Pearson correlation of intensity with production")
    lines.append(header)
    for source in ("solar", "wind"):
        vals: list[float | None] = []
        for y in (2024, 2025):
            sel = rec.index.year == y
            vals.append(float(np.corrcoef(ci[sel], rec[f"production_{source}"][sel])[0, 1]))
        if gr2022 is not None:
            vals.append(None)  # the 2022 file carries no production breakdown
        lines.append(row(f"vs {source}", vals, digits=3))
    if gr2022 is not None:
        lines.append("(2022: n/a, the file has intensity only)")
    lines.append("")
    lines.append(row("std (hourly)", [for_year(2024).std(), for_year(2025).std()]
                     + ([gr2022.std()] if gr2022 is not None else [])))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--recording", type=Path, default=DEFAULT_RECORDING)
    ap.add_argument("--shared-data", type=Path, default=DEFAULT_SHARED)
    args = ap.parse_args(argv)
    rec = load_recording(args.recording)
    gr2022 = load_gr_2022(args.shared_data)
    print(report(rec, gr2022))
    if gr2022 is None:
        print(f"\n(reference data not found at {args.shared_data}: 2022 comparison skipped)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
