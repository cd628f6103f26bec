-- Stage rewrite_captions (on demand): captions rewritten by a language model, beside the rule ones.
--   The prompt of a pair is the template with its placeholders filled: {tags} the centre
--   object's tags visible at the image's GSD (key=value, '; '), {names} the natural multi-object
--   caption (preset names of the centre and its surroundings), {caption} the paper's
--   multi-object caption, {gsd} the GSD in metres. prompt_sha is the SHA-256 of that text, so a
--   changed template, tag or caption makes a new prompt, and a rerun sends only prompts with no
--   answer yet from that model. Rewrites never replace the rule captions.

-- name: create
create table if not exists caption_rewrites (
    pair_id bigint not null,
    model varchar not null,
    prompt_sha varchar not null,
    text varchar not null,
    tokens integer,  -- prompt + completion, as the endpoint counted them
    created timestamp not null default timezone('UTC', current_timestamp),
    primary key (pair_id, model, prompt_sha)
);

-- name: create_errors
-- Requests that failed after their retries; a rerun sends them again.
create table if not exists caption_rewrite_errors (
    pair_id bigint not null,
    model varchar not null,
    prompt_sha varchar not null,
    error varchar not null,
    attempts integer not null,
    created timestamp not null default timezone('UTC', current_timestamp)
);

-- name: prompts
create or replace temp table rewrite_prompts as
with
visible_tags as (
    select
        r.pair_id,
        string_agg(t.key || '=' || t.value, '; ' order by t.key) as tags
    from image_requests as r
    join osm_tags as t using (osm_type, osm_id)
    join tag_visibility as v using (key, value)
    where v.visible and v.max_gsd_m >= r.gsd_m
    group by r.pair_id
),
filled as (
    select
        c.pair_id,
        replace(replace(replace(replace($template,
            '{tags}', coalesce(t.tags, '')),
            '{names}', c.title_multi_objects_natural),
            '{caption}', c.title_multi_objects),
            '{gsd}', round(r.gsd_m, 2)::varchar) as prompt
    from captions as c
    join image_requests as r using (pair_id)
    left join visible_tags as t using (pair_id)
),
hashed as (select pair_id, prompt, sha256(prompt) as prompt_sha from filled)
select pair_id, prompt, prompt_sha
from hashed
anti join (select pair_id, prompt_sha from caption_rewrites where model = $model)
    using (pair_id, prompt_sha)
order by pair_id
limit coalesce($limit, 9223372036854775807);

-- name: pending_count
select count(*) as n from rewrite_prompts;

-- name: next_batch
select pair_id, prompt, prompt_sha from rewrite_prompts
where pair_id > $after order by pair_id limit $size;

-- name: insert
insert or replace into caption_rewrites (pair_id, model, prompt_sha, text, tokens)
select pair_id, $model, prompt_sha, text, tokens from rewrite_batch;

-- name: insert_errors
insert into caption_rewrite_errors (pair_id, model, prompt_sha, error, attempts)
select pair_id, $model, prompt_sha, error, attempts from rewrite_failures;

-- name: summary
select
    (select count(*) from rewrite_prompts) as rows_in,
    (select count(*) from caption_rewrites where model = $model) as rows_out;

-- name: caption_texts
-- Every caption of every pair by name, one row each: the four columns of `captions`, and each
-- model's newest rewrite as 'rewrite:<model>'. What `embed --score-caption` and `export
-- --caption` choose from.
create or replace view caption_texts as
select pair_id, caption, text
from (unpivot captions
      on title, title_multi_objects, title_natural, title_multi_objects_natural
      into name caption value text)
union all
select pair_id, 'rewrite:' || model as caption, text
from caption_rewrites
qualify row_number() over (partition by pair_id, model order by created desc, prompt_sha) = 1;
