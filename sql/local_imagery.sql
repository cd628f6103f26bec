-- Register a local raster (skyscript-db add-imagery). The table itself is created by the
-- image_collections stage (sql/50_image_collections.sql), which turns its rows into collections.

-- name: register
insert or replace into local_imagery (code, path, crs, gsd_m, bands, dtype, footprint)
values ($code, $path, $crs, $gsd_m, $bands, $dtype, st_geomfromtext($footprint_wkt));
