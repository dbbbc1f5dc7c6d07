"""Training plots as PNG files (matplotlib, Agg backend: no display needed)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.dates as mdates  # noqa: E402  (the backend must be chosen first)
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import ScalarFormatter  # noqa: E402

from gridcast.model import BASELINES, TARGET, TrainResult  # noqa: E402
from gridcast.windows import Recommendation  # noqa: E402

BASELINE_STYLE = {"linestyle": "--", "linewidth": 1.2}


def _plain_log_ticks(axes: plt.Axes) -> None:
    axes.yaxis.set_major_formatter(ScalarFormatter())
    axes.yaxis.set_minor_formatter(ScalarFormatter())


def _save(figure: plt.Figure, path: Path) -> Path:
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return path


def plot_mae_by_horizon(table: pd.DataFrame, path: Path) -> Path:
    """Test MAE per horizon of the model and of every baseline."""
    figure, axes = plt.subplots(figsize=(8, 4.5))
    axes.plot(table["horizon"], table["mae"], marker="o", linewidth=2, label="model")
    for name in BASELINES:
        axes.plot(table["horizon"], table[f"baseline.{name}.mae"], label=name, **BASELINE_STYLE)
    axes.set(
        xlabel="horizon (h)", ylabel="MAE (gCO2eq/kWh), log scale", title="Test MAE by horizon"
    )
    # Log scale: persistence is often several times worse and would flatten the other curves.
    axes.set_yscale("log")
    _plain_log_ticks(axes)
    axes.grid(alpha=0.3)
    axes.legend()
    return _save(figure, path)


def plot_forecast_vs_actual(scored: pd.DataFrame, horizon: int, days: int, path: Path) -> Path:
    """Forecast with its p10-p90 band against the actual, at one horizon, last `days` days."""
    rows = scored[scored["horizon"] == horizon].sort_values("datetime")
    rows = rows[rows["datetime"] > rows["datetime"].max() - pd.Timedelta(days=days)]
    figure, axes = plt.subplots(figsize=(11, 4.5))
    axes.fill_between(rows["datetime"], rows["p10"], rows["p90"], alpha=0.25, label="p10-p90")
    axes.plot(rows["datetime"], rows[TARGET], color="black", linewidth=1.2, label="actual")
    axes.plot(rows["datetime"], rows["prediction"], linewidth=1.2, label="forecast")
    axes.set(
        xlabel="target hour (UTC)", ylabel="carbon intensity (gCO2eq/kWh)",
        title=f"Forecast {horizon} h ahead vs actual, last {days} test days",
    )
    axes.grid(alpha=0.3)
    axes.legend(loc="upper right")
    figure.autofmt_xdate()
    return _save(figure, path)


def plot_permutation_importance(importance: pd.DataFrame, path: Path, top: int = 20) -> Path:
    """The `top` inputs by permutation importance (MAE increase when shuffled)."""
    shown = importance.head(top).iloc[::-1]
    figure, axes = plt.subplots(figsize=(8, 0.3 * len(shown) + 1.5))
    axes.barh(shown["feature"], shown["mae_increase"], xerr=shown["std"], color="tab:blue")
    axes.set(xlabel="MAE increase when shuffled", title="Permutation importance (test sample)")
    axes.grid(alpha=0.3, axis="x")
    return _save(figure, path)


def plot_error_by_hour(hours: pd.DataFrame, path: Path) -> Path:
    """Test MAE by the target's local hour of day, model and baselines."""
    figure, axes = plt.subplots(figsize=(8, 4.5))
    axes.plot(hours["hour_local"], hours["model"], marker="o", linewidth=2, label="model")
    for name in BASELINES:
        axes.plot(hours["hour_local"], hours[name], label=name, **BASELINE_STYLE)
    axes.set(
        xlabel="hour of day (local)", ylabel="MAE (gCO2eq/kWh), log scale",
        title="Test MAE by hour of day", xticks=range(0, 24, 3), yscale="log",
    )
    _plain_log_ticks(axes)
    axes.grid(alpha=0.3)
    axes.legend()
    return _save(figure, path)


def save_training_plots(result: TrainResult, importance: pd.DataFrame | None,
                        out: Path) -> list[Path]:
    """Every training plot into `out` (the permutation importance only when given); returns the
    files written."""
    horizons = sorted({1, min(24, result.settings.horizon)})
    paths = [plot_mae_by_horizon(result.horizon_table, out / "mae_by_horizon.png")]
    for h in horizons:
        paths.append(plot_forecast_vs_actual(
            result.scored_test, h, result.settings.plot_days,
            out / f"forecast_vs_actual_h{h:02d}.png",
        ))
    if importance is not None:
        paths.append(plot_permutation_importance(importance, out / "permutation_importance.png"))
    if not result.hour_table.empty:
        paths.append(plot_error_by_hour(result.hour_table, out / "error_by_hour_of_day.png"))
    return paths


def plot_recommendation(forecast: pd.DataFrame, rec: Recommendation, path: Path) -> Path:
    """The forecast with its p10-p90 band, the recommended window shaded green and the run-now
    window shaded grey, each with its mean forecast intensity drawn across it.

    Each value is drawn across its whole hour (up to the end of the forecast's last hour); an
    hour the forecast lacks is left blank rather than bridged.
    """
    hours = pd.date_range(forecast["datetime"].min(), forecast["datetime"].max(), freq="h")
    grid = forecast.set_index("datetime")[["prediction", "p10", "p90"]].reindex(hours)
    # A step drawn "post" stops at its last point: repeat the last hour at its end.
    grid.loc[hours[-1] + pd.Timedelta(hours=1)] = grid.iloc[-1]
    figure, axes = plt.subplots(figsize=(10, 4.8))
    axes.fill_between(grid.index, grid["p10"], grid["p90"], step="post", alpha=0.2,
                      color="tab:blue", linewidth=0, label="p10–p90")
    axes.step(grid.index, grid["prediction"], where="post", linewidth=2, color="tab:blue",
              label="forecast (p50)")
    windows = ((rec.run_now, "tab:gray", "run now"), (rec.best, "tab:green", "greenest window"))
    for window, colour, name in windows:
        axes.axvspan(window.start, window.end, color=colour, alpha=0.18, linewidth=0, zorder=0)
        axes.hlines(window.mean_intensity, window.start, window.end, colors=colour,
                    linewidth=2.5, linestyles="--",
                    label=f"{name} {window.start:%d %b %H:%M}–{window.end:%H:%M}: "
                          f"{window.mean_intensity:.0f} g/kWh")
    saving = (f"saves {rec.savings_g_per_kwh:.0f} g/kWh ({rec.savings_pct:.0f} %) vs running now"
              if rec.savings_pct is not None and rec.best.start != rec.run_now.start
              else "running now is the greenest")
    axes.set_title(f"{rec.zone}: greenest {rec.duration_h:g} h window from the forecast issued "
                   f"{rec.generated_at:%Y-%m-%d %H:%M} UTC\n{saving}")
    axes.set(xlabel="UTC", ylabel="carbon intensity (gCO2eq/kWh)")
    axes.set_ylim(bottom=0)
    axes.xaxis.set_major_locator(mdates.HourLocator(byhour=range(0, 24, 3)))
    axes.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M\n%d %b"))
    axes.grid(alpha=0.3)
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, frameon=False)
    return _save(figure, path)
