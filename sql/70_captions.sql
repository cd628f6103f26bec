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

-- name: caption_input
create or replace temp table caption_input as
with
requests as (
    select pair_id, osm_type, osm_id, gsd_m, center_lon, center_lat,
        st_makeenvelope(west, south, east, north) as box
    from image_requests
),
visible as (select key, value, max_gsd_m from tag_visibility where visible),
centre as (
    select r.pair_id, 0 as dist, o.osm_type, o.osm_id, o.tags, r.gsd_m, true as is_centre
    from requests as r
    join osm_objects as o using (osm_type, osm_id)
),
around as (
    select
        r.pair_id,
        st_distance(o.geom, st_point(r.center_lon, r.center_lat)) as dist,
        o.osm_type,
        o.osm_id,
        o.tags,
        r.gsd_m,
        false as is_centre
    from requests as r
    join osm_objects as o on st_intersects(r.box, o.geom)
    where not (o.osm_type = r.osm_type and o.osm_id = r.osm_id)
),
tags as (
    select
        pair_id, dist, osm_type, osm_id, gsd_m, is_centre,
        unnest(map_keys(tags)) as key,
        unnest(map_values(tags)) as value,
        generate_subscripts(map_keys(tags), 1) as tag_pos
    from (select * from centre union all select * from around)
),
visible_tags as (
    select t.*
    from tags as t
    join visible as v using (key, value)
    where v.max_gsd_m >= t.gsd_m
),
ranked_objects as (
    select pair_id, osm_type, osm_id,
        if(is_centre, 0, row_number() over (
            partition by pair_id, is_centre order by dist, osm_type, osm_id)) as rank
    from (select distinct pair_id, osm_type, osm_id, dist, is_centre from visible_tags)
)
select t.pair_id, o.rank, t.tag_pos, t.key, t.value
from visible_tags as t
join ranked_objects as o using (pair_id, osm_type, osm_id)
where o.rank <= $max_surrounding
order by t.pair_id, o.rank, t.tag_pos;

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

-- name: summary
select
    (select count(*) from image_requests) as rows_in,
    (select count(*) from captions) as rows_out,
    (select count(distinct title) from captions) as distinct_titles,
    (select count(distinct title_multi_objects) from captions) as distinct_multi;
