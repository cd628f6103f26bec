-- Stage benchmark: a SkyScript-classification-style held-out set (method section 6). Classes are
-- visible tags of the OSM primary-feature keys with at least $benchmark_per_class objects that no
-- earlier stage selected and that a collection covers at a GSD fine enough to see the tag; the
-- $benchmark_classes most frequent become classes, and $benchmark_per_class objects each are
-- drawn at random (seeded). An object carrying two class
-- tags is ambiguous and left out. The drawn objects join selected_objects (reason 'benchmark',
-- detail 'key=value'), so the normal stages make their image requests and captions and fetch
-- their images; export leaves them out of every split. $benchmark_classes = 0: no benchmark.

-- name: reset
delete from selected_objects where reason = 'benchmark';

-- name: add_benchmark
insert into selected_objects
with
primary_keys as (
    -- The OSM wiki's primary features: tags that say what an object is.
    select unnest([
        'aerialway', 'aeroway', 'amenity', 'barrier', 'building', 'craft', 'emergency',
        'geological', 'healthcare', 'highway', 'historic', 'landuse', 'leisure', 'man_made',
        'military', 'natural', 'office', 'power', 'public_transport', 'railway', 'shop',
        'sport', 'telecom', 'tourism', 'water', 'waterway'
    ]) as key
),
tagged as (
    select t.osm_type, t.osm_id, t.key, t.value, v.max_gsd_m
    from osm_tags as t
    semi join primary_keys as k using (key)
    join (select key, value, max_gsd_m from tag_visibility where visible) as v using (key, value)
    anti join (select * from selected_objects where reason <> 'benchmark') as s
        using (osm_type, osm_id)
),
anchors as (
    select o.osm_type, o.osm_id, st_pointonsurface(o.geom) as anchor
    from osm_objects as o
    semi join tagged using (osm_type, osm_id)
),
finest as (
    -- The finest GSD among the collections covering each object.
    select a.osm_type, a.osm_id, min(c.gsd_m) as gsd_m
    from anchors as a
    join image_collections as c on st_covers(c.footprint, a.anchor)
    group by a.osm_type, a.osm_id
),
eligible as (
    select t.*
    from tagged as t
    join finest as f using (osm_type, osm_id)
    where f.gsd_m <= t.max_gsd_m
),
classes as (
    select key, value
    from eligible
    group by key, value
    having count(*) >= $benchmark_per_class
    order by count(*) desc, key, value
    limit $benchmark_classes
),
members as (
    select e.osm_type, e.osm_id, any_value(e.key || '=' || e.value) as tag
    from eligible as e
    semi join classes using (key, value)
    group by e.osm_type, e.osm_id
    having count(*) = 1
)
select osm_type, osm_id, 'benchmark' as reason, tag as detail
from members
qualify row_number() over (
    partition by tag order by uniform($seed, osm_type, osm_id), osm_type, osm_id
) <= $benchmark_per_class
order by osm_type, osm_id;

-- name: summary
select
    count(*) filter (where reason <> 'benchmark') as rows_in,
    count(*) filter (where reason = 'benchmark') as rows_out,
    count(distinct detail) filter (where reason = 'benchmark') as classes
from selected_objects;
