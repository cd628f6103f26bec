-- Stage image_requests: for each selected object, the imagery collection and the image bounds
-- (section 3 of the method). All sizes are computed in metres in the object's UTM zone and stored
-- both as that exact rectangle (utm_epsg, x_min … y_max) and as its lon/lat envelope (west …
-- north; the envelope of the four corners).
--   Candidates: collections whose footprint covers the object's anchor point (a point on its
--   surface) and whose GSD is no coarser than the largest GSD at which one of the object's tags is
--   visible (so the caption keeps at least one tag). Polygons also need their bounding box to
--   measure 75-1,000 px in width and height at that GSD. Only the collections in $collections
--   (null: all) and none in $exclude_collections take part. One candidate is drawn at random
--   ($prefer = 'random', the paper's rule) or the finest is taken ('finest'; the draw breaks ties).
--   Points and lines: the point, or a random node of the line, is the anchor; width and height
--   are drawn in 168-300 px and the centre moves at most a sixth of the image away from the
--   anchor, which so stays inside the middle third.
--   Polygons: width in [max(150, box width, box height / 2), 1500] px, then height in
--   [max(150, box height, width / 2), min(1500, 2 * width)] px (aspect 0.5-2, box always inside),
--   and the box is placed at random inside the image.
-- Every draw is uniform($seed, pair_id, label): same seed, same rows.

-- name: unknown_collections
-- A collection named in $collections or $exclude_collections that does not exist is an error.
select error('image_requests: no collection ' || string_agg(code, ', ' order by code)
             || ' (there are ' || (select string_agg(code, ', ' order by code)
                                   from image_collections) || ')')
from (
    select unnest(coalesce($collections::varchar[], []) || $exclude_collections::varchar[])
        as code
) as named
anti join image_collections using (code)
having count(*) > 0;

-- name: request_objects
create or replace temp table request_objects as
with
selected as (
    select o.osm_type, o.osm_id, o.kind, o.geom
    from selected_objects as s
    join osm_objects as o using (osm_type, osm_id)
),
visible_gsd as (
    select t.osm_type, t.osm_id, max(v.max_gsd_m) as max_gsd_m
    from osm_tags as t
    semi join selected as s using (osm_type, osm_id)
    join tag_visibility as v using (key, value)
    where v.visible
    group by t.osm_type, t.osm_id
)
select
    s.*,
    g.max_gsd_m,
    pair_id(s.osm_type, s.osm_id) as pair_id,
    st_pointonsurface(s.geom) as anchor_ll,
    utm_epsg(st_x(anchor_ll), st_y(anchor_ll)) as utm_epsg,
    st_transform(s.geom, 'EPSG:4326', 'EPSG:' || utm_epsg, always_xy := true) as geom_m
from selected as s
join visible_gsd as g using (osm_type, osm_id);

-- name: request_candidates
-- Every collection covering an object's anchor, with each rule's verdict: the candidates are
-- the rows that pass all three; the others say why an object has none.
create or replace temp table request_candidates as
select
    o.pair_id,
    c.code,
    c.gsd_m,
    ($collections::varchar[] is null or list_contains($collections, c.code))
        and not list_contains($exclude_collections::varchar[], c.code) as chosen_collection,
    c.gsd_m <= o.max_gsd_m as fine_enough,
    o.kind <> 'polygon'
        or ((st_xmax(o.geom_m) - st_xmin(o.geom_m)) / c.gsd_m between 75 and 1000
            and (st_ymax(o.geom_m) - st_ymin(o.geom_m)) / c.gsd_m between 75 and 1000)
        as fits
from request_objects as o
join image_collections as c on st_covers(c.footprint, o.anchor_ll);

-- name: image_requests
create or replace table image_requests as
with
objects as (select * from request_objects),
candidates as (
    select pair_id, code, gsd_m
    from request_candidates
    where chosen_collection and fine_enough and fits
),
chosen as (
    select *
    from candidates
    qualify row_number() over (
        partition by pair_id
        order by if($prefer = 'finest', gsd_m, 0), uniform($seed, pair_id, code), code
    ) = 1
),
drawn as (
    select
        o.*,
        c.code as collection_code,
        c.gsd_m,
        uniform($seed, o.pair_id, 'node') as u_node,
        uniform($seed, o.pair_id, 'width') as u_w,
        uniform($seed, o.pair_id, 'height') as u_h,
        uniform($seed, o.pair_id, 'dx') as u_dx,
        uniform($seed, o.pair_id, 'dy') as u_dy
    from objects as o
    join chosen as c using (pair_id)
),
points_and_lines as (
    select
        *,
        if(kind = 'point', geom_m,
           st_pointn(geom_m, 1 + floor(u_node * st_npoints(geom_m))::int)) as anchor_m,
        168 + floor(u_w * 133)::int as width_px,
        168 + floor(u_h * 133)::int as height_px,
        st_x(anchor_m) - (2 * u_dx - 1) * width_px * gsd_m / 6 as cx,
        st_y(anchor_m) - (2 * u_dy - 1) * height_px * gsd_m / 6 as cy
    from drawn
    where kind <> 'polygon'
),
polygon_boxes as (
    select
        *,
        st_xmax(geom_m) - st_xmin(geom_m) as box_w_m,
        st_ymax(geom_m) - st_ymin(geom_m) as box_h_m,
        greatest(150, ceil(box_w_m / gsd_m), ceil(box_h_m / gsd_m / 2))::int as min_w_px
    from drawn
    where kind = 'polygon'
),
polygon_widths as (
    select *, min_w_px + floor(u_w * (1500 - min_w_px + 1))::int as width_px
    from polygon_boxes
),
polygon_heights as (
    select
        *,
        greatest(150, ceil(box_h_m / gsd_m), ceil(width_px / 2))::int as min_h_px,
        least(1500, 2 * width_px) as max_h_px,
        min_h_px + floor(u_h * (max_h_px - min_h_px + 1))::int as height_px
    from polygon_widths
),
polygons as (
    select
        *,
        (st_xmin(geom_m) + st_xmax(geom_m)) / 2 + (2 * u_dx - 1) * (width_px * gsd_m - box_w_m) / 2
            as cx,
        (st_ymin(geom_m) + st_ymax(geom_m)) / 2 + (2 * u_dy - 1) * (height_px * gsd_m - box_h_m) / 2
            as cy
    from polygon_heights
),
placed as (
    select * from points_and_lines
    union all by name
    select * from polygons
),
final as (
    select
        *,
        cx - width_px * gsd_m / 2 as x_min,
        cy - height_px * gsd_m / 2 as y_min,
        cx + width_px * gsd_m / 2 as x_max,
        cy + height_px * gsd_m / 2 as y_max,
        st_transform(st_makeenvelope(x_min, y_min, x_max, y_max), 'EPSG:' || utm_epsg, 'EPSG:4326',
                     always_xy := true) as box_ll,
        st_transform(st_point(cx, cy), 'EPSG:' || utm_epsg, 'EPSG:4326', always_xy := true)
            as centre_ll
    from placed
)
select
    pair_id,
    osm_type,
    osm_id,
    kind,
    collection_code,
    st_xmin(box_ll) as west,
    st_ymin(box_ll) as south,
    st_xmax(box_ll) as east,
    st_ymax(box_ll) as north,
    width_px,
    height_px,
    gsd_m,
    $seed::bigint as seed,
    st_x(centre_ll) as center_lon,
    st_y(centre_ll) as center_lat,
    utm_epsg,
    x_min,
    y_min,
    x_max,
    y_max
from final
order by pair_id;

-- name: summary
-- Counts, with each object that got no request under the first rule that left it none, and
-- the requests per collection.
with
selected as (select osm_type, osm_id from selected_objects),
verdicts as (
    select
        o.pair_id,
        bool_or(c.code is not null) as covered,
        bool_or(c.chosen_collection) as chosen,
        bool_or(c.chosen_collection and c.fine_enough) as fine,
        bool_or(c.chosen_collection and c.fine_enough and c.fits) as fits
    from request_objects as o
    left join request_candidates as c using (pair_id)
    group by o.pair_id
),
per_collection as (
    select string_agg(collection_code || ' ' || n, ', ' order by collection_code) as text
    from (select collection_code, count(*) as n from image_requests group by all)
)
select
    (select count(*) from selected) as rows_in,
    (select count(*) from image_requests) as rows_out,
    (select count(*) from selected) - (select count(*) from request_objects) as no_visible_tag,
    count(*) filter (not covered) as no_collection_covers_it,
    count(*) filter (covered and not chosen) as only_excluded_collections,
    count(*) filter (chosen and not fine) as collections_too_coarse,
    count(*) filter (fine and not fits) as polygon_too_small_or_large,
    (select coalesce(text, 'none') from per_collection) as requests_per_collection
from verdicts;
