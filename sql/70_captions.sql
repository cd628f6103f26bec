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
--   Natural captions (title_natural, title_multi_objects_natural) use the OSM community's own names
--   for tag combinations, the iD editor's tagging schema (seeds id_presets/, `make seeds`), in
--   $caption_language (falling back to its base language, then English):
--   - each object's preset is iD's match among its visible tags: every tag of the preset present
--     (value '*' = any, but a preset of only '*' values names no value other than 'yes'), the
--     object's geometry among the preset's (a polygon is iD's area, a point also its vertex), the highest score (a tag
--     matched exactly counts the preset's match_score, a '*' half of it, and so does each of its
--     addTags present; ties: more tags, then id);
--   - the object is said as the preset's name, then 'with' its other visible tags as field phrases
--     ("clay surface", "2 lanes"); a tag with no field, and an object with no preset, keep the
--     paper's phrase;
--   - surrounding objects are said by name only, identical names once with their count ("Scrub
--     ×5"), nearest first (then largest), as many as fit in $caption_max_chars.
--   caption_languages.csv gives the connecting words per language ('*': punctuation only).
-- The caption sections read two temp tables, so skyscript_db.caption() runs the very same SQL on
-- tags given in Python: caption_slots(pair_id, rank, object_id, dist), each image's objects (rank
-- 0 = centre), and caption_input(object_id, tag_pos, key, value, kind, size), their visible tags.
-- An object in many images at one GSD is one object_id: its words are made once.

-- name: in_order
-- The texts of a list of structs (..., text), sorted by the fields before text (nulls last).
-- Sorting small lists is much cheaper than DuckDB's ordered aggregates over many small groups.
create or replace temp macro in_order(items) as
    list_transform(list_sort(items, 'asc', 'nulls last'), item -> item.text);

-- name: load_renames
create or replace table caption_renames as
select * from read_csv($renames_csv, header = true,
                       columns = {'key': 'varchar', 'value': 'varchar', 'text': 'varchar'});

-- name: load_styles
create or replace table caption_key_styles as
select * from read_csv($styles_csv, header = true,
                       columns = {'key': 'varchar', 'style': 'varchar', 'primary_rank': 'integer'});

-- name: lang_rank
-- How well a translation's language serves the wanted one: itself 0, its base language 1 (de for
-- de-AT), English 2, else null (not used).
create or replace temp macro lang_rank(lang, wanted) as
    case lang when wanted then 0 when split_part(wanted, '-', 1) then 1 when 'en' then 2 end;

-- name: check_language
select error('caption_language ' || $caption_language || ' is not in the iD tagging schema; '
             || 'it has: ' || (select string_agg(distinct lang, ' ' order by lang)
                               from read_parquet($names_parquet)))
where not exists (select 1 from read_parquet($names_parquet)
                  where lang_rank(lang, $caption_language) < 2);

-- name: load_language
-- The wanted language's row, else its base language's, else '*'.
create or replace table caption_language as
select * exclude (lang), $caption_language::varchar as lang
from (
    select * from read_csv($languages_csv, header = true, all_varchar = true)
    where coalesce(lang_rank(lang, $caption_language), 3) < 2 or lang = '*'
    order by coalesce(lang_rank(lang, $caption_language), 3)
    limit 1
);

-- name: load_presets
create or replace table caption_presets as
with
presets as (
    select * from read_csv($presets_csv, header = true, columns = {
        'preset_id': 'varchar', 'geometry': 'varchar', 'match_score': 'double'})
),
tags as (
    select preset_id, count(*) filter (where required) as n_tags
    from read_csv($preset_tags_csv, header = true)
    group by preset_id
),
names as (
    select preset_id, arg_min(name, lang_rank(lang, $caption_language)) as name
    from read_parquet($names_parquet)
    where lang_rank(lang, $caption_language) is not null
    group by preset_id
)
select p.preset_id, string_split(p.geometry, ' ') as geometry, p.match_score, t.n_tags, n.name
from presets as p
join tags as t using (preset_id)
join names as n using (preset_id);

-- name: load_preset_tags
create or replace table caption_preset_tags as
select *
from read_csv($preset_tags_csv, header = true, columns = {
    'preset_id': 'varchar', 'key': 'varchar', 'value': 'varchar', 'required': 'boolean'})
semi join caption_presets using (preset_id);

-- name: load_fields
create or replace table caption_fields as
with labels as (
    select key, arg_min(label, lang_rank(lang, $caption_language)) as label
    from read_parquet($labels_parquet)
    where lang_rank(lang, $caption_language) is not null
    group by key
)
select f.key, f.type, l.label
from read_csv($fields_csv, header = true, all_varchar = true) as f
join labels as l using (key);

