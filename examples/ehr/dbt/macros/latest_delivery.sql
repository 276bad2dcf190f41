{#- The rows of `relation` as last delivered: a record sent again in a later extract (same `key`)
    keeps the version with the latest ingest_date, and rows without a key (only possible in a
    file a reviewer approved from quarantine) are dropped. -#}

{% macro latest_delivery(relation, key) -%}
    select *
    from (
        select
            *,
            row_number() over (partition by {{ text(key) }} order by ingest_date desc) as version_rank
        from {{ relation }}
        where {{ text(key) }} is not null
    ) as ranked
    where version_rank = 1
{%- endmacro %}
