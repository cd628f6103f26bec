-- Export: the kept pairs for training, each in one geographic split.
-- A pair lies in the 0.01° grid cell of its image centre; cells group into square blocks of
-- block_cells × block_cells cells (sized from the data unless asked), and each whole block goes
-- to train, validation or test (in a seeded random order, filling the splits' shares of pairs):
-- no cell (and no block) is ever in two splits, so neighbouring images never straddle a split.
-- Objects of the held-out benchmark (stage benchmark) are in no split. Pairs are kept by
-- similarity rank, collection and any read-only predicate (view export_candidates, made by the
-- python side from the user's `where`).

-- name: export_located
create or replace temp table export_located as
with chosen as (
    select p.* exclude (caption), t.text as caption
    from pairs as p
    -- the asked caption; a pair without it (no rewrite yet) is left out
    join caption_texts as t on t.pair_id = p.pair_id and t.caption = $caption
    semi join export_candidates as c on c.pair_id = p.pair_id
    anti join (select * from selected_objects where reason = 'benchmark') as b
        using (osm_type, osm_id)
    where (p.similarity_rank_pct < $top_pct or $top_pct >= 100)
        and ($collection is null or p.collection_code = $collection)
)
select *, cell_x((west + east) / 2) as cx, cell_y((south + north) / 2) as cy
from chosen;

-- name: block_cells
-- The block side: the one asked, else the largest of 10, 5, 2, 1 cells whose fullest block
-- holds at most $max_block_share of the pairs (1 when none does). A block is never split, so
-- a share can miss its target by up to half the largest block; small blocks keep that small.
with sides as (
    select side, max(pairs) as largest
    from (
        select s.side, count(*) as pairs
        from export_located cross join (select unnest([10, 5, 2, 1]) as side) as s
        group by s.side, floor(cx / s.side), floor(cy / s.side)
    )
    group by side
)
select coalesce(
    $block_cells,
    (select max(side) from sides
     where largest <= $max_block_share * (select count(*) from export_located)),
    1
) as block_cells;

-- name: export_pairs
-- $block_cells: the side from section block_cells.
create or replace temp table export_pairs as
with
blocked as (
    select
        *,
        floor(cx / $block_cells)::bigint as block_x,
        floor(cy / $block_cells)::bigint as block_y
    from export_located
),
blocks as (
    -- Blocks in a seeded random order; each takes the split in which the middle of its pairs
    -- falls on the cumulative share, so the splits come close to the asked fractions in pairs.
    select
        block_x,
        block_y,
        (sum(count(*)) over (
            order by uniform($seed, block_x, block_y), block_x, block_y
        ) - count(*) / 2) / sum(count(*)) over () as position
    from blocked
    group by block_x, block_y
)
select
    b.* exclude (block_x, block_y),
    cell_id(b.cx, b.cy) as cell_id,
    (b.block_y + 9000) * 36000 + (b.block_x + 18000) as block_id,
    case
        when k.position < $train then 'train'
        when k.position < $train + $validation then 'validation'
        else 'test'
    end as split
from blocked as b
join blocks as k using (block_x, block_y);

-- name: split_counts
-- Per split its pairs, cells, blocks and share of the pairs (what it achieved of its fraction).
select
    split,
    count(*) as pairs,
    count(distinct cell_id) as cells,
    count(distinct block_id) as blocks,
    round(count(*) / sum(count(*)) over (), 4) as share
from export_pairs
group by split
order by split;

-- name: page
-- One split's rows, in pair_id order, with what the CSV and the WebDataset samples carry;
-- $root is the database's folder, which local image paths are relative to.
select
    pair_id,
    image_location($root, image_path) as filepath,
    title,
    title_multi_objects,
    title_natural,
    title_multi_objects_natural,
    caption,
    similarity_title,
    similarity_title_multi_objects,
    similarity,
    similarity_rank_pct,
    collection_code,
    gsd_m,
    acquired,
    osm_type,
    osm_id,
    tags,
    west,
    south,
    east,
    north,
    cell_id,
    block_id,
    split
from export_pairs
where split = $split and pair_id > $after
order by pair_id
limit $size;