-- name: load_field_options
create or replace table caption_field_options as
select key, value, arg_min(label, lang_rank(lang, $caption_language)) as label
from read_parquet($options_parquet)
where lang_rank(lang, $caption_language) is not null
group by key, value;

-- name: seen_objects
-- The objects with a tag visible at some GSD, the coarsest such GSD and their bounding boxes:
-- only they can be named, so only they enter the spatial join (a quarter fewer candidates on the
-- eleven extracts).
create or replace temp table caption_seen as
with object_gsd as (
    select t.osm_type, t.osm_id, max(v.max_gsd_m) as max_gsd_m
    from osm_tags as t
    join tag_visibility as v using (key, value)
    where v.visible
    group by t.osm_type, t.osm_id
)
select
    o.osm_type, o.osm_id, o.geom, g.max_gsd_m,
    st_xmin(o.geom) as x0, st_ymin(o.geom) as y0, st_xmax(o.geom) as x1, st_ymax(o.geom) as y1
from osm_objects as o
join object_gsd as g using (osm_type, osm_id);

-- name: caption_boxes
-- Objects whose bounding box meets an image's, among those that can be named at its GSD. One
-- R-tree join on boxes does it: the boxes are copied once per GSD the requests use (objects
-- visible at it) and shifted east by 400° times that GSD's rank, the requests by their own GSD's;
-- so boxes of different GSDs never meet. (With any condition beside the spatial one, DuckDB plans
-- an inequality join instead of its R-tree join: minutes.) Boxes, not geometries: copying and
-- testing whole geometries cost more than all the rest of the stage.
create or replace temp table caption_boxes as
with
levels as (
    select gsd_m, 400 * row_number() over (order by gsd_m) as shift
    from (select distinct gsd_m from image_requests)
),
requests as (
    select r.pair_id, r.west, r.south, r.east, r.north,
        st_makeenvelope(r.west + l.shift, r.south, r.east + l.shift, r.north) as box
    from image_requests as r
    join levels as l using (gsd_m)
),
candidates as (
    select o.osm_type, o.osm_id, o.x0, o.y0, o.x1, o.y1,
        st_makeenvelope(o.x0 + l.shift, o.y0, o.x1 + l.shift, o.y1) as shifted
    from caption_seen as o
    join levels as l on o.max_gsd_m >= l.gsd_m
)
select
    r.pair_id,
    o.osm_type,
    o.osm_id,
    o.x0 >= r.west and o.x1 <= r.east and o.y0 >= r.south and o.y1 <= r.north as box_inside
from requests as r
join candidates as o on st_intersects_extent(r.box, o.shifted);

-- name: caption_hits
-- Objects inside each image that may be among its $max_surrounding nearest, with their distance
-- to the image centre. Surely inside: an object whose box lies inside the image's, or one nearer
-- the centre than the image's nearest edge. Only objects no farther than the
-- $max_surrounding-th nearest sure one (the reach) can rank; of those, the unsure need the exact
-- (costly) st_intersects.
create or replace temp table caption_hits as
with
measured as (
    select
        b.pair_id,
        r.gsd_m,
        r.osm_type as centre_type,
        r.osm_id as centre_id,
        b.osm_type,
        b.osm_id,
        st_distance(o.geom, st_point(r.center_lon, r.center_lat)) as dist,
        b.box_inside or dist <= least(r.center_lon - r.west, r.east - r.center_lon,
                                      r.center_lat - r.south, r.north - r.center_lat) as sure
    from caption_boxes as b
    join caption_seen as o using (osm_type, osm_id)
    join image_requests as r using (pair_id)
),
nearest_sure as (
    select
        pair_id,
        min(dist, $max_surrounding)
            filter (where sure and not (osm_type = centre_type and osm_id = centre_id)) as dists
    from measured
    group by pair_id
),
reach as (
    select
        pair_id,
        if(len(dists) = $max_surrounding, list_max(dists), 'infinity'::double) as reach
    from nearest_sure
),
in_reach as (
    select m.*
    from measured as m
    join reach as x on x.pair_id = m.pair_id and m.dist <= x.reach
)
select * exclude (sure) from in_reach where sure
union all
select h.* exclude (sure)
from in_reach as h
join caption_seen as o using (osm_type, osm_id)
join image_requests as r on r.pair_id = h.pair_id
where not h.sure and st_intersects(st_makeenvelope(r.west, r.south, r.east, r.north), o.geom);

-- name: caption_slots
-- Each image's centre (rank 0) and its $max_surrounding nearest objects, each numbered as the
-- object seen at the image's GSD. caption_hits holds only objects within reach of the nearest:
-- a window over them is cheap.
create or replace temp table caption_slots as
with
around as (
    select
        pair_id,
        osm_type,
        osm_id,
        gsd_m,
        dist,
        row_number() over (partition by pair_id order by dist, osm_type, osm_id) as rank
    from caption_hits
    where not (osm_type = centre_type and osm_id = centre_id)  -- all visible at gsd_m
    qualify rank <= $max_surrounding
),
slots as (
    select pair_id, 0 as rank, osm_type, osm_id, gsd_m, 0.0 as dist from image_requests
    union all
    select pair_id, rank, osm_type, osm_id, gsd_m, dist from around
)
select *, dense_rank() over (order by osm_type, osm_id, gsd_m) as object_id
from slots;

