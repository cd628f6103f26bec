-- The web page (skyscript-db serve): what it shows, read from a database opened read-only.
-- At start the server snapshots the pairs view into a temp table of the same name, which shadows
-- the view on its connection: the view ranks every pair on each read (about 90 ms on the default
-- database), and a read-only database cannot change while it is served. Each pair's split is the
-- one a default export gives (sql/95_export.sql, run once at start into pair_splits).

-- name: has_caption_texts
-- Databases embedded before the caption_texts view existed cannot give a pair's split.
select count(*) > 0 as found from duckdb_views() where view_name = 'caption_texts';

-- name: snapshot
create or replace temp table pairs as select * from main.pairs;

-- name: snapshot_key
create unique index pairs_pair_id on pairs (pair_id);

-- name: export_candidates
-- Every pair is a candidate of the default export.
create or replace temp view export_candidates as select pair_id from pairs;

-- name: pair_splits
create or replace temp table pair_splits as
select pair_id, split, cell_id, block_id from export_pairs;

-- name: drop_export_pairs
drop table export_pairs;

-- name: no_external_access
-- Last of the setup: from here no query reads or writes a file, attaches a database or loads an
-- extension, and nobody can set it back.
set enable_external_access = false;

-- name: lock_configuration
set lock_configuration = true;

-- name: cards
-- What a search result shows, for the pairs $ids (in any order).
select
    pair_id,
    title,
    title_multi_objects,
    similarity,
    similarity_rank_pct,
    collection_code,
    gsd_m,
    acquired,
    untrained,
    kind,
    osm_type,
    osm_id,
    image_path
from pairs
where pair_id in (select unnest($ids));

-- name: pair
-- One pair with the rule values of its request (GSD, size, UTM rectangle) and its split.
select
    p.*,
    r.utm_epsg,
    r.x_min,
    r.y_min,
    r.x_max,
    r.y_max,
    r.center_lon,
    r.center_lat,
    s.split,
    s.cell_id,
    s.block_id,
    (select string_agg(reason, ', ' order by reason) from selected_objects as o
     where o.osm_type = p.osm_type and o.osm_id = p.osm_id) as selected_by
from pairs as p
join image_requests as r using (pair_id)
left join pair_splits as s using (pair_id)
where p.pair_id = $pair_id;

-- name: pair_objects
-- The centre object and the objects around it inside the image, nearest first, each with its
-- geometry clipped to the image and written as SVG in the request's UTM metres (y negated, as
-- SVG's y axis points down), and its tags with the classifier's verdicts. visible_here: the tag
-- is visible at this image's GSD, which is what puts it in a caption.
with
request as (
    select
        *,
        st_makeenvelope(west, south, east, north) as box_ll,
        st_makeenvelope(x_min, y_min, x_max, y_max) as box_m
    from image_requests
    where pair_id = $pair_id
),
hits as (
    select
        o.osm_type,
        o.osm_id,
        o.kind,
        o.tags,
        o.osm_type = r.osm_type and o.osm_id = r.osm_id as centre,
        st_distance(o.geom, st_point(r.center_lon, r.center_lat)) as dist,
        st_assvg(st_intersection(
            st_transform(o.geom, 'EPSG:4326', 'EPSG:' || r.utm_epsg, always_xy := true),
            r.box_m), false, 2) as svg,
        r.gsd_m
    from osm_objects as o, request as r
    where st_intersects(o.geom, r.box_ll)
    order by centre desc, dist, o.osm_type, o.osm_id
    limit $max_objects
),
exploded as (
    select
        osm_type,
        osm_id,
        gsd_m,
        unnest(map_keys(tags)) as key,
        unnest(map_values(tags)) as value,
        generate_subscripts(map_keys(tags), 1) as pos
    from hits
),
tags as (
    select
        e.osm_type,
        e.osm_id,
        list({
            'key': e.key,
            'value': e.value,
            'visible': v.visible,
            'max_gsd_m': v.max_gsd_m,
            'p_visible': v.p_visible,
            'source': v.source,
            'rule_reason': v.rule_reason,
            'visible_here': coalesce(v.visible and v.max_gsd_m >= e.gsd_m, false)
        } order by e.pos) as tags
    from exploded as e
    left join tag_visibility as v using (key, value)
    group by e.osm_type, e.osm_id
)
select
    h.osm_type,
    h.osm_id,
    h.kind,
    h.centre,
    h.dist,
    h.svg,
    t.tags,
    list_bool_or([x.visible_here for x in t.tags]) as described
from hits as h
join tags as t using (osm_type, osm_id)
order by h.centre desc, h.dist, h.osm_type, h.osm_id;

-- name: image_vector
select image from embeddings
where pair_id = $pair_id and model_id = (select model_id from pair_settings);

-- name: summary
select
    (select count(*) from osm_objects) as objects,
    (select count(*) from selected_objects) as selected,
    (select count(*) from image_requests) as requests,
    (select count(*) from images where status = 'ok') as images,
    (select count(*) from pairs) as pairs,
    (select model_id from pair_settings) as model_id,
    (select score_caption from pair_settings) as score_caption,
    (select untrained from embedding_models join pair_settings using (model_id)) as untrained;

-- name: stages
-- Each stage's last run.
select stage, finished_at, round(seconds, 2) as seconds, rows_in, rows_out
from stage_runs
qualify row_number() over (partition by stage order by finished_at desc) = 1
order by finished_at;

-- name: collections
select
    collection_code,
    count(*) as pairs,
    round(avg(gsd_m), 2) as mean_gsd_m,
    min(acquired) as first_acquired,
    max(acquired) as last_acquired
from pairs
group by collection_code
order by pairs desc, collection_code;

-- name: splits
select split, count(*) as pairs, count(distinct block_id) as blocks
from pair_splits
group by split
order by split;

-- name: top_tags
-- The most frequent tags among the pairs' centre objects.
select t.key, t.value, count(*) as pairs, any_value(v.visible) as visible
from pairs as p
join osm_tags as t using (osm_type, osm_id)
left join tag_visibility as v using (key, value)
group by t.key, t.value
order by pairs desc, t.key, t.value
limit $limit;

-- name: histogram
-- Pairs per similarity bin, $bins equal bins between the lowest and highest similarity.
with
bounds as (select min(similarity) as lo, max(similarity) as hi from pairs),
binned as (
    select least(floor((similarity - lo) / nullif(hi - lo, 0) * $bins), $bins - 1)::int as bin
    from pairs, bounds
)
select
    b.bin,
    lo + b.bin * (hi - lo) / $bins as start,
    lo + (b.bin + 1) * (hi - lo) / $bins as stop,
    count(binned.bin) as pairs
from bounds, range($bins) as b(bin)
left join binned on binned.bin = b.bin
group by all
order by b.bin;

-- name: cuts
-- The lowest similarity kept by each top-N % cut (pairs_top20, pairs_top30, pairs_top50).
select
    pct,
    min(similarity) filter (where similarity_rank_pct < pct) as similarity,
    count(*) filter (where similarity_rank_pct < pct) as pairs
from pairs, (values (20), (30), (50)) as c(pct)
group by pct
order by pct;
