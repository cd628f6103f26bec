-- Stage tag_stats: how often each tag occurs, by geometry kind and by 0.01° grid cell, and where
-- its objects stand among the others (the tag classifier's facts):
--   n_in_building: objects inside another object tagged building (a point, or a point on the
--     surface of a line or polygon, within that building's polygon): shops and offices are;
--   n_with_building, n_with_highway: objects that also carry building (not 'no'), or highway
--     (a tag of those keys does not count its own key): what a building is used for, what a road
--     is made of.
-- object_cells lists every grid cell an object's geometry intersects (used by grid selection too).

-- name: object_cells
create or replace table object_cells as
with
objects as (select osm_type, osm_id, kind, geom from osm_objects),
bounds as (
    select
        *,
        floor(st_xmin(geom) / 0.01)::bigint as x0,
        floor(st_xmax(geom) / 0.01)::bigint as x1,
        floor(st_ymin(geom) / 0.01)::bigint as y0,
        floor(st_ymax(geom) / 0.01)::bigint as y1
    from objects
),
candidate_cells as (
    select b.osm_type, b.osm_id, b.kind, b.geom, x, y, b.x0 = b.x1 and b.y0 = b.y1 as single
    from bounds as b, range(b.x0, b.x1 + 1) as xs(x), range(b.y0, b.y1 + 1) as ys(y)
),
final as (
    select osm_type, osm_id, cell_id(wrap_x(x), clamp_y(y)) as cell_id
    from candidate_cells
    where single
        or st_intersects(geom, st_makeenvelope(x * 0.01, y * 0.01, (x + 1) * 0.01, (y + 1) * 0.01))
)
select distinct * from final
order by cell_id, osm_type, osm_id;

-- name: in_building
-- A statement of its own: DuckDB plans its spatial (R-tree) join only for a plain join.
create or replace temp table objects_in_building as
with
buildings as (
    select osm_type, osm_id, geom from osm_objects
    where kind = 'polygon' and coalesce(tags['building'], 'no') <> 'no'
),
probes as (
    select osm_type, osm_id, if(kind = 'point', geom, st_pointonsurface(geom)) as probe
    from osm_objects
)
select distinct p.osm_type, p.osm_id
from probes as p
join buildings as b on st_within(p.probe, b.geom)
where not (p.osm_type = b.osm_type and p.osm_id = b.osm_id);

-- name: tag_stats
create or replace table tag_stats as
with
tags as (
    select
        t.key,
        t.value,
        o.kind,
        t.osm_type,
        t.osm_id,
        i.osm_id is not null as in_building,
        t.key <> 'building' and coalesce(o.tags['building'], 'no') <> 'no' as with_building,
        t.key <> 'highway' and o.tags['highway'] is not null as with_highway
    from osm_tags as t
    join osm_objects as o using (osm_type, osm_id)
    left join objects_in_building as i using (osm_type, osm_id)
),
counts as (
    select
        key,
        value,
        count(*) as n_objects,
        count(*) filter (where kind = 'point') as n_points,
        count(*) filter (where kind = 'line') as n_lines,
        count(*) filter (where kind = 'polygon') as n_polygons,
        count(*) filter (where in_building) as n_in_building,
        count(*) filter (where with_building) as n_with_building,
        count(*) filter (where with_highway) as n_with_highway
    from tags
    group by key, value
),
cells as (
    select t.key, t.value, count(distinct c.cell_id) as n_cells
    from osm_tags as t
    join object_cells as c using (osm_type, osm_id)
    group by t.key, t.value
)
select counts.*, coalesce(cells.n_cells, 0) as n_cells
from counts
left join cells using (key, value)
order by n_objects desc, key, value;

-- name: summary
select
    (select count(*) from osm_objects) as rows_in,
    (select count(*) from tag_stats) as rows_out,
    (select count(distinct key) from tag_stats) as keys,
    (select count(distinct cell_id) from object_cells) as cells;
