"""The monitoring report as one self-contained HTML page: tables, and plots embedded as PNG.

Nothing is fetched when the page opens (no fonts, no images or scripts from elsewhere): it can
be mailed, archived or opened on a machine without a network. One inline script checks, once
the page has loaded, that every plot decoded, and says so in ``<body data-plots="ok">`` (or
reports the broken ones on the console): the page's own test reads it. Plots are drawn with
matplotlib's object interface on an Agg canvas, so making a report never touches pyplot or
the process's matplotlib backend.
"""

from __future__ import annotations

import base64
import html
import io
import math
from collections.abc import Iterable

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

COLOURS = {"ok": "#4c956c", "watch": "#e9a23b", "act": "#c1121f"}
STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { margin-bottom: 0.2em; } h2 { border-bottom: 1px solid #ccc; padding-bottom: 0.2em; margin-top: 2em; }
table { border-collapse: collapse; margin: 0.8em 0; font-size: 0.9em; }
th, td { border: 1px solid #ddd; padding: 0.3em 0.6em; text-align: right; }
th { background: #f4f4f4; text-align: left; } td.text { text-align: left; }
.status { display: inline-block; padding: 0.3em 0.8em; border-radius: 0.3em;
          color: white; font-weight: bold; }
.ok { background: #4c956c; } .watch { background: #e9a23b; } .act { background: #c1121f; }
tr.flag-watch td { background: #fdf1dc; } tr.flag-act td { background: #f9d9db; }
img { max-width: 100%; } .muted { color: #666; }
.warning { background: #fdf1dc; border-left: 4px solid #e9a23b; padding: 0.4em 0.8em; }
"""


CHECK_PLOTS = """
window.addEventListener("load", function () {
  var broken = Array.prototype.filter.call(document.images, function (image) {
    return !image.complete || image.naturalWidth === 0;
  });
  broken.forEach(function (image, index) { console.error("plot " + index + " did not decode"); });
  document.body.dataset.plots = broken.length ? "broken" : "ok";
});
"""


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}">'


def _number(value: object, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, int):
        return f"{value:,}"
    return html.escape(str(value))


def _table(header: list[str], rows: Iterable[list[object]], flags: Iterable[str] | None = None) -> str:
    flags = list(flags) if flags is not None else None
    head = "".join(
        f'<th class="{"text" if i == 0 else ""}">{html.escape(h)}</th>' for i, h in enumerate(header)
    )
    body = []
    for index, row in enumerate(rows):
        level = flags[index] if flags is not None else "ok"
        cells = "".join(
            f'<td class="{"text" if i == 0 or isinstance(v, str) else ""}">{_number(v)}</td>'
            for i, v in enumerate(row)
        )
        body.append(f'<tr class="flag-{level}">{cells}</tr>')
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _psi_plot(entries: list[dict], title: str, watch: float, act: float) -> str:
    entries = sorted(entries, key=lambda entry: entry["psi"])
    figure = Figure(figsize=(9, max(2.0, 0.28 * len(entries) + 1)))
    axis = figure.add_subplot()
    axis.barh(
        [entry["name"] for entry in entries],
        [entry["psi"] for entry in entries],
        color=[COLOURS[entry["flag"]] for entry in entries],
    )
    for level, value in (("watch", watch), ("act", act)):
        axis.axvline(value, color=COLOURS[level], linestyle="--", linewidth=1, label=f"{level} {value:g}")
    axis.set(xlabel="population stability index", title=title)
    axis.legend(loc="lower right")
    figure.tight_layout()
    return _png(figure)


def _groups_plot(groups: list[dict], title: str, xlabel: str, log: bool) -> str:
    figure = Figure(figsize=(9, 4))
    axis = figure.add_subplot()
    x = np.arange(len(groups))
    observed = np.array([group["observed"] for group in groups])
    low = observed - np.array([group["interval_low"] for group in groups])
    high = np.array([group["interval_high"] for group in groups]) - observed
    axis.errorbar(
        x, observed, yerr=[low, high], fmt="o", color="#1d3557", capsize=3, label="observed (95% Jeffreys)"
    )
    axis.plot(x, [group["predicted"] for group in groups], "s", color="#e63946", label="predicted (mean)")
    axis.set_xticks(x, [group["group"] for group in groups])
    if log:
        axis.set_yscale("log")
    axis.set(xlabel=xlabel, ylabel="12-month rate", title=title)
    axis.legend()
    figure.tight_layout()
    return _png(figure)


def _over_time_plot(over_time: list[dict], development: dict[str, float]) -> str:
    figure = Figure(figsize=(9, 3.5))
    axis = figure.add_subplot()
    snapshots = [entry["snapshot"] for entry in over_time]
    axis.plot(snapshots, [entry["default_auc"] for entry in over_time], "o-", label="PD AUC")
    axis.plot(snapshots, [entry["churn_auc"] for entry in over_time], "o-", label="churn AUC")
    for name, colour in (("default", "#1f77b4"), ("churn", "#ff7f0e")):
        value = development.get(name)
        if value is not None and math.isfinite(value):
            axis.axhline(value, color=colour, linestyle=":", linewidth=1, label=f"{name} at development")
    axis.set(ylabel="AUC", title="discrimination by snapshot")
    axis.tick_params(axis="x", labelrotation=45)
    axis.legend(fontsize="small")
    figure.tight_layout()
    return _png(figure)


def render(report: dict, config: dict) -> str:
    """The page for ``report`` (:func:`crm_modes.monitor.figures.compute`, JSON-safe); ``config``
    is the monitoring configuration as a dict (thresholds shown beside the figures)."""
    distorted = _distortion_note(report.get("quarantine"))
    parts = [
        *_summary(report),
        *_flags_section(report["flags"]),
        *_quarantine_section(report.get("quarantine")),
        *_portfolio_section(report["portfolio"], distorted),
        *_stability_section(report["stability"], config["stability"]["psi"], distorted),
        *_backtest_section(report.get("backtest")),
        *_slices_section(report["slices"], distorted),
    ]
    title = f"monitoring {html.escape(report['model_version'])}"
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
        f"<style>{STYLE}</style></head><body>{''.join(parts)}<script>{CHECK_PLOTS}</script></body></html>\n"
    )


def _summary(report: dict) -> list[str]:
    """The heading, the overall status and what was read: rows in, scored and quarantined."""
    status = report["status"]
    judged = report["judged"]
    cannot = [] if judged["enough"] else [f'<p class="warning">{html.escape(judged["note"])}.</p>']
    return [
        f"<h1>Model monitoring: {html.escape(report['model_version'])}</h1>",
        *cannot,
        f'<p><span class="status {status}">{status.upper()}</span> '
        f"{len(report['flags'])} figures flagged. Current book: {_number(report['rows_in'])} rows in = "
        f"{_number(report['rows_scored'])} scored + {_number(report['rows_quarantined'])} quarantined, "
        f"snapshots {' to '.join(report['snapshots']) or '-'}; "
        f"reference: {_number(report['reference']['rows'])} training rows, "
        f"{' to '.join(report['reference']['snapshots']) or '-'}.</p>",
    ]


def _flags_section(flags: list[dict]) -> list[str]:
    table = (
        _table(
            ["section", "what", "figure", "value", "level", "note"],
            [
                [f["section"], f["name"], f["figure"], f["value"], f["level"], f.get("note", "")]
                for f in flags
            ],
            [f["level"] for f in flags],
        )
        if flags
        else "<p>Nothing flagged.</p>"
    )
    return ['<section id="flags"><h2>Flags</h2>', table, "</section>"]


def _current_share(mix: dict, mode: str) -> float | None:
    """A mode's share of the current book; none shown when no row was scored."""
    return mix.get(mode, 0.0) if mix else None


def _distortion_note(gated: dict | None) -> str:
    """What a figure of the rows that passed may not show, when the gate kept many out."""
    if not gated or not gated["distorts"]:
        return ""
    return (
        f'<p class="warning">{gated["share"]:.1%} of the rows were quarantined (see above): the figures '
        "below describe only the rows that passed the gate, and may show a shift the quarantine made, "
        "or hide one.</p>"
    )


def _quarantine_section(gated: dict | None) -> list[str]:
    if not gated:
        return []
    parts = [
        '<section id="quarantine"><h2>Quarantine</h2>',
        f"<p>{_number(gated['rows_quarantined'])} of {_number(gated['rows_in'])} rows "
        f"({gated['share']:.2%}) were kept out by the gate: nobody scored them or alerted on them.</p>",
    ]
    if gated["reasons"]:
        parts.append(
            _table(
                ["column", "rows", "an offending value"],
                [[r["column"], r["rows"], r["example"]] for r in gated["reasons"]],
            )
        )
    new_values = [
        [column, value, count]
        for column, values in gated["new_values"].items()
        for value, count in values.items()
    ]
    if new_values:
        parts.append(
            "<p>Categories the schema does not declare, scored (model inputs: as unknown) and counted:</p>"
        )
        parts.append(_table(["column", "value", "rows"], new_values))
    return [*parts, "</section>"]


def _portfolio_section(levels: dict, distorted: str) -> list[str]:
    now, reference, previous = levels["current"], levels["reference"], levels.get("previous") or {}
    against_reference, against_previous = levels["against_reference"], levels.get("against_previous") or {}
    rows, flags = [], []
    names = {
        "mean_default_probability": "mean PD",
        "mean_churn_probability": "mean churn probability",
        "expected_defaults": "expected defaults (sum of PD)",
        "rows": "rows read",
    }
    for key in ("mean_default_probability", "expected_defaults", "mean_churn_probability", "rows"):
        by_reference, by_previous = against_reference.get(key, {}), against_previous.get(key, {})
        rows.append(
            [
                names[key],
                now.get(key),
                reference.get(key) if key in against_reference else None,
                _shown_change(by_reference),
                previous.get(key),
                _shown_change(by_previous),
            ]
        )
        flags.append(_worst_of(by_reference.get("flag", "ok"), by_previous.get("flag", "ok")))
    for score, tails in now["tail_shares"].items():
        for name, share in tails.items():
            key = f"{score}_{name}"
            by_reference, by_previous = against_reference.get(key, {}), against_previous.get(key, {})
            rows.append(
                [
                    f"share of {score} {name.replace('_', ' ')} of the reference",
                    share,
                    reference["tail_shares"].get(score, {}).get(name),
                    _shown_change(by_reference),
                    previous.get("tail_shares", {}).get(score, {}).get(name),
                    _shown_change(by_previous),
                ]
            )
            flags.append(_worst_of(by_reference.get("flag", "ok"), by_previous.get("flag", "ok")))
    kept = levels["continuity"]
    continuity = f'<p class="warning">{html.escape(kept["note"])}</p>' if kept.get("note") else ""
    grades = [
        [grade, share, reference["grade_shares"].get(grade), previous.get("grade_shares", {}).get(grade)]
        for grade, share in now["grade_shares"].items()
    ]
    return [
        '<section id="portfolio"><h2>The book\'s levels</h2>',
        distorted,
        continuity,
        "<p>Each change is flagged when it crosses its threshold and its 95% interval (from the rows and "
        "the spread of the scores) excludes no change.</p>",
        _table(
            ["figure", "current", "reference", "change [interval]", "previous run", "change [interval]"],
            rows,
            flags,
        ),
        _table(["risk grade", "share", "reference share", "previous run"], grades) if grades else "",
        _grade_mix(levels.get("grade_mix_against_previous")),
        *_input_shifts(levels),
        "</section>",
    ]


def _grade_mix(mix: dict | None) -> str:
    if not mix:
        return ""
    return (
        f'<p class="flag-{mix["flag"]}">PSI of the risk grade mix against the previous run: '
        f"{mix['psi']:.4f} ({mix['flag']})</p>"
    )


def _input_shifts(levels: dict) -> list[str]:
    """The numeric inputs' means against the previous run's, flagged and largest shift first."""
    shifts = levels.get("inputs_against_previous") or {}
    moved = sorted(
        ((name, figures) for name, figures in shifts.items() if figures["base"] is not None),
        key=lambda item: (item[1]["flag"] == "ok", -abs(item[1]["shift"] or 0.0)),
    )
    if not moved:
        return []
    now = levels["current"]["inputs"]
    rows = [
        [
            name,
            now[name]["mean"],
            figures["base"],
            "-"
            if figures["shift"] is None
            else f"{figures['shift']:+.2f} [{figures['interval'][0]:+.2f}, {figures['interval'][1]:+.2f}]",
        ]
        for name, figures in moved
    ]
    return [
        "<p>The mean of each numeric input against the previous run's, in standard deviations pooled "
        "over both books, flagged either way when it crosses its threshold and its 95% interval "
        "excludes no shift.</p>",
        _table(["input", "mean", "previous run", "shift [interval]"], rows, [f["flag"] for _, f in moved]),
    ]


def _shown_change(change: dict) -> str:
    if not change or change.get("change") is None:
        return "-"
    shown = f"{change['change']:+.1%}"
    if change.get("interval"):
        low, high = change["interval"]
        shown += f" [{low:+.1%}, {high:+.1%}]"
    return shown


def _worst_of(*levels: str) -> str:
    return max(levels, key=["ok", "watch", "act"].index)


def _stability_section(stable: dict, psi_levels: dict, distorted: str) -> list[str]:
    rates = stable["rates"]
    return [
        '<section id="stability"><h2>Stability against the training reference</h2>',
        distorted,
        _psi_plot(
            stable["scores"] + stable["mixes"], "scores and mixes", psi_levels["watch"], psi_levels["act"]
        ),
        _psi_plot(
            stable["inputs"],
            "input features (characteristic stability)",
            psi_levels["watch"],
            psi_levels["act"],
        ),
        _table(
            ["economy", "reference range", "share below", "share above", "flag"],
            [
                [
                    e["name"],
                    " to ".join(f"{v:.2f}" for v in e["reference_range"]),
                    e["share_below"],
                    e["share_above"],
                    e["flag"],
                ]
                for e in stable["economy"]
            ],
            [e["flag"] for e in stable["economy"]],
        ),
        _table(
            ["rate", "reference", "current"],
            [["alert rate", rates["alert_rate"]["reference"], rates["alert_rate"]["current"]]]
            + [
                [f"recommended {mode}", share, _current_share(rates["recommended_mode"]["current"], mode)]
                for mode, share in rates["recommended_mode"]["reference"].items()
            ],
        ),
        "</section>",
    ]


def _backtest_section(tested: dict | None) -> list[str]:
    parts = ['<section id="backtest"><h2>Backtest</h2>']
    if not tested:
        return [
            *parts,
            '<p class="muted">No outcomes given (--outcomes): nothing to backtest.</p>',
            "</section>",
        ]
    overall = tested["overall"]
    parts += [
        _table(
            [
                "model",
                "rows",
                "events",
                "observed",
                "predicted",
                "calibration in the large",
                "AUC",
                "Gini",
                "development AUC",
                "ECE",
            ],
            [
                [
                    name,
                    o["rows"],
                    o["events"],
                    o["observed_rate"],
                    o["mean_prediction"],
                    o["calibration_in_the_large"],
                    o["auc"],
                    o["gini"],
                    o["development_auc"],
                    o["ece"],
                ]
                for name, o in overall.items()
            ],
            [
                max((o["auc_flag"], o["calibration_flag"]), key=["ok", "watch", "act"].index)
                for o in overall.values()
            ],
        ),
        _groups_plot(tested["grades"], "PD by risk grade: predicted and observed", "risk grade", log=True),
        _table(
            ["grade", "facilities", "defaults", "predicted", "observed", "binomial p", "Jeffreys p", "flag"],
            [
                [
                    g["group"],
                    g["count"],
                    g["events"],
                    g["predicted"],
                    g["observed"],
                    g["binomial_p"],
                    g["jeffreys_p"],
                    g["flag"],
                ]
                for g in tested["grades"]
            ],
            [g["flag"] for g in tested["grades"]],
        ),
        _groups_plot(
            tested["churn_deciles"], "churn by predicted decile", "decile of predicted churn", log=False
        ),
        _over_time_plot(tested["over_time"], {k: v["development_auc"] for k, v in overall.items()}),
    ]
    return [*parts, "</section>"]


def _beyond(entry: dict, score: str) -> str:
    """A slice's PSI of ``score`` and, in brackets, what it moved beyond the book ("-": a slice the
    reference never saw)."""
    value, beyond = entry.get(f"{score}_psi"), entry.get(f"{score}_psi_beyond_whole")
    if value is None or beyond is None:
        return "-"
    return f"{value:.3f} ({beyond:.3f})"


def _slices_section(slices: list[dict], distorted: str) -> list[str]:
    return [
        '<section id="slices"><h2>Slices</h2>',
        distorted,
        _table(
            [
                "slice",
                "rows",
                "share",
                "reference share",
                "alert rate",
                "reference alert rate",
                "PD PSI (beyond book)",
                "churn PSI (beyond book)",
                "AUC",
                "observed PD",
                "predicted PD",
                "flag",
            ],
            [
                [
                    f"{s['dimension']} = {s['slice']}",
                    s["rows"],
                    s.get("share"),
                    s.get("reference_share"),
                    s["alert_rate"],
                    s["reference_alert_rate"],
                    _beyond(s, "default_probability"),
                    _beyond(s, "churn_probability"),
                    s.get("auc"),
                    s.get("observed_default_rate"),
                    s.get("predicted_default_rate"),
                    s["flag"],
                ]
                for s in slices
            ],
            [s["flag"] for s in slices],
        ),
        "</section>",
    ]
