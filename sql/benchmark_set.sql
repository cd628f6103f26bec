-- The benchmark set (stage benchmark, sql/55_benchmark.sql) as files: its fetched images with
-- their class, and per class how many objects were drawn, requested and fetched.

-- name: members
-- The benchmark's fetched images with their class, for the folder and CSV writer; $root is
-- the database's folder, which local image paths are relative to.
select
    s.detail as class_tag,
    split_part(s.detail, '=', 1) as key,
    substr(s.detail, length(split_part(s.detail, '=', 1)) + 2) as value,
    key_text(split_part(s.detail, '=', 1)) || ' '
        || key_text(substr(s.detail, length(split_part(s.detail, '=', 1)) + 2)) as class_name,
    r.pair_id,
    s.osm_type,
    s.osm_id,
    r.collection_code,
    r.gsd_m,
    image_location($root, i.path) as image_path
from selected_objects as s
join image_requests as r using (osm_type, osm_id)
join images as i using (pair_id)
where s.reason = 'benchmark' and i.status = 'ok'
order by class_name, r.pair_id;

-- name: class_counts
select
    s.detail as class_tag,
    count(*) as drawn,
    count(r.pair_id) as requested,
    count(i.pair_id) filter (where i.status = 'ok') as images
from selected_objects as s
left join image_requests as r using (osm_type, osm_id)
left join images as i using (pair_id)
where s.reason = 'benchmark'
group by s.detail
order by s.detail;
