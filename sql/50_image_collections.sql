-- Stage image_collections: the imagery an object's image can come from. The ten Earth Engine
-- collections of the method (seed image_collections.csv, coarse footprints documented per row)
-- plus the local rasters registered with `skyscript-db add-imagery` (table local_imagery).

-- name: create_local_imagery
create table if not exists local_imagery (
    code varchar primary key,
    path varchar not null,
    crs varchar not null,
    gsd_m double not null,
    bands integer not null,
    dtype varchar not null,
    footprint geometry not null,
    registered_at timestamp not null default timezone('UTC', current_timestamp)
);

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
),
local as (
    select code, path as name, gsd_m, footprint, 'local' as kind,
        'raster footprint, ' || crs as footprint_note
    from local_imagery
)
select * from earth_engine
union all
select * from local
order by gsd_m, code;

-- name: summary
select count(*) as rows_in, count(*) as rows_out, count(*) filter (where kind = 'local') as local
from image_collections;
