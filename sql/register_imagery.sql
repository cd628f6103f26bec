-- Register imagery: local rasters (skyscript-db add-imagery) and STAC collections (add-stac).
-- The tables are created by the image_collections stage (sql/50_image_collections.sql), which
-- turns their rows into collections.

-- name: register_local
insert or replace into local_imagery (code, path, crs, gsd_m, bands, dtype, footprint, rgb_bands)
values ($code, $path, $crs, $gsd_m, $bands, $dtype, st_geomfromtext($footprint_wkt), $rgb_bands);

-- name: register_stac
insert or replace into stac_collections
    (code, url, collection, assets, rgb_bands, gsd_m, footprint, datetime, max_cloud, sortby,
     modifier, options, stretch)
values ($code, $url, $collection, $assets, $rgb_bands, $gsd_m, st_geomfromtext($footprint_wkt),
        $datetime, $max_cloud, $sortby, $modifier, $options, $stretch);

-- name: local_state
select code, path, gsd_m, rgb_bands from local_imagery order by code;

-- name: stac_state
select code, url, collection, assets, rgb_bands, gsd_m from stac_collections order by code;
