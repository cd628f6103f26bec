-- Stage grid: draw 0.01° cells at random among those that hold objects (seeded), and select every
-- object whose geometry intersects a drawn cell (reason 'grid'). $n_cells, when set, is the number
-- of cells to draw; otherwise ceil($fraction * occupied cells).

-- name: grid_cells
create or replace table grid_cells as
select
    cell_id,
    cell_id % 36000 - 18000 as cell_x,
    cell_id // 36000 - 9000 as cell_y,
    count(*) as n_objects
from object_cells
group by cell_id
order by cell_id;

-- name: grid_draw
create or replace table grid_draw as
with
occupied as (select cell_id from grid_cells),
ranked as (
    select cell_id, row_number() over (order by uniform($seed, 'cell', cell_id), cell_id) as draw_rank
    from occupied
)
select cell_id, draw_rank
from ranked
where draw_rank <= coalesce($n_cells, ceil($fraction * (select count(*) from occupied)))
order by draw_rank;

-- name: selected_objects
create or replace table selected_objects as
select distinct c.osm_type, c.osm_id, 'grid' as reason, null::varchar as detail
from object_cells as c
semi join grid_draw as d using (cell_id)
order by osm_type, osm_id;

-- name: summary
select
    (select count(*) from grid_cells) as rows_in,
    (select count(*) from selected_objects) as rows_out,
    (select count(*) from grid_draw) as drawn_cells;
