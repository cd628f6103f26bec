-- Stage embed: CLIP embeddings of each fetched image and of both its captions, per model.
-- Vectors are L2-normalised FLOAT[] lists in the database itself (one file to move, joinable in
-- SQL); their dot product is the cosine similarity.

-- name: create
create table if not exists embeddings (
    pair_id bigint not null,
    model_id varchar not null,
    image float[] not null,
    title float[] not null,
    title_multi_objects float[] not null,
    embedded_at timestamp not null default timezone('UTC', current_timestamp),
    input_key varchar,  -- the image and captions the vectors were made from (see `pending`)
    primary key (pair_id, model_id)
);

-- name: add_input_key
-- Databases embedded before input_key existed: their vectors are redone once.
alter table embeddings add column if not exists input_key varchar;

-- name: create_models
create table if not exists embedding_models (
    model_id varchar primary key,
    name varchar not null,
    pretrained varchar,
    seed bigint,
    untrained boolean not null,
    dim integer not null,
    registered_at timestamp not null default timezone('UTC', current_timestamp)
);

-- name: register_model
insert or replace into embedding_models (model_id, name, pretrained, seed, untrained, dim)
values ($model_id, $name, $pretrained, $seed, $untrained, $dim);

-- name: pending
-- Fetched images with captions that this model has not embedded from their current image file
-- (a refetch changes fetched_at) and captions.
create or replace temp table embed_pending as
with inputs as (
    select
        i.pair_id,
        i.path,
        c.title,
        c.title_multi_objects,
        md5(concat_ws('|', i.path, i.fetched_at, c.title, c.title_multi_objects)) as input_key
    from images as i
    join captions as c using (pair_id)
    where i.status = 'ok'
)
select inputs.*
from inputs
anti join (select pair_id, input_key from embeddings where model_id = $model_id) as e
    using (pair_id, input_key)
order by pair_id;

-- name: pending_count
select count(*) as n from embed_pending;

-- name: create_caption_vectors
-- Vectors of the scored caption when it is neither of the paper's two (embed --score-caption).
create table if not exists caption_embeddings (
    pair_id bigint not null,
    model_id varchar not null,
    caption varchar not null,
    vector float[] not null,
    input_key varchar not null,  -- md5 of the text embedded
    primary key (pair_id, model_id, caption)
);

-- name: caption_pending
-- Embedded pairs whose $caption (a name in caption_texts) has no vector from its current text.
create or replace temp table caption_pending as
select e.pair_id, t.text, md5(t.text) as input_key
from embeddings as e
join caption_texts as t on t.pair_id = e.pair_id and t.caption = $caption
anti join (select pair_id, input_key from caption_embeddings
           where model_id = $model_id and caption = $caption) as x
    on x.pair_id = e.pair_id and x.input_key = md5(t.text)
where e.model_id = $model_id and $caption not in ('title', 'title_multi_objects')
order by e.pair_id;

-- name: caption_next_batch
select pair_id, text from caption_pending where pair_id > $after order by pair_id limit $size;

-- name: caption_insert
insert or replace into caption_embeddings (pair_id, model_id, caption, vector, input_key)
select b.pair_id, $model_id, $caption, b.vector, p.input_key
from caption_batch as b
join caption_pending as p using (pair_id);

-- name: next_batch
-- $root is the database's folder, which local image paths are relative to.
select pair_id, image_location($root, path) as path, title, title_multi_objects
from embed_pending
where pair_id > $after order by pair_id limit $size;

-- name: insert
insert or replace into embeddings (pair_id, model_id, image, title, title_multi_objects,
                                   input_key)
select b.pair_id, $model_id, b.image, b.title, b.title_multi_objects, p.input_key
from embedding_batch as b
join embed_pending as p using (pair_id);

-- name: settings
-- Which model and which caption the pairs view scores; the embed stage sets it.
create or replace table pair_settings as
select $model_id::varchar as model_id, $score_caption::varchar as score_caption;

-- name: pairs
-- Every embedded pair with its cosine similarity (image against the scored caption) and global
-- rank: similarity_rank_pct is the
-- share of pairs scoring higher (0 = best), so `similarity_rank_pct < 20` keeps the top 20 %.
create or replace view pairs as
with
settings as (select * from pair_settings),
scored as (
    select
        e.pair_id,
        i.path as image_path,
        c.title,
        c.title_multi_objects,
        c.title_natural,
        c.title_multi_objects_natural,
        t.text as caption,  -- the scored caption
        list_inner_product(e.image, e.title) as similarity_title,
        list_inner_product(e.image, e.title_multi_objects) as similarity_title_multi_objects,
        case s.score_caption
            when 'title' then similarity_title
            when 'title_multi_objects' then similarity_title_multi_objects
            else list_inner_product(e.image, x.vector)
        end as similarity,
        e.model_id,
        m.untrained,
        r.osm_type,
        r.osm_id,
        o.kind,
        o.tags,
        r.collection_code,
        r.west,
        r.south,
        r.east,
        r.north,
        r.width_px,
        r.height_px,
        r.gsd_m,
        i.acquired,
        i.source as image_source
    from embeddings as e
    join settings as s on s.model_id = e.model_id
    join embedding_models as m on m.model_id = e.model_id
    join images as i using (pair_id)
    join captions as c using (pair_id)
    -- a pair without the scored caption (a rewrite not made yet) is not a pair
    join caption_texts as t on t.pair_id = e.pair_id and t.caption = s.score_caption
    left join caption_embeddings as x
        on x.pair_id = e.pair_id and x.model_id = e.model_id and x.caption = s.score_caption
    join image_requests as r using (pair_id)
    join osm_objects as o on o.osm_type = r.osm_type and o.osm_id = r.osm_id
)
select
    *,
    100 * percent_rank() over (order by similarity desc, pair_id) as similarity_rank_pct,
    100 * percent_rank() over (
        partition by collection_code order by similarity desc, pair_id
    ) as similarity_rank_pct_in_collection
from scored;

-- name: top_views
create or replace view pairs_top20 as select * from pairs where similarity_rank_pct < 20;

-- name: top30
create or replace view pairs_top30 as select * from pairs where similarity_rank_pct < 30;

-- name: top50
create or replace view pairs_top50 as select * from pairs where similarity_rank_pct < 50;

-- name: summary
select
    (select count(*) from embed_pending) as rows_in,
    (select count(*) from embeddings where model_id = $model_id) as rows_out;

-- name: checksum
-- Identifies the vectors an index was built from: a stale index is detected, never used.
select count(*) as n, bit_xor(hash(pair_id, image, title)) as digest
from embeddings where model_id = $model_id;

-- name: vectors
select pair_id, image, title from embeddings where model_id = $model_id order by pair_id;

-- name: current_model
select s.model_id, m.name, m.pretrained, m.seed
from pair_settings as s join embedding_models as m using (model_id);

-- name: vectors_of
-- The vectors of the pairs in temp table retrieve_candidates, for an exact search among them.
select e.pair_id, e.image, e.title
from embeddings as e
semi join retrieve_candidates as c using (pair_id)
where e.model_id = $model_id;

-- name: results
-- Image paths made absolute: $root is the database's folder, which local ones are relative to.
select r.rank, r.score, p.* replace (image_location($root, p.image_path) as image_path)
from retrieve_results as r
join pairs as p using (pair_id)
order by r.rank;