-- name: caption_input
create or replace temp table caption_input as
with
visible as (select key, value, max_gsd_m from tag_visibility where visible),
objects as (select distinct object_id, osm_type, osm_id, gsd_m from caption_slots),
tags as (
    select
        x.object_id,
        x.gsd_m,
        o.kind,
        st_area(o.geom) as size,
        unnest(map_keys(o.tags)) as key,
        unnest(map_values(o.tags)) as value,
        generate_subscripts(map_keys(o.tags), 1) as tag_pos
    from objects as x
    join osm_objects as o using (osm_type, osm_id)
)
select t.object_id, t.tag_pos, t.key, t.value, t.kind, t.size
from tags as t
join visible as v using (key, value)
where v.max_gsd_m >= t.gsd_m
order by t.object_id, t.tag_pos;

-- name: tag_phrases
-- The paper's phrase of every visible tag.
create or replace temp table caption_tag_phrases as
select
    i.object_id,
    i.tag_pos,
    i.key,
    i.value,
    s.primary_rank,
    i.size,
    coalesce(kr.text, replace(replace(i.key, '_', ' '), ':', ' ')) as key_text,
    coalesce(vr.text, replace(replace(i.value, '_', ' '), ':', ' ')) as value_text,
    case coalesce(s.style, 'of')
        when 'adjective' then key_text || ' ' || value_text
        when 'is' then key_text || ' is ' || value_text
        else key_text || ' of ' || value_text
    end as phrase
from caption_input as i
left join caption_key_styles as s on s.key = i.key
left join caption_renames as kr on kr.key = i.key and kr.value is null
left join caption_renames as vr on vr.key = i.key and vr.value = i.value;

-- name: captions
create or replace table captions as
with
object_phrases as (
    select object_id, in_order(list({'rank': primary_rank, 'pos': tag_pos, 'text': phrase}))
        as phrases
    from caption_tag_phrases
    group by object_id
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
        s.pair_id,
        array_to_string(any_value(o.phrases) filter (where s.rank = 0), ', ') as title,
        any_value(o.described) filter (where s.rank = 0)
            || coalesce(', surrounded by ' || array_to_string(in_order(
                list({'rank': s.rank, 'text': o.described}) filter (where s.rank > 0)), '; '),
                '') as title_multi_objects
    from caption_slots as s
    join objects as o using (object_id)
    group by s.pair_id
    having count(*) filter (where s.rank = 0) = 1
)
select * from final
order by pair_id;

-- name: object_presets
-- Each object's preset: iD's matching rule over its visible tags.
create or replace temp table caption_object_presets as
with
matches as (
    -- two equality joins, not one join with an OR (which DuckDB runs on the key alone)
    select i.object_id, i.kind, i.value, t.preset_id, t.value as preset_value, t.required
    from caption_input as i
    join caption_preset_tags as t on t.key = i.key and t.value = i.value
    union all
    select i.object_id, i.kind, i.value, t.preset_id, t.value, t.required
    from caption_input as i
    join caption_preset_tags as t on t.key = i.key and t.value = '*'
    where t.required and i.value <> '*'
),
hits as (
    select
        object_id,
        kind,
        preset_id,
        count(*) filter (where required) as n_hit,
        sum(if(preset_value = '*', 0.5, 1.0)) as weight,
        -- a generic preset ("Highway Feature": only '*' values) would hide a specific value
        bool_and(preset_value = '*' and value <> 'yes') filter (where required) as hides_value
    from matches
    group by all
),
best as (
    select
        h.object_id,
        -- the highest score, then the most tags, then the first id
        arg_min({'preset_id': p.preset_id, 'name': p.name},
                {'score': -h.weight * p.match_score, 'n_tags': -p.n_tags, 'id': p.preset_id})
            as preset
    from hits as h
    join caption_presets as p using (preset_id)
    where h.n_hit = p.n_tags and not h.hides_value
        and (list_contains(p.geometry, h.kind)
             or h.kind = 'polygon' and list_contains(p.geometry, 'area')
             or h.kind = 'point' and list_contains(p.geometry, 'vertex'))
    group by h.object_id
)
select object_id, preset.preset_id, preset.name
from best;

