-- Stage image_collections: the imagery an object's image can come from. The ten Earth Engine
-- collections of the method (seed image_collections.csv, coarse footprints documented per row),
-- the local rasters registered with `skyscript-db add-imagery` (table local_imagery) and the STAC
-- collections registered with `skyscript-db add-stac` (table stac_collections).
-- With $imagery = 'render' the Earth Engine rows are replaced by SYNTHETIC stand-ins of the same
-- GSD and footprint (code SYNTH_<code>, kind 'render'): images drawn from OSM itself, for offline
-- builds and tests. Nothing else ever chooses the render source.

-- name: create_local_imagery
create table if not exists local_imagery (
    code varchar primary key,
    path varchar not null,
    crs varchar not null,
    gsd_m double not null,
    bands integer not null,
    dtype varchar not null,
    footprint geometry not null,
    rgb_bands integer[] not null,
    registered_at timestamp not null default timezone('UTC', current_timestamp)
);

-- name: create_stac_collections
create table if not exists stac_collections (
    code varchar primary key,
    url varchar not null,
    collection varchar,
    assets varchar[] not null,
    rgb_bands integer[] not null,
    gsd_m double not null,
    footprint geometry not null,
    registered_at timestamp not null default timezone('UTC', current_timestamp)
);

-- name: stac_datetime
-- The item filters of add-stac (--datetime, --max-cloud); added to older databases' tables.
alter table stac_collections add column if not exists datetime varchar;

-- name: stac_max_cloud
alter table stac_collections add column if not exists max_cloud double;

-- name: stac_access
-- How items are ordered and read (add-stac --sortby, --modifier, --option KEY=VALUE,
-- --stretch LOW,HIGH).
alter table stac_collections add column if not exists sortby varchar;
alter table stac_collections add column if not exists modifier varchar;
alter table stac_collections add column if not exists options varchar[];
alter table stac_collections add column if not exists stretch double[];

-- name: image_collections
create or replace table image_collections as
with
seed as (
    select * from read_csv($collections_csv, header = true, columns = {
        'code': 'varchar', 'name': 'varchar', 'gsd_m': 'double', 'kind': 'varchar',
        'west': 'double', 'south': 'double', 'east': 'double', 'north': 'double',
        'footprint_note': 'varchar'
    })
),
earth_engine as (
    select code, name, gsd_m, st_makeenvelope(west, south, east, north) as footprint, kind,
        footprint_note
    from seed
    where $imagery = 'catalog'
),
synthetic as (
    select
        'SYNTH_' || code as code,
        'SYNTHETIC render of OpenStreetMap, standing in for ' || name as name,
        gsd_m,
        st_makeenvelope(west, south, east, north) as footprint,
        'render' as kind,
        footprint_note
    from seed
    where $imagery = 'render'
),
local as (
    select code, path as name, gsd_m, footprint, 'local' as kind,
        'raster footprint, ' || crs as footprint_note
    from local_imagery
),
stac as (
    select code, url as name, gsd_m, footprint, 'stac' as kind,
        'extent of the STAC items or collection' as footprint_note
    from stac_collections
)
select * from earth_engine
union all
select * from synthetic
union all
select * from local
union all
select * from stac
order by gsd_m, code;

-- name: summary
select count(*) as rows_in, count(*) as rows_out, count(*) filter (where kind = 'local') as local
from image_collections;
