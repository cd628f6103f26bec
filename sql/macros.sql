-- Macros shared by the SQL stages; created (as temp macros) before each stage runs.

-- name: wrap_x
-- Grid columns wrap around the antimeridian: column 18000 (lon 180°) is column -18000 (lon -180°).
create or replace temp macro wrap_x(x) as ((x + 18000) % 36000 + 36000) % 36000 - 18000;

-- name: clamp_y
create or replace temp macro clamp_y(y) as least(greatest(y, -9000), 8999);

-- name: cell_x
-- Grid column of a longitude on the 0.01° grid: floor(lon / 0.01).
create or replace temp macro cell_x(lon) as wrap_x(floor(lon / 0.01)::bigint);

-- name: cell_y
create or replace temp macro cell_y(lat) as clamp_y(floor(lat / 0.01)::bigint);

-- name: cell_id
-- A stable integer id per 0.01° cell: row (from the south pole) * 36000 + column (from -180°).
create or replace temp macro cell_id(x, y) as (y + 9000) * 36000 + (x + 18000);

-- name: uniform
-- A uniform draw in [0, 1) from a seed and any labels, stable across DuckDB versions (md5-based).
create or replace temp macro uniform(seed, a, b) as
    (md5_number(concat_ws(':', seed, a, b)) >> 75)::double / 9007199254740992.0;

-- name: pair_id
-- One image-caption pair per selected object: its id, with the type in the low two bits.
create or replace temp macro pair_id(osm_type, osm_id) as
    osm_id * 4 + case osm_type when 'node' then 0 when 'way' then 1 else 2 end;

-- name: utm_epsg
-- The WGS 84 / UTM zone of a lon/lat point (326zz north, 327zz south).
create or replace temp macro utm_epsg(lon, lat) as
    (if(lat >= 0, 32600, 32700) + least(floor((lon + 180) / 6)::int + 1, 60))::int;

-- name: key_text
-- The text a tag key is embedded as: `_` and `:` become spaces (`roof:shape` -> "roof shape").
create or replace temp macro key_text(key) as trim(regexp_replace(key, '[_:]+', ' ', 'g'));

-- name: tag_text
-- The text a tag is embedded as, "key value": `surface=paving_stones` -> "surface paving stones".
create or replace temp macro tag_text(key, value) as key_text(key) || ' ' || key_text(value);

-- name: image_location
-- Where an images.path points: a URL as it is, else the file under the database's folder.
create or replace temp macro image_location(root, path) as
    if(path like '%://%', path, root || '/' || path);
