-- Stage ingest: OSM elements of one or more extracts -> osm_objects, osm_tags, osm_rejects.
-- Tags, node coordinates and way node lists come from DuckDB's ST_ReadOSM; way lines and
-- closed-way polygons are built here from the coordinates of their nodes (as libosmium does:
-- repeated consecutive points dropped). Multipolygon relations are assembled by libosmium
-- (etl/osm.py) from a small OPL file of the relations, their member ways and those ways' nodes,
-- written here, and arrive as hex WKB. Every tagged element ends up exactly once: in
-- osm_objects with a valid geometry, or in osm_rejects with the reason.
-- Which closed ways are areas follows the rules in table area_rules (seed sql/seeds/area_rules.csv,
-- after the osm-polygon-features list used by iD and osmtogeojson): area=no never, else any tag
-- whose key is 'all', whose value is listed under 'only', or not listed under 'except'.
-- What is kept (QuackOSM's rules): with a clip area ($clip, WKT; null: everything), the elements
-- whose geometry intersects it, whole; with a tag filter (ingest_tag_rules), those with a tag
-- matching a positive rule (when there is one) and none matching a negative one. Files are read
-- one after the other ($file numbers them); an element in several keeps its newest version.
-- Coordinates are rounded to OSM's 7 decimals (ST_ReadOSM's doubles carry conversion noise).

-- name: create_elements
create or replace temp table ingest_elements (
    file integer,
    osm_type varchar,
    osm_id bigint,
    tags map(varchar, varchar),
    lat double,
    lon double,
    refs bigint[],  -- a way's nodes; a relation's member ways
    is_closed boolean
);

-- name: read_elements
-- One file's tagged elements, and its untagged ways (a multipolygon's members, set aside by
-- member_ways), a relation with its way members only; nodes outside the clip are dropped as they
-- are read (the bounding box first: cheap, and most nodes of a large file fail it).
insert into ingest_elements
select
    $file,
    kind::varchar as osm_type,
    id as osm_id,
    tags,
    round(lat, 7),
    round(lon, 7),
    case kind
        when 'way' then refs
        when 'relation' then list_filter(refs, (r, i) -> ref_types[i] = 'way')
    end,
    kind = 'way' and len(refs) >= 4 and refs[1] = refs[-1] as is_closed
from ST_ReadOSM($path)
where (cardinality(tags) > 0 or kind = 'way')
    and kind in ('node', 'way', 'relation')
    and (kind <> 'node' or $clip::varchar is null
        or (lon between $west and $east and lat between $south and $north
            and st_intersects(st_point(lon, lat), st_geomfromtext($clip))));

-- name: read_nodes
-- Every node's coordinates, tagged or not: what way geometries are built from. A second pass
-- over the file: one pass into a table of every element saves little (0.2 s of 9.5 on eight
-- copies of the eleven extracts) and needs about twice the memory, or disk past the memory
-- limit, of these two tables. Coordinates are kept as the file has them, integers in 10^-7
-- degrees (x / 1e7 is exactly round(lon, 7)): half the bytes to write, join and sort.
create or replace temp table ingest_nodes as
select id, round(lon * 1e7)::integer as x, round(lat * 1e7)::integer as y
from ST_ReadOSM($path)
where kind = 'node';

-- name: member_ways
-- The member ways of one file's multipolygons, tagged or not, set aside for their assembly;
-- then the untagged ways go.
create or replace temp table ingest_member_ways as
select osm_id as id, refs
from ingest_elements
where file = $file and osm_type = 'way' and osm_id in (
    select unnest(refs) from ingest_elements
    where file = $file and osm_type = 'relation' and tags['type'] in ('multipolygon', 'boundary')
);

-- name: untagged_ways
delete from ingest_elements
where file = $file and osm_type = 'way' and coalesce(cardinality(tags), 0) = 0;

-- name: file_counts
select count(*) as elements from ingest_elements where file = $file;

