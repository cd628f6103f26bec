"""Captions benchmark: the paper's rule captions beside the natural ones (iD presets), on the eleven
extracts.

Builds the eleven extracts once (default config, catalog imagery), then
runs the captions stage's SQL (sql/70_captions.sql) section by section, `--repeat` times, and
times the sections both kinds need (objects in each image, visible tags, the paper's phrases), the
rule captions' own, and the natural captions' own. Reports how many centres got a preset name,
distinct captions of each kind, and examples. Writes bench/results/captions.md.
Usage: python bench/captions.py [--repeat N] [--pbf FILE]
"""

from __future__ import annotations

import datetime
import os
import statistics
import tempfile
import time
from pathlib import Path

import duckdb

import skyscript_db
from skyscript_db import captions, queries
from skyscript_db.config import BuildConfig
from skyscript_db.etl.pipeline import build

from common import ELEVEN, SMALL, parser, report_path  # bench/common.py

SHARED = ("seen_objects", "caption_boxes", "caption_hits", "caption_slots", "caption_input",
          "tag_phrases")
RULE = ("in_order", "load_renames", "load_styles", "captions")
NATURAL = ("lang_rank", "check_language", "load_language", "load_presets", "load_preset_tags",
           "load_fields", "load_field_options", "object_presets", "natural_objects",
           "natural_captions")
EXAMPLES = 12


def run_sections(con: duckdb.DuckDBPyConnection, config: BuildConfig) -> dict[str, float]:
    """Seconds per section, run in the file's order (as the stage does)."""
    params = {name: queries.seed_path(seed) for name, seed in captions.SEEDS.items()}
    params |= {"max_surrounding": config.max_surrounding,
               "caption_language": config.caption_language,
               "caption_max_chars": config.caption_max_chars}
    seconds = {}
    for name, query in queries.load(captions.SQL_FILE).items():
        if name in ("drop_staging", "drop_boxes", "drop_seen", "summary"):
            continue
        start = time.perf_counter()
        query.run(con, **{p: params[p] for p in query.params})
        seconds[name] = time.perf_counter() - start
    return seconds


def figures(con: duckdb.DuckDBPyConnection) -> dict[str, float]:
    return con.execute("""
        select
            count(*) as pairs,
            (select count(*) from caption_slots join caption_object_presets using (object_id)
             where rank = 0) as centres_named,
            count(distinct title) as rule_titles,
            count(distinct title_natural) as natural_titles,
            count(distinct title_multi_objects) as rule_multi,
            count(distinct title_multi_objects_natural) as natural_multi,
            avg(length(title_multi_objects)) as rule_multi_chars,
            avg(length(title_multi_objects_natural)) as natural_multi_chars,
            max(length(title_multi_objects)) as rule_multi_max,
            max(length(title_multi_objects_natural)) as natural_multi_max
        from captions""").fetchdf().iloc[0].to_dict()


def examples(con: duckdb.DuckDBPyConnection) -> list[tuple]:
    """One pair per centre preset, the most common first: a spread, not twelve roads."""
    return con.execute(f"""
        with named as (
            select c.*, p.preset_id
            from captions as c
            left join caption_slots as s on s.pair_id = c.pair_id and s.rank = 0
            left join caption_object_presets as p using (object_id)
        ),
        spread as (
            select *, count(*) over (partition by preset_id) as n
            from named
            qualify row_number() over (partition by preset_id order by hash(pair_id)) = 1
        )
        select title, title_natural, title_multi_objects, title_multi_objects_natural
        from spread order by n desc, preset_id limit {EXAMPLES}""").fetchall()


