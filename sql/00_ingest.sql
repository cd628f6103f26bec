-- Stage ingest: OSM elements -> osm_objects, osm_tags, osm_rejects.
-- Tags and node coordinates come from DuckDB's ST_ReadOSM; way lines and assembled areas come from
-- pyosmium (etl/osm.py) as hex WKB in temp table ingest_geometries. Every tagged element ends up
-- exactly once: in osm_objects with a valid geometry, or in osm_rejects with the reason.
-- Which closed ways are areas follows the rules in table area_rules (seed sql/seeds/area_rules.csv,
-- after the osm-polygon-features list used by iD and osmtogeojson): area=no never, else any tag
-- whose key is 'all', whose value is listed under 'only', or not listed under 'except'.

-- name: read_elements
create or replace temp table ingest_elements as
select
    kind::varchar as osm_type,
    id as osm_id,
    tags,
    lat,
    lon,
    kind = 'way' and len(refs) >= 4 and refs[1] = refs[-1] as is_closed
from ST_ReadOSM($path)
where cardinality(tags) > 0 and kind in ('node', 'way', 'relation');

-- name: load_area_rules
create or replace temp table ingest_area_rules as
select key, rule, coalesce(string_split(values, ';'), []) as values
from read_csv($path, header = true, columns = {'key': 'varchar', 'rule': 'varchar', 'values': 'varchar'});

-- name: points
-- Points need no pyosmium: they are written while pyosmium builds the other geometries.
create or replace table osm_objects as
select osm_type, osm_id, 'point' as kind, tags, st_point(lon, lat) as geom
from ingest_elements
where osm_type = 'node'
order by osm_id;

-- name: point_tags
create or replace table osm_tags as
select osm_type, osm_id, unnest(map_keys(tags)) as key, unnest(map_values(tags)) as value
from osm_objects;  -- in osm_objects' order

-- name: element_counts
-- Ways and relations (what pyosmium will send, roughly: the progress bar's total), all elements.
select count(*) filter (where osm_type <> 'node'), count(*) from ingest_elements;

-- name: create_geometries
create or replace temp table ingest_geometries (
    osm_type varchar, osm_id bigint, source varchar, geom geometry, valid boolean, error varchar
);

-- name: load_geometries
-- Parsing and validity checks run here, on DuckDB's threads, while pyosmium builds the next batch.
insert into ingest_geometries
with parsed as (
    select
        if(source = 'line' or id % 2 = 0, 'way', 'relation') as osm_type,
        if(source = 'line', id, id // 2) as osm_id,
        source,
        st_geomfromhexwkb(wkb_hex) as geom,
        error
    from geometry_stream
)
select
    osm_type,
    osm_id,
    source,
    -- A polygon of one part is stored as POLYGON, several as MULTIPOLYGON.
    if(source = 'area' and st_numgeometries(geom) = 1, st_dump(geom)[1].geom, geom) as geom,
    st_isvalid(geom) as valid,
    error
from parsed;

-- name: classify
create or replace temp table ingest_classified as
with
elements as (select * from ingest_elements),
geometries as (select * from ingest_geometries),
rules as (select * from ingest_area_rules),
closed_way_tags as (
    select osm_id, unnest(map_keys(tags)) as key, unnest(map_values(tags)) as value
    from elements
    where osm_type = 'way' and is_closed and tags['area'] is distinct from 'no'
),
area_ways as (
    select distinct 'way' as osm_type, t.osm_id
    from closed_way_tags as t
    join rules as r on r.key = t.key
    where r.rule = 'all'
        or (r.rule = 'only' and list_contains(r.values, t.value))
        or (r.rule = 'except' and not list_contains(r.values, t.value))
),
kinds as (
    select
        e.*,
        case
            when e.osm_type = 'way' and a.osm_id is not null then 'polygon'
            when e.osm_type = 'way' then 'line'
            when e.tags['type'] in ('multipolygon', 'boundary') then 'polygon'
        end as kind
    from elements as e
    left join area_ways as a on a.osm_type = e.osm_type and a.osm_id = e.osm_id
    where e.osm_type <> 'node'
),
errors as (
    select osm_type, osm_id, min(error) as error
    from geometries
    where error is not null
    group by all
),
built as (
    select
        k.osm_type,
        k.osm_id,
        k.kind,
        k.tags,
        g.geom,
        g.valid,
        err.error
    from kinds as k
    left join geometries as g
        on g.osm_type = k.osm_type and g.osm_id = k.osm_id and g.error is null
        and g.source = if(k.kind = 'line', 'line', 'area')
    left join errors as err on err.osm_type = k.osm_type and err.osm_id = k.osm_id
),
final as (
    select
        osm_type,
        osm_id,
        kind,
        tags,
        geom,
        case
            when kind is null
                then 'relation type=' || coalesce(tags['type'], '(none)') || ' has no area geometry'
            when geom is null and error is not null then 'no geometry: ' || error
            when geom is null and kind = 'polygon' then 'area assembly failed: broken or incomplete rings'
            when geom is null then 'no geometry'
            when not valid then 'invalid geometry (' || kind || ')'
        end as reason
    from built
)
select * from final;

-- name: objects
insert into osm_objects
select osm_type, osm_id, kind, tags, geom
from ingest_classified
where reason is null
order by osm_type, osm_id;

-- name: tags
insert into osm_tags
select osm_type, osm_id, unnest(map_keys(tags)) as key, unnest(map_values(tags)) as value
from osm_objects
where osm_type <> 'node';

-- name: rejects
create or replace table osm_rejects as
select osm_type, osm_id, reason, tags
from ingest_classified
where reason is not null
order by osm_type, osm_id;

-- name: area_rules
create or replace table area_rules as select * from ingest_area_rules;

-- name: counts
select
    (select count(*) from ingest_elements where osm_type = 'node') as tagged_nodes,
    (select count(*) from ingest_elements where osm_type = 'way') as tagged_ways,
    (select count(*) from ingest_elements where osm_type = 'relation') as tagged_relations,
    (select count(*) from osm_objects where kind = 'point') as points,
    (select count(*) from osm_objects where kind = 'line') as lines,
    (select count(*) from osm_objects where kind = 'polygon') as polygons,
    (select count(*) from osm_rejects) as rejects;

-- name: drop_staging
drop table if exists ingest_elements;
drop table if exists ingest_geometries;
drop table if exists ingest_area_rules;
drop table if exists ingest_classified;