-- name: natural_objects
-- Each object as its head (the preset's name, else its first tag's phrase) and the phrases of
-- its other tags: a field phrase where the schema has a field for the key, else the paper's.
create or replace temp table caption_natural_objects as
with
lang as (select * from caption_language),
said as (
    select
        p.object_id,
        p.tag_pos,
        p.primary_rank,
        p.phrase,
        p.size,
        o.name as preset_name,
        exists (select 1 from caption_preset_tags as t
                where t.preset_id = o.preset_id and t.key = p.key
                    and (t.required or t.value = p.value)) as in_preset
    from caption_tag_phrases as p
    left join caption_object_presets as o using (object_id)
),
field_phrases as (
    select
        i.object_id,
        i.tag_pos,
        if(l.lowercase::boolean, lower(f.label), f.label) as field_text,
        coalesce(if(l.lowercase::boolean, lower(v.label), v.label), replace(i.value, '_', ' '))
            as value_text,
        case
            when i.value = 'no' and f.type like '%heck' then ''  -- an absence is not seen
            when i.value = 'yes' and f.type like '%heck' then field_text  -- "lit"
            when i.value = 'yes' then null  -- a type field's label ("Type") says nothing alone
            when contains(lower(value_text), lower(field_text)) then value_text
            else replace(replace(l.attribute, '{label}', field_text), '{value}', value_text)
        end as phrase
    from caption_input as i
    join caption_fields as f using (key)
    left join caption_field_options as v using (key, value)
    cross join lang as l
),
attributes as (
    select
        s.object_id,
        any_value(s.preset_name) as preset_name,
        in_order(list({'rank': s.primary_rank, 'pos': s.tag_pos, 'text': s.phrase}))[1]
            as first_phrase,
        -- with no preset nothing is in one, and the first tag is the head
        in_order(list({'rank': s.primary_rank, 'pos': s.tag_pos,
                       'text': coalesce(f.phrase, s.phrase)}) filter (where not s.in_preset))
            as unsaid,
        any_value(s.size) as size
    from said as s
    left join field_phrases as f using (object_id, tag_pos)
    group by s.object_id
),
parts as (
    select
        object_id,
        coalesce(preset_name, first_phrase) as head,
        list_filter(if(preset_name is null, unsaid[2:], unsaid), text -> text <> '') as rest,
        size
    from attributes
)
select
    p.object_id,
    p.head,
    if(len(p.rest) > 0,
       replace(replace(l.described, '{head}', p.head), '{rest}', array_to_string(p.rest, ', ')),
       p.head) as described,
    p.size
from parts as p
cross join caption_language as l;

-- name: natural_captions
create or replace table captions as
with
around as (
    select s.pair_id, o.head, count(*) as n, min(s.dist) as dist, max(o.size) as size
    from caption_slots as s
    join caption_natural_objects as o using (object_id)
    where s.rank > 0
    group by s.pair_id, o.head
),
names as (
    -- identical names said once, with their count, nearest (then largest) first
    select
        pair_id,
        in_order(list({'dist': dist, 'size': -size, 'head': head,
                       'text': head || if(n > 1, ' ×' || n, '')})) as names
    from around
    group by pair_id
),
centre as (
    select s.pair_id, o.described, replace(replace(l.surrounded, '{centre}', o.described),
                                           '{around}', '') as words
    from caption_slots as s
    join caption_natural_objects as o using (object_id)
    cross join caption_language as l
    where s.rank = 0
),
fitting as (
    -- the names that fit, with the centre, the connecting words and each name's '; ', within
    -- the cap: a prefix, as every name adds characters
    select
        c.pair_id,
        list_filter(n.names, (name, i) -> length(c.words) - 2 + list_sum(
            list_transform(n.names[:i], said -> length(said) + 2)) <= $caption_max_chars)
            as names
    from centre as c
    join names as n using (pair_id)
),
spoken as (
    select
        c.pair_id,
        c.described as title_natural,
        if(len(f.names) > 0,
           replace(replace(l.surrounded, '{centre}', c.described), '{around}',
                   array_to_string(f.names, '; ')),
           c.described) as title_multi_objects_natural
    from centre as c
    cross join caption_language as l
    left join fitting as f using (pair_id)
)
select c.*, n.title_natural, n.title_multi_objects_natural
from captions as c
join spoken as n using (pair_id)
order by pair_id;

-- name: drop_staging
drop table caption_hits;

-- name: drop_boxes
drop table caption_boxes;

-- name: drop_seen
drop table caption_seen;

-- name: summary
select
    (select count(*) from image_requests) as rows_in,
    (select count(*) from captions) as rows_out,
    (select count(distinct title) from captions) as distinct_titles,
    (select count(distinct title_multi_objects) from captions) as distinct_multi,
    (select count(distinct title_multi_objects_natural) from captions) as distinct_multi_natural,
    (select count(*) from caption_slots join caption_object_presets using (object_id)
     where rank = 0) as centres_with_preset;
