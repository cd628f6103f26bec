-- Stage fetch_images: image requests -> image files, one `images` row per request.
-- A request is fetched when it has no row yet, when its last try failed, when its bounds,
-- size or collection changed since (request_key), or when its file is no longer on disk. Outcomes are recorded batch by batch, so an
-- interrupted run keeps what it recorded and the next run resumes.

-- name: create_images
create table if not exists images (
    pair_id bigint primary key,
    path varchar,  -- relative to the database's folder
    status varchar not null,  -- 'ok' | 'failed' | 'no_coverage' | 'partial_coverage'
    error varchar,
    source varchar,  -- 'gee' | 'stac' | 'local' | 'render' (synthetic)
    acquired varchar,  -- ISO date of the imagery, when known
    width_px integer,
    height_px integer,
    bytes bigint,
    fetched_at timestamp,
    request_key varchar not null,
    collection varchar,  -- where the pixels came from: the request's collection or a fallback
    coverage double  -- share of the crop with imagery, when the source knows it
);

-- name: images_collection
-- (added to databases fetched by older versions)
alter table images add column if not exists collection varchar;
alter table images add column if not exists coverage double;

-- name: listing
-- The image files on disk (path relative to the database's folder, size), listed by the stage.
create or replace temp table image_files as select path, bytes from image_listing;

-- name: state
-- What the stage's fingerprint sees of its outputs: every recorded outcome and, for `ok` ones,
-- the size of the file on disk (null when it is gone).
select count(*) as n, bit_xor(hash(i.pair_id, i.status, i.fetched_at, i.request_key, f.bytes))
    as digest
from images as i
left join image_files as f on f.path = i.path;

-- name: pending
create or replace temp table fetch_pending as
with
requests as (
    select
        r.*,
        md5(concat_ws(',', r.collection_code, r.x_min, r.y_min, r.x_max, r.y_max, r.width_px,
                      r.height_px, r.utm_epsg)) as request_key
    from image_requests as r
)
select r.*, c.kind as source_kind, c.name as collection_name
from requests as r
join image_collections as c on c.code = r.collection_code
left join images as i using (pair_id)
left join image_files as f on f.path = i.path
where i.pair_id is null or i.status = 'failed' or i.request_key <> r.request_key
    or (i.status = 'ok' and f.path is null)
    -- a changed --max-nodata: the crops it now judges otherwise
    or (i.status in ('ok', 'partial_coverage')
        and (i.status = 'partial_coverage') <> (i.coverage < 1 - $max_nodata))
order by r.pair_id;

-- name: pending_codes
select distinct collection_code from fetch_pending order by 1;

-- name: skip_codes
-- The requests of sources that cannot work now stay as they are (no outcome) for a later run.
delete from fetch_pending where list_contains($codes, collection_code);

-- name: pending_count
select count(*) as n from fetch_pending;

-- name: pending_kinds
select distinct source_kind from fetch_pending;

-- name: next_batch
select * from fetch_pending where pair_id > $after order by pair_id limit $size;

-- name: sources
-- What each collection needs to build its source.
select
    c.code,
    c.kind,
    l.path,
    coalesce(l.rgb_bands, s.rgb_bands) as rgb_bands,
    s.url,
    s.collection,
    s.assets,
    s.datetime,
    s.max_cloud,
    s.sortby,
    s.modifier,
    s.options,
    s.stretch
from image_collections as c
left join local_imagery as l on l.code = c.code
left join stac_collections as s on s.code = c.code;

-- name: render_objects
-- One style per OSM object for the synthetic render source (seed render_styles.csv): an exact
-- key=value style beats a key=* one, then the higher layer wins.
create or replace temp table render_objects as
with
styles as (
    select * from read_csv($styles_csv, header = true, columns = {
        'key': 'varchar', 'value': 'varchar', 'layer': 'integer', 'colour': 'varchar',
        'width_m': 'double'
    })
),
matches as (
    select t.osm_type, t.osm_id, s.layer, s.colour, s.width_m, s.value <> '*' as exact
    from osm_tags as t
    join styles as s on s.key = t.key and (s.value = t.value or s.value = '*')
)
select o.osm_type, o.osm_id, o.geom, m.layer, m.colour, m.width_m
from osm_objects as o
join matches as m using (osm_type, osm_id)
qualify row_number() over (
    partition by o.osm_type, o.osm_id order by m.exact desc, m.layer desc, m.colour
) = 1;

-- name: render_hits
-- Objects inside each image of the batch (a statement of its own, for the R-tree join).
create or replace temp table render_hits as
with batch as (
    select pair_id, west, south, east, north from fetch_pending
    where pair_id > $after and pair_id <= $until and source_kind = 'render'
)
select b.pair_id, o.osm_type, o.osm_id
from batch as b
join render_objects as o on st_intersects(st_makeenvelope(b.west, b.south, b.east, b.north), o.geom);

-- name: render_clipped
-- The hits in the projected coordinates of their image, clipped to it. Each object is projected
-- to a UTM zone once per batch, not once per image it shows in. A table of its own: were
-- render_features' test on the clipped geometry in this statement, DuckDB would push it into
-- the clipping and clip every object twice.
create or replace temp table render_clipped as
with
projected as (
    select o.osm_type, o.osm_id, z.utm_epsg, o.layer, o.colour, o.width_m,
        st_transform(o.geom, 'EPSG:4326', 'EPSG:' || z.utm_epsg, always_xy := true) as geom
    from (select distinct h.osm_type, h.osm_id, p.utm_epsg
          from render_hits as h join fetch_pending as p using (pair_id)) as z
    join render_objects as o on o.osm_type = z.osm_type and o.osm_id = z.osm_id
)
select
    h.pair_id,
    h.osm_type,
    h.osm_id,
    o.layer,
    o.colour,
    o.width_m / p.gsd_m as width_px,
    p.gsd_m,
    p.x_min,
    p.y_max,
    -- most objects lie inside their image: only the others are cut (an overlay costs)
    if(st_xmin(o.geom) >= p.x_min and st_xmax(o.geom) <= p.x_max
       and st_ymin(o.geom) >= p.y_min and st_ymax(o.geom) <= p.y_max,
       o.geom,
       st_intersection(o.geom, st_makeenvelope(p.x_min, p.y_min, p.x_max, p.y_max))) as geom
from render_hits as h
join fetch_pending as p using (pair_id)
join projected as o
    on o.osm_type = h.osm_type and o.osm_id = h.osm_id and o.utm_epsg = p.utm_epsg;

-- name: render_features
-- The clipped hits in pixel coordinates of their image (x right, y down).
select
    pair_id,
    layer,
    colour,
    width_px,
    st_asgeojson(st_affine(geom, 1 / gsd_m, 0, 0, -1 / gsd_m, -x_min / gsd_m, y_max / gsd_m))
        as geojson
from render_clipped
where not st_isempty(geom)
order by pair_id, layer, osm_type, osm_id;

-- name: record
-- One batch's outcomes (the Arrow table fetch_outcomes, registered by the stage), in one statement.
insert or replace into images (pair_id, path, status, error, source, acquired, width_px,
    height_px, bytes, fetched_at, request_key, collection, coverage)
select
    o.pair_id, o.path, o.status, o.error, o.source, o.acquired, o.width_px, o.height_px, o.bytes,
    timezone('UTC', current_timestamp), p.request_key, o.collection, o.coverage
from fetch_outcomes as o
join fetch_pending as p using (pair_id);

-- name: summary
select
    (select count(*) from fetch_pending) as rows_in,
    (select count(*) from images where status = 'ok') as rows_out,
    (select count(*) from images where status = 'failed') as failed,
    (select count(*) from images where status = 'no_coverage') as no_coverage,
    (select count(*) from images where status = 'partial_coverage') as partial_coverage;