-- name: any_order
-- While files are read into the staging tables, which are only ever read back by key, DuckDB may
-- write rows in any order: its threads then need not keep their chunks in sequence (about 1 s of
-- 13 on eight copies of the eleven extracts). Tables users see are written after `in_order`.
set preserve_insertion_order = false;

-- name: in_order
reset preserve_insertion_order;

-- name: create_tag_rules
create or replace temp table ingest_tag_rules (key_like varchar, value_like varchar, keep boolean);

-- name: insert_tag_rule
insert into ingest_tag_rules values ($key_like, $value_like, $keep);

-- name: tag_filter
-- One file's elements the tag filter drops, before their geometries are loaded.
delete from ingest_elements as e
using (
    with
    tags as (
        select osm_type, osm_id, unnest(map_keys(tags)) as key, unnest(map_values(tags)) as value
        from ingest_elements
        where file = $file
    ),
    hits as (
        select t.osm_type, t.osm_id, bool_or(r.keep) as positive, bool_or(not r.keep) as negative
        from tags as t
        join ingest_tag_rules as r
            on t.key like r.key_like escape '\'
            and (r.value_like is null or t.value like r.value_like escape '\')
        group by all
    ),
    verdicts as (
        select
            e.osm_type,
            e.osm_id,
            not coalesce(h.negative, false)
                and (coalesce(h.positive, false)
                    or not exists (select 1 from ingest_tag_rules where keep)) as kept
        from ingest_elements as e
        left join hits as h using (osm_type, osm_id)
        where e.file = $file
    )
    select osm_type, osm_id from verdicts where not kept
) as dropped
where e.file = $file and e.osm_type = dropped.osm_type and e.osm_id = dropped.osm_id;

-- name: load_area_rules
create or replace temp table ingest_area_rules as
select key, rule, coalesce(string_split(values, ';'), []) as values
from read_csv($path, header = true, columns = {'key': 'varchar', 'rule': 'varchar', 'values': 'varchar'});

-- name: create_geometries
-- At most one row per element: its geometry as its kind wants it (a polygon, or a line), or
-- the error that left it without one.
create or replace temp table ingest_geometries (
    file integer, osm_type varchar, osm_id bigint, kind varchar, geom geometry, valid boolean,
    error varchar
);

-- name: clip_node_blocks
-- With a clip: the bounding box of each block of 256 consecutive node ids. Nodes numbered
-- together were mostly mapped together, so a block's box is small.
create or replace temp table ingest_node_blocks as
select id >> 8 as block, min(x) as west, max(x) as east, min(y) as south, max(y) as north
from ingest_nodes
group by block;

-- name: clip_way_boxes
-- With a clip: a box holding each of one file's ways, tagged or a multipolygon's member: the
-- union of the boxes of its nodes' blocks. It may be larger than the way's own box, never
-- smaller (the exact test comes later), and costs less: a way's nodes fall in few blocks, and
-- the blocks' table is small beside the nodes' (0.4 s with clip_node_blocks instead of 0.6 on
-- eight copies of the eleven extracts). One join for both kinds of way.
create or replace temp table ingest_way_boxes as
with
ways as (
    select osm_id as id, refs from ingest_elements where file = $file and osm_type = 'way'
    union all
    select id, refs from ingest_member_ways
    where id not in (select osm_id from ingest_elements where file = $file and osm_type = 'way')
),
way_blocks as (
    select id, unnest(list_distinct(list_transform(refs, r -> r >> 8))) as block from ways
)
select w.id, min(b.west) / 1e7 as west, max(b.east) / 1e7 as east, min(b.south) / 1e7 as south,
    max(b.north) / 1e7 as north
from way_blocks as w
join ingest_node_blocks as b using (block)
group by w.id;

-- name: clip_ways
-- With a clip: one file's ways whose box misses the clip's go before their geometries are
-- built. Returns how many.
delete from ingest_elements as e
where e.file = $file and e.osm_type = 'way'
    and e.osm_id not in (
        -- the few ways near the clip: cheaper to name than the many far from it
        select id from ingest_way_boxes
        where east >= $west and west <= $east and north >= $south and south <= $north
    );

-- name: area_relations
-- One file's multipolygons to assemble: those the tag filter kept.
create or replace temp table ingest_area_relations as
select osm_id, tags['type'] as type, refs
from ingest_elements
where file = $file and osm_type = 'relation' and tags['type'] in ('multipolygon', 'boundary');

-- name: clip_relations
-- With a clip: only the multipolygons whose member ways' bounding box (it holds their area)
-- meets the clip's.
delete from ingest_area_relations
where osm_id not in (
    select r.osm_id
    from (select osm_id, unnest(refs) as way from ingest_area_relations) as r
    join ingest_way_boxes as b on b.id = r.way
    group by r.osm_id
    having max(b.east) >= $west and min(b.west) <= $east
        and max(b.north) >= $south and min(b.south) <= $north
);

-- name: area_file
-- Those multipolygons as an OPL file ($path) for libosmium: their member ways' nodes, the ways,
-- then the relations, each in id order as OSM files keep them. Only what the assembly reads:
-- coordinates, node lists, the type tag and the way members (roles do not shape the rings).
copy (
    with
    ways as (
        select id, refs from ingest_member_ways
        where id in (select unnest(refs) from ingest_area_relations)
    ),
    lines as (
        select 0 as part, id,
            -- decimals print their seven digits faster than printf does
            'n' || id || ' x' || (x / 1e7)::decimal(18, 7) || ' y' || (y / 1e7)::decimal(18, 7)
                as line
        from ingest_nodes
        where id in (select unnest(refs) from ways)
        union all
        select 1, id, 'w' || id || ' N' || array_to_string(list_transform(refs, r -> 'n' || r), ',')
        from ways
        union all
        select 2, osm_id, 'r' || osm_id || ' Ttype=' || type || ' M'
            || array_to_string(list_transform(refs, r -> 'w' || r || '@'), ',')
        from ingest_area_relations
    )
    select line from lines order by part, id
) to $path (format csv, header false, quote '', escape '', delimiter '\t');

-- name: area_ways
-- One file's closed ways that are areas by the tag rules: they get a polygon, other ways a line.
create or replace temp table ingest_area_ways as
with closed_way_tags as (
    select osm_id, unnest(map_keys(tags)) as key, unnest(map_values(tags)) as value
    from ingest_elements
    where file = $file and osm_type = 'way' and is_closed and tags['area'] is distinct from 'no'
)
select distinct t.osm_id
from closed_way_tags as t
join ingest_area_rules as r on r.key = t.key
where r.rule = 'all'
    or (r.rule = 'only' and list_contains(r.values, t.value))
    or (r.rule = 'except' and not list_contains(r.values, t.value));

-- name: way_parts
-- Ways are built in as many parts as DuckDB's memory limit asks for: a part's aggregation holds
-- about 200 bytes per node reference and gets half the limit (one part unless a limit is set
-- well below the machine's memory; each further part costs a scan of the nodes).
with
setting as (select current_setting('memory_limit') as text),
memory as (
    select
        cast(regexp_extract(text, '^[0-9.]+') as double)
        * case regexp_extract(text, '[KMGT]i?B$')
            when 'KiB' then 2 ^ 10 when 'MiB' then 2 ^ 20 when 'GiB' then 2 ^ 30
            when 'TiB' then 2 ^ 40 else 1
        end as bytes
    from setting
),
refs as (
    select coalesce(sum(len(refs)), 0) as n
    from ingest_elements
    where file = $file and osm_type = 'way'
)
select greatest(1, ceil(refs.n * 200 / (memory.bytes / 2)))::integer as parts
from refs, memory;

-- name: way_nodes
-- One part ($part of $parts, by hash of the id) of one file's kept ways, a row per node
-- reference. A table of its own: DuckDB cannot tell how many rows unnest makes, and in one
-- statement with way_lines it builds its join's hash table on these references instead of on
-- the fewer nodes (0.3 s more on eight copies of the eleven extracts). (`$parts = 1` is tested
-- first: DuckDB cannot fold a bound parameter, and hashing every id costs about 0.3 s on
-- 600 K ways.)
create or replace temp table ingest_way_nodes as
select osm_id, unnest(refs) as ref, generate_subscripts(refs, 1) as pos
from ingest_elements
where file = $file and osm_type = 'way' and ($parts = 1 or hash(osm_id) % $parts = $part);

-- name: way_lines
-- Those ways' lines through their nodes' coordinates (a node missing from the file, as in a
-- clipped extract, leaves the way without one). With a clip, clip_ways has already dropped the
-- ways far from it (the exact test waits until each element's geometry is chosen: a closed
-- way's ring may miss the clip where its area covers it). A table of its own, read by
-- way_geometries: in one statement DuckDB pushes the tests on a line into the steps before it
-- and builds every line three times.
create or replace temp table ingest_way_lines as
with located as (
    select
        w.osm_id,
        count(*) - count(n.id) as missing,
        list_sort(list({'pos': w.pos, 'x': n.x, 'y': n.y})) as nodes
    from ingest_way_nodes as w
    left join ingest_nodes as n on n.id = w.ref
    group by w.osm_id
)
select
    osm_id,
    missing,
    -- libosmium's rule: a point equal to the one before it is dropped
    if(missing = 0 and len(nodes) >= 2,
       st_removerepeatedpoints(st_makeline(
           list_transform(nodes, p -> st_point(p.x / 1e7, p.y / 1e7)))),
       null) as geom
from located;

-- name: way_geometries
-- Those ways' geometries: a polygon for an area way (null if its ring has fewer than four
-- points), a line for the others; a way with no line, the reason.
insert into ingest_geometries
with
lines as (
    select *, st_npoints(geom) as n, osm_id in (select osm_id from ingest_area_ways) as is_area
    from ingest_way_lines
),
areas as (
    select osm_id, if(n >= 4, st_makepolygon(geom), null) as geom
    from lines
    where is_area and n >= 2
)
select $file, 'way', osm_id, 'line', geom, true, null from lines where not is_area and n >= 2
union all
select $file, 'way', osm_id, 'polygon', geom, st_isvalid(geom), null from areas
union all
select $file, 'way', osm_id, if(is_area, 'polygon', 'line'), null, null,
    if(missing > 0, 'invalid location', 'need at least two points for linestring')
from lines
where missing > 0 or coalesce(n, 0) < 2;

-- name: drop_way_inputs
drop table if exists ingest_nodes;
drop table if exists ingest_way_nodes;
drop table if exists ingest_way_lines;
drop table if exists ingest_member_ways;
drop table if exists ingest_area_relations;
drop table if exists ingest_way_boxes;
drop table if exists ingest_node_blocks;
drop table if exists ingest_area_ways;

-- name: load_geometries
-- One file's relation areas from libosmium. Parsing and validity checks run here, on DuckDB's
-- threads.
insert into ingest_geometries
with parsed as (
    select osm_id, st_geomfromhexwkb(wkb_hex) as geom, error from relation_areas
)
select
    $file,
    'relation',
    osm_id,
    'polygon',
    -- A polygon of one part is stored as POLYGON, several as MULTIPOLYGON.
    if(st_numgeometries(geom) = 1, st_dump(geom)[1].geom, geom) as geom,
    st_isvalid(geom) as valid,
    error
from parsed;

-- name: clip_unplaced
-- With a clip: ways and relations with no geometry near it go (nodes went as they were read).
delete from ingest_elements as e
where $clip::varchar is not null
    and e.osm_type <> 'node'
    and not exists (
        select 1 from ingest_geometries as g
        where g.file = e.file and g.osm_type = e.osm_type and g.osm_id = e.osm_id
    );

-- name: duplicates
-- Elements read from more than one file.
select osm_type, osm_id
from ingest_elements
group by osm_type, osm_id
having count(*) > 1;

-- name: create_versions
create or replace temp table ingest_versions (
    file integer, osm_type varchar, osm_id bigint, version bigint
);

-- name: insert_versions
insert into ingest_versions select $file, osm_type, osm_id, version from file_versions;

-- name: drop_older
-- An element in several files keeps its newest version (the later file on a tie); its other
-- copies and their geometries go.
create or replace temp table ingest_older as
select file, osm_type, osm_id
from ingest_elements
left join ingest_versions using (file, osm_type, osm_id)
qualify row_number() over (
    partition by osm_type, osm_id order by version desc nulls last, file desc
) > 1;

-- name: delete_older_elements
delete from ingest_elements as e
using ingest_older as o
where e.file = o.file and e.osm_type = o.osm_type and e.osm_id = o.osm_id;

-- name: delete_older_geometries
delete from ingest_geometries as g
using ingest_older as o
where g.file = o.file and g.osm_type = o.osm_type and g.osm_id = o.osm_id;

-- name: classify
-- Every element with its kind and geometry (a node: the point where it is), or why it has none.
create or replace temp table ingest_classified as
with
built as (
    select
        e.osm_type,
        e.osm_id,
        case
            when e.osm_type = 'way' then coalesce(g.kind, 'line')  -- a way with no node: a line
            when e.tags['type'] in ('multipolygon', 'boundary') then 'polygon'
        end as kind,
        e.tags,
        g.geom,
        g.valid,
        g.error
    from ingest_elements as e
    left join ingest_geometries as g on g.osm_type = e.osm_type and g.osm_id = e.osm_id
    where e.osm_type <> 'node'
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
select * from final
union all
select osm_type, osm_id, 'point', tags, st_point(lon, lat), null
from ingest_elements
where osm_type = 'node';

-- name: clip_objects
-- With a clip: what does not intersect it goes, rejects without a geometry included (they
-- cannot be placed). Returns how many.
delete from ingest_classified
where $clip::varchar is not null
    and (geom is null or not st_intersects(geom, st_geomfromtext($clip)));

-- name: save_read
-- What reading counted (elements, tag-filtered, clipped, duplicates; seconds), as JSON, for the
-- part of the stage that writes (etl/ingest.py: reading runs before the stage's transaction).
create or replace temp table ingest_read as select $read::varchar as read;

-- name: read
select read from ingest_read;

-- name: objects
create or replace table osm_objects as
select osm_type, osm_id, kind, tags, geom
from ingest_classified
where reason is null
order by osm_type, osm_id;

-- name: drop_tags_table
-- osm_tags was a table in databases built before it became a view.
drop table osm_tags;

-- name: tags
-- One row per tag: a view over osm_objects' tags, which are stored once. A table would cost the
-- ingest as much again as writing osm_objects (0.9 s on eight copies of the eleven extracts) and
-- twice the space; a scan of the view costs about 0.06 s more per million objects.
create or replace view osm_tags as
select osm_type, osm_id, unnest(map_keys(tags)) as key, unnest(map_values(tags)) as value
from osm_objects;

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
-- The staging tables left after every file (drop_way_inputs dropped each file's way inputs).
drop table if exists ingest_elements;
drop table if exists ingest_geometries;
drop table if exists ingest_area_rules;
drop table if exists ingest_classified;
drop table if exists ingest_tag_rules;
drop table if exists ingest_versions;
drop table if exists ingest_older;
drop table if exists ingest_read;

-- name: clip_area
-- A clip area given as WKT ($wkt) or as GeoJSON geometries ($geojson, their union), with what
-- ingest checks and binds (etl/selection.py).
with area as (
    select if(
        $wkt::varchar is null,
        (select st_union_agg(st_geomfromgeojson(g)) from unnest($geojson::varchar[]) as t(g)),
        st_geomfromtext($wkt)
    ) as geom
)
select
    st_astext(geom) as wkt,
    st_geometrytype(geom)::varchar as kind,
    st_isvalid(geom) as valid,
    st_xmin(geom) as west,
    st_ymin(geom) as south,
    st_xmax(geom) as east,
    st_ymax(geom) as north
from area;
