-- Stage captions: two captions per image request, from the tags (section 4 of the method).
--   Tags: only those visible at the image's GSD (tag_visibility.max_gsd_m >= gsd_m).
--   Surrounding objects: those intersecting the image bounds with at least one such tag, nearest to
--   the image centre first (then by type and id), at most $max_surrounding.
--   Words: caption_renames (seed caption_renames.csv) renames a key (value empty) or one value of a
--   key; otherwise '_' and ':' become spaces. caption_key_styles (seed caption_key_styles.csv) says
--   how a key joins its value: 'adjective' (key value), 'is' (key is value), default 'of'.
--   Tag order within an object: keys with a primary_rank first (by rank), then the object's own
--   tag order.
--   title: the centre object's phrases joined by ', '. title_multi_objects: each object as its
--   first phrase, then ' with ' and the others joined by ' and '; the centre first, then
--   ', surrounded by ' and the surrounding objects joined by '; '.
-- The `captions` section reads temp table caption_input(pair_id, rank, tag_pos, key, value)
-- (rank 0 = centre), so skyscript_db.caption() runs the very same SQL on tags given in Python.

-- name: load_renames
create or replace table caption_renames as
select * from read_csv($renames_csv, header = true,
                       columns = {'key': 'varchar', 'value': 'varchar', 'text': 'varchar'});

-- name: load_styles
create or replace table caption_key_styles as
select * from read_csv($styles_csv, header = true,
                       columns = {'key': 'varchar', 'style': 'varchar', 'primary_rank': 'integer'});

-- name: caption_hits
-- Objects inside each image, in a statement of their own: with any other condition beside
-- st_intersects, DuckDB plans the join as an inequality join (minutes) instead of its R-tree join.
create or replace temp table caption_hits as
with
requests as (
    select pair_id, osm_type, osm_id, gsd_m, center_lon, center_lat,
        st_makeenvelope(west, south, east, north) as box
    from image_requests
)
select
    r.pair_id,
    r.gsd_m,
    r.osm_type as centre_type,
    r.osm_id as centre_id,
    o.osm_type,
    o.osm_id,
    st_distance(o.geom, st_point(r.center_lon, r.center_lat)) as dist
from requests as r
join osm_objects as o on st_intersects(r.box, o.geom);

-- name: caption_input
create or replace temp table caption_input as
with
visible as (select key, value, max_gsd_m from tag_visibility where visible),
object_gsd as (
    -- the coarsest GSD at which an object still has a visible tag
    select t.osm_type, t.osm_id, max(v.max_gsd_m) as max_gsd_m
    from osm_tags as t
    join visible as v using (key, value)
    group by t.osm_type, t.osm_id
),
around as (
    select
        h.pair_id,
        h.osm_type,
        h.osm_id,
        h.gsd_m,
        row_number() over (partition by h.pair_id order by h.dist, h.osm_type, h.osm_id) as rank
    from caption_hits as h
    join object_gsd as g using (osm_type, osm_id)
    where g.max_gsd_m >= h.gsd_m and not (h.osm_type = h.centre_type and h.osm_id = h.centre_id)
    qualify rank <= $max_surrounding
),
objects as (
    select pair_id, osm_type, osm_id, gsd_m, 0 as rank from image_requests
    union all
    select pair_id, osm_type, osm_id, gsd_m, rank from around
),
tags as (
    select
        x.pair_id,
        x.rank,
        x.gsd_m,
        unnest(map_keys(o.tags)) as key,
        unnest(map_values(o.tags)) as value,
        generate_subscripts(map_keys(o.tags), 1) as tag_pos
    from objects as x
    join osm_objects as o using (osm_type, osm_id)
)
select t.pair_id, t.rank, t.tag_pos, t.key, t.value
from tags as t
join visible as v using (key, value)
where v.max_gsd_m >= t.gsd_m
order by t.pair_id, t.rank, t.tag_pos;

-- name: captions
create or replace table captions as
with
input as (select pair_id, rank, tag_pos, key, value from caption_input),
tag_phrases as (
    select
        i.pair_id,
        i.rank,
        i.tag_pos,
        s.primary_rank,
        coalesce(kr.text, replace(replace(i.key, '_', ' '), ':', ' ')) as key_text,
        coalesce(vr.text, replace(replace(i.value, '_', ' '), ':', ' ')) as value_text,
        case coalesce(s.style, 'of')
            when 'adjective' then key_text || ' ' || value_text
            when 'is' then key_text || ' is ' || value_text
            else key_text || ' of ' || value_text
        end as phrase
    from input as i
    left join caption_key_styles as s on s.key = i.key
    left join caption_renames as kr on kr.key = i.key and kr.value is null
    left join caption_renames as vr on vr.key = i.key and vr.value = i.value
),
object_phrases as (
    select pair_id, rank, list(phrase order by primary_rank nulls last, tag_pos) as phrases
    from tag_phrases
    group by pair_id, rank
),
objects as (
    select
        *,
        phrases[1] || if(len(phrases) > 1, ' with ' || array_to_string(phrases[2:], ' and '), '')
            as described
    from object_phrases
),
final as (
    select
        pair_id,
        array_to_string(any_value(phrases) filter (where rank = 0), ', ') as title,
        any_value(described) filter (where rank = 0)
            || coalesce(', surrounded by '
                || string_agg(described, '; ' order by rank) filter (where rank > 0), '')
            as title_multi_objects
    from objects
    group by pair_id
    having count(*) filter (where rank = 0) = 1
)
select * from final
order by pair_id;

-- name: drop_staging
drop table caption_hits;

-- name: summary
select
    (select count(*) from image_requests) as rows_in,
    (select count(*) from captions) as rows_out,
    (select count(distinct title) from captions) as distinct_titles,
    (select count(distinct title_multi_objects) from captions) as distinct_multi;