def main() -> None:
    options = parser(__doc__)
    options.add_argument("--repeat", type=int, default=3)
    options.add_argument("--pbf", type=Path, default=ELEVEN)
    args = options.parse_args()
    if args.quick:
        args.pbf, args.repeat = SMALL, 1
    config = BuildConfig(imagery="catalog")
    runs: list[dict[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "captions.duckdb"
        build(args.pbf, db, config)
        with skyscript_db.connect(db) as con:
            stage_s = con.execute("select seconds from stage_runs where stage = 'captions'"
                                  ).fetchone()[0]
            queries.create_macros(con)
            for _ in range(args.repeat):
                runs.append(run_sections(con, config))
            facts = figures(con)
            shown = examples(con)
            german = BuildConfig(imagery="catalog", caption_language="de")
            run_sections(con, german)
            shown_de = examples(con)[:4]
    median = {name: statistics.median(r[name] for r in runs) for name in runs[0]}
    shared, rule, natural = (sum(median[n] for n in group) for group in (SHARED, RULE, NATURAL))
    pairs = int(facts["pairs"])
    lines = [
        "# Captions benchmark: the paper's rule captions and the natural ones",
        "",
        f"Run {datetime.date.today()} on {os.cpu_count()} cores with `python bench/captions.py`: "
        f"{args.pbf.name} built (default config, catalog imagery), then "
        f"the captions stage's SQL section by section, median of {args.repeat} runs in one "
        "connection. Natural captions: iD tagging schema 7.2.0 presets and fields, English.",
        "",
        "| part of the captions stage | median s | pairs per s |",
        "|---|---|---|",
        f"| objects in each image, visible tags, the paper's phrases (both need them) | "
        f"{shared:.2f} | |",
        f"| rule captions' own sections | {rule:.2f} | |",
        f"| **rule captions alone (shared + own)** | **{shared + rule:.2f}** | "
        f"{pairs / (shared + rule):,.0f} |",
        f"| natural captions' own sections (presets, fields, names) | {natural:.2f} | |",
        f"| **natural captions alone (shared + own)** | **{shared + natural:.2f}** | "
        f"{pairs / (shared + natural):,.0f} |",
        f"| whole stage now | {shared + rule + natural:.2f} | "
        f"{pairs / (shared + rule + natural):,.0f} |",
        "",
        f"The captions stage as the build ran it (the spatial join staged first, then one "
        f"transaction for both kinds): {stage_s:.2f} s ({pairs / stage_s:,.0f} pairs per s).",
        "",
        f"Natural captions take {(shared + natural) / (shared + rule):.2f}× the rule captions' "
        f"time (target ≤ 1.5×); the stage as a whole, "
        f"{(shared + rule + natural) / (shared + rule):.2f}×.",
        "",
        "| | rule captions | natural captions |",
        "|---|---|---|",
        f"| pairs | {pairs:,} | {pairs:,} |",
        f"| centre object named by a preset | | {int(facts['centres_named']):,} "
        f"({facts['centres_named'] / pairs:.1%}) |",
        f"| distinct single-object captions | {int(facts['rule_titles']):,} | "
        f"{int(facts['natural_titles']):,} |",
        f"| distinct multi-object captions | {int(facts['rule_multi']):,} | "
        f"{int(facts['natural_multi']):,} |",
        f"| multi-object caption length, mean / max characters | "
        f"{facts['rule_multi_chars']:.0f} / {int(facts['rule_multi_max'])} | "
        f"{facts['natural_multi_chars']:.0f} / {int(facts['natural_multi_max'])} |",
        "",
        "Slowest sections (median s): " + ", ".join(
            f"{n} {s:.2f}" for n, s in sorted(median.items(), key=lambda x: -x[1])[:6]) + ".",
        "",
        "## Examples (one per centre preset, most common first)",
        "",
    ]
    for title, natural_title, multi, natural_multi in shown:
        lines += [f"- rule: {title}  ", f"  natural: **{natural_title}**  ",
                  f"  rule, multi: {multi}  ", f"  natural, multi: **{natural_multi}**", ""]
    lines += ["## In German (`--caption-language de`)", ""]
    lines += [f"- {t} → **{n}**" for t, n, _, _ in shown_de]
    report_path(args, "captions").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
