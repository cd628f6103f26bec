-- Stage tag_visibility: is each tag of tag_stats visible from above, and up to which GSD (metres)?
-- Three sources, in order of precedence: a human label (seed tag_labels.csv) always wins; then a
-- rule (seed tag_visibility_rules.csv: free text and identifiers, key and value as GLOB patterns)
-- says "not visible" without asking the model, unless an `exception` row of the same seed takes
-- the tag back (`generator:source` is a power plant's kind, not provenance; `crossing_ref` a
-- crossing's markings, not an identifier); every other tag gets the tag classifier's
-- prediction. Text embeddings are cached in tag_text_embeddings by (encoder, text); the python
-- side (etl/tag_visibility.py) embeds what is missing and runs the model, which reads
-- each tag's facts (section tag_facts) beside its text vectors.

-- name: load_rules
create or replace temp table rules_seed as
select * from read_csv($rules_csv, header = true, columns = {
    'key': 'varchar', 'value': 'varchar', 'reason': 'varchar'
});

-- name: load_labels
create or replace temp table labels_seed as
select * from read_csv($labels_csv, header = true, columns = {
    'key': 'varchar', 'value': 'varchar', 'visible': 'boolean', 'max_gsd_m': 'double',
    'doubtful': 'boolean', 'note': 'varchar'
});

-- name: check_labels
-- A label that breaks the guideline's form stops the stage, naming the row.
select key, value, visible, max_gsd_m
from labels_seed
where visible is null
    or (visible and max_gsd_m not in (0.1, 0.2, 0.6, 1, 10))
    or (visible and max_gsd_m is null)
    or (not visible and max_gsd_m is not null)
    or (key, value) in (
        select (key, value) from labels_seed group by key, value having count(*) > 1
    )
limit 5;

-- name: rule_hits
-- The first matching rule (by key pattern, then value pattern) names the reason; a tag an
-- exception matches is no rule's.
create or replace temp table rule_hits as
select t.key, t.value, r.key || '=' || r.value as rule, r.reason
from tag_stats as t
join rules_seed as r on t.key glob r.key and t.value glob r.value and r.reason <> 'exception'
where not exists (
    select 1 from rules_seed as x
    where x.reason = 'exception' and t.key glob x.key and t.value glob x.value
)
qualify row_number() over (partition by t.key, t.value order by r.key, r.value) = 1;

-- name: tag_texts
-- Every tag that needs features: the labelled ones (to train) and those no rule decides.
create or replace temp table tag_texts as
with tags as (
    select key, value from tag_stats
    anti join rule_hits using (key, value)
    union
    select key, value from labels_seed
)
select key, value, tag_text(key, value) as text, key_text(key) as key_text
from tags;

-- name: check_stats
-- tag_stats as an older version wrote it lacks the counts the facts read: say how to rebuild it.
select error('tag_stats has no column n_in_building (written by an older version of '
             || 'skyscript-db): rebuild it with `skyscript-db build --db DB --from tag_stats`')
where not exists (
    select 1 from duckdb_columns()
    where table_name = 'tag_stats' and column_name = 'n_in_building'
);

-- name: tag_facts
-- What the text vectors miss, as numbers per tag (the classifier's `facts`):
-- - how OSM draws the key and the tag: shares of points, lines and polygons among the objects that
--   carry them, from the reference counts of seed tag_geometry.csv where it has them (so a model
--   trained on the labels is the same for every database), else from this database's tag_stats;
--   a tag with no counts takes its key's, a key with none an even split;
-- - what the iD editor makes of them: the geometries its one-tag preset for the tag, and for the
--   key, allows; whether the key is an attribute field, and which kind (combo, check, number, ...);
--   whether the value is one of that field's options; yes/no and numeric values;
-- - where their objects stand (tag_stats, same sources): the shares of the tag's, and the key's,
--   objects inside a building, also tagged building, also tagged highway (indoor shops and
--   offices, what a building is used for, what a road is made of); each counted as if 5 more
--   objects had the share 0.2, so that a rare tag says little; a tag with no counts takes its
--   key's.
create or replace temp table tag_facts as
with
seed as (
    select * from read_csv($geometry_csv, header = true, columns = {
        'key': 'varchar', 'value': 'varchar',
        'n_points': 'bigint', 'n_lines': 'bigint', 'n_polygons': 'bigint',
        'n_in_building': 'bigint', 'n_with_building': 'bigint', 'n_with_highway': 'bigint'})
),
counts as (  -- a key's own row has value null
    select * replace (nullif(value, '*') as value) from seed
    union all
    select key, value, n_points, n_lines, n_polygons, n_in_building, n_with_building,
        n_with_highway
    from tag_stats
    anti join seed using (key, value)
    union all
    select key, null, sum(n_points), sum(n_lines), sum(n_polygons), sum(n_in_building),
        sum(n_with_building), sum(n_with_highway)
    from tag_stats
    where key not in (select key from seed where value = '*')
    group by key
),
shares as (
    select
        key,
        value,
        list_transform([n_points, n_lines, n_polygons]::double[],
            n -> n / greatest(n_points + n_lines + n_polygons, 1)) as share,
        list_transform([n_in_building, n_with_building, n_with_highway]::double[],
            n -> (n + 1) / (n_points + n_lines + n_polygons + 5)) as context
    from counts
),
required_tags as (
    select * from read_csv($preset_tags_csv, header = true, columns = {
        'preset_id': 'varchar', 'key': 'varchar', 'value': 'varchar', 'required': 'boolean'})
    where required
),
one_tag_presets as (
    select t.key, t.value, list(g order by g) as geometry
    from required_tags as t
    join read_csv($presets_csv, header = true) as p using (preset_id),
        unnest(string_split(p.geometry, ' ')) as u(g)
    where t.preset_id in (
        select preset_id from required_tags group by preset_id having count(*) = 1
    )
    group by t.key, t.value
),
fields as (select * from read_csv($fields_csv, header = true)),
options as (select distinct key, value from read_parquet($options_parquet))
select
    t.key,
    t.value,
    (
        coalesce(s.share, k.share, [1 / 3, 1 / 3, 1 / 3])
        || coalesce(k.share, [1 / 3, 1 / 3, 1 / 3])
        || list_transform(
            [exact.geometry is not null]
            || list_transform(['point', 'vertex', 'line', 'area'],
                              g -> list_contains(exact.geometry, g))
            || [whole.geometry is not null]
            || list_transform(['point', 'vertex', 'line', 'area', 'relation'],
                              g -> list_contains(whole.geometry, g))
            || list_transform(['combo', 'check', 'number', 'typeCombo', 'semiCombo'],
                              kind -> f.type = kind)
            || [f.type is not null, o.key is not null, t.value in ('yes', 'no'),
                regexp_full_match(t.value, '[0-9.]+')],
            b -> coalesce(b, false)::double)
        || coalesce(s.context, k.context, [0.2, 0.2, 0.2])
        || coalesce(k.context, [0.2, 0.2, 0.2])
    )::float[] as facts
from tag_texts as t
left join shares as s using (key, value)
left join shares as k on k.key = t.key and k.value is null
left join one_tag_presets as exact on exact.key = t.key and exact.value = t.value
left join one_tag_presets as whole on whole.key = t.key and whole.value = '*'
left join fields as f on f.key = t.key
left join options as o on o.key = t.key and o.value = t.value;

-- name: geometry_seed
-- The reference counts of seed tag_geometry.csv (scripts/tag_geometry.py): every labelled tag and
-- every labelled key ('*') of a database built from a large extract, by drawn geometry and by
-- where the objects stand.
select key, value, n_points, n_lines, n_polygons, n_in_building, n_with_building, n_with_highway
from tag_stats semi join labels_seed using (key, value)
union all
select key, '*', sum(n_points), sum(n_lines), sum(n_polygons), sum(n_in_building),
    sum(n_with_building), sum(n_with_highway)
from tag_stats where key in (select key from labels_seed)
group by key
order by key, value;

-- name: create_cache
create table if not exists tag_text_embeddings (
    encoder_id varchar not null,
    text varchar not null,
    embedding float[] not null,
    primary key (encoder_id, text)
);

-- name: pending_texts
select text from (
    select text from tag_texts
    union
    select key_text from tag_texts
)
anti join (select text from tag_text_embeddings where encoder_id = $encoder_id) using (text)
order by length(text), text;  -- texts of a length together: the encoder's batches pad less

-- name: insert_embeddings
insert or ignore into tag_text_embeddings
select $encoder_id, text, embedding from text_embedding_batch;

-- name: features
-- $labelled: only the labelled tags (training) or every tag of tag_texts (prediction).
select
    t.key,
    t.value,
    l.visible,
    l.max_gsd_m,
    e.embedding as tag_vector,
    k.embedding as key_vector,
    f.facts
from tag_texts as t
join tag_facts as f using (key, value)
join tag_text_embeddings as e on e.encoder_id = $encoder_id and e.text = t.text
join tag_text_embeddings as k on k.encoder_id = $encoder_id and k.text = t.key_text
left join labels_seed as l using (key, value)
where not $labelled or l.visible is not null
order by t.key, t.value;

-- name: create_models
create table if not exists tag_models (
    model_id varchar primary key,
    encoder_id varchar not null,
    labels_sha256 varchar not null,
    n_labels integer not null,
    package_version varchar not null,
    sklearn_version varchar not null,
    model blob not null,
    report json not null,
    trained_at timestamp not null default timezone('UTC', current_timestamp)
);

-- name: find_model
select model_id, model, report from tag_models where model_id = $model_id;

-- name: save_model
insert or replace into tag_models
    (model_id, encoder_id, labels_sha256, n_labels, package_version, sklearn_version, model,
     report)
values ($model_id, $encoder_id, $labels_sha256, $n_labels, $package_version, $sklearn_version,
        $model, $report);

-- name: latest_model
select model_id, encoder_id, n_labels, trained_at, report
from tag_models order by trained_at desc limit 1;

-- name: keep_labels
-- The labelled set and the rules travel with the database, so every verdict can be traced.
create or replace table tag_labels as select * from labels_seed order by key, value;

-- name: keep_rules
create or replace table tag_visibility_rules as select * from rules_seed;

-- name: tag_visibility
-- tag_predictions (registered by the python side): the model's output for tag_texts.
create or replace table tag_visibility as
with
decided as (
    select
        t.key,
        t.value,
        case
            when l.visible is not null then 'label'
            when r.rule is not null then 'rule'
            else $model_id
        end as source,
        r.rule,
        r.reason as rule_reason,
        l.visible as label_visible,
        l.max_gsd_m as label_gsd_m
    from tag_stats as t
    left join labels_seed as l using (key, value)
    left join rule_hits as r using (key, value)
)
select
    d.key,
    d.value,
    case d.source
        when 'label' then d.label_visible
        when 'rule' then false
        else p.visible
    end as visible,
    case d.source
        when 'label' then d.label_gsd_m
        when 'rule' then null
        else if(p.visible, p.max_gsd_m, null)
    end as max_gsd_m,
    p.p_visible,
    p.p_gsd_0_1,
    p.p_gsd_0_2,
    p.p_gsd_0_6,
    p.p_gsd_1,
    p.p_gsd_10,
    d.source,
    d.rule,
    d.rule_reason
from decided as d
left join tag_predictions as p using (key, value)
order by d.key, d.value;

-- name: summary
select
    (select count(*) from tag_stats) as rows_in,
    count(*) as rows_out,
    count(*) filter (where visible) as visible,
    count(*) filter (where source = 'label') as by_label,
    count(*) filter (where source = 'rule') as by_rule,
    count(*) filter (where source not in ('label', 'rule')) as by_model
from tag_visibility;

-- name: verdict_counts
-- How many tags each source (label, rule, model) decided, visible or not.
select source, visible, count(*) as tags from tag_visibility group by all order by all;

-- The user cache (etl/tag_cache.py): the same two tables in a database attached as tag_cache.

-- name: cache_pull_texts
insert or ignore into tag_text_embeddings
select c.*
from tag_cache.tag_text_embeddings as c
where c.encoder_id = $encoder_id
    and c.text in (select text from tag_texts union select key_text from tag_texts);

-- name: cache_push_texts
insert or ignore into tag_cache.tag_text_embeddings
select * from tag_text_embeddings where encoder_id = $encoder_id;

-- name: cache_pull_model
insert or ignore into tag_models
select * from tag_cache.tag_models where model_id = $model_id;

-- name: cache_push_model
insert or replace into tag_cache.tag_models
select * from tag_models where model_id = $model_id;
